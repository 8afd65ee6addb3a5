"""Small pieces the benchmark scripts share (run as scripts: ``bench/`` is on sys.path)."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Variables that would point an app started by a bench at something other than its throwaway
# installation; each bench starts from os.environ without them (clean_environ).
APP_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "VAR_DIR",
    "MEDIA_ROOT",
    "EXPORT_ROOT",
    "LOG_DIR",
    "EXPORT_STORAGE",
    "EXPORT_X_ACCEL_PREFIX",
    "CSRF_TRUSTED_ORIGINS",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ENV",
)


def clean_environ(also: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without APP_VARIABLES and ``also``."""
    drop = {*APP_VARIABLES, *also}
    return {k: v for k, v in os.environ.items() if k not in drop}


def log(text: str = "") -> None:
    print(text, flush=True)


def django_setup() -> None:
    """Set Django up in a child phase (its environment is the throwaway installation's)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heygem_site.settings")
    import django

    django.setup()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def proc_stat_cpu() -> dict[str, float]:
    """The machine's CPU seconds so far by kind (the first line of /proc/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    kinds = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {kind: int(value) / tick for kind, value in zip(kinds, first, strict=True)}


def wait_for_gunicorn(server, host: str, port: int, log_path: Path, seconds: float = 60) -> int:
    """Wait until gunicorn (the Popen ``server``) serves the login page; return ``port``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/login/")
            if conn.getresponse().status == 200:
                conn.close()
                return port
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {seconds:.0f} s")
