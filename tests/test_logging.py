"""The host's one log file: many processes append to it, logrotate moves it, no line is lost."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITERS, LINES = 3, 400
# Each writer logs through the project's settings, as every web and worker process does.
WRITER = """
import logging, sys, time
import django
django.setup()
log = logging.getLogger("heygem.test")
tag = sys.argv[1]
for i in range(int(sys.argv[2])):
    log.warning("writer %s line %05d %s", tag, i, "x" * 120)
    if i % 50 == 0:
        time.sleep(0.05)
"""
LINE = re.compile(r" WARNING heygem\.test \[\d+\] writer (\w) line (\d{5}) x{120}$")


def _writers(log_dir: Path) -> list[subprocess.Popen]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "DEBUG"}},
        "DJANGO_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "heygem_site.settings",
        "LOG_DIR": str(log_dir),
        "VAR_DIR": str(log_dir.parent / "var"),
        "PYTHONPATH": str(ROOT),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, tag, str(LINES)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for tag in "abc"[:WRITERS]
    ]


def _rotate(log_dir: Path, generation: int) -> None:
    """What logrotate does without copytruncate: move the file; the writers make a new one."""
    (log_dir / "heygem.log").rename(log_dir / f"heygem.log.{generation}")


def test_many_writers_and_rotations_lose_no_line(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    writers = _writers(log_dir)
    rotations = 0
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers):
        assert time.monotonic() < deadline, "the writers did not finish"
        current = log_dir / "heygem.log"
        if current.exists() and current.stat().st_size > 20_000:
            rotations += 1
            _rotate(log_dir, rotations)
        time.sleep(0.02)
    assert all(w.returncode == 0 for w in writers)
    # After a move the writers must start a new heygem.log (logrotate's `create` aside),
    # not keep filling the moved one: else there is never a second file to move.
    assert rotations >= 2, "the writers kept writing into the moved file"

    seen: dict[str, list[int]] = {tag: [] for tag in "abc"[:WRITERS]}
    files = sorted(log_dir.iterdir())
    for path in files:
        for line in path.read_text().splitlines():
            match = LINE.search(line)
            assert match, f"a broken or foreign line in {path.name}: {line!r}"
            seen[match[1]].append(int(match[2]))
    for tag, numbers in seen.items():
        assert sorted(numbers) == list(range(LINES)), f"writer {tag} lost or doubled lines"


def test_the_shipped_logrotate_file_is_valid(tmp_path):
    """docs/deploy/logrotate-heygem, pointed at a temp folder, rotates for real."""
    assert shutil.which("logrotate"), "make test installs logrotate (TEST_DEBS)"
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "heygem.log").write_text("a line\n")
    text = (ROOT / "docs/deploy/logrotate-heygem").read_text()
    assert "/srv/heygem/var/log/heygem.log {" in text
    user = os.environ.get("USER") or "root"
    config = text.replace("/srv/heygem/var/log/heygem.log", str(log_dir / "heygem.log"))
    config = config.replace("su heygem heygem", f"su {user} {user}")
    config = config.replace("create 0640 heygem heygem", f"create 0640 {user} {user}")
    conf = tmp_path / "heygem.conf"
    conf.write_text(config)
    done = subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (log_dir / "heygem.log.1").read_text() == "a line\n"  # delaycompress
    assert (log_dir / "heygem.log").exists()  # `create`: a fresh file for the writers
