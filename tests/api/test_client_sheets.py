"""``python -m heygem_client submit --sheet`` and ``template`` as a person runs them: a real
process against the live server, in English and in Chinese (LANG=zh_CN.UTF-8)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import services
from jobs.models import Batch, RenderJob
from jobs.sheets import read_sheet
from tests.api import test_client
from tests.test_scripts_and_sheets import SRT, _twenty_rows, _xlsx, every_row_count

ROOT = Path(__file__).resolve().parents[2]
# The live organization and the in-process render worker of the client's other tests.
live_org = test_client.live_org
render_worker = test_client.render_worker
_token = test_client._token
pytestmark = pytest.mark.django_db(transaction=True)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE") and not k.startswith("HEYGEM_")
    }
    clean["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "heygem_client", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )


@pytest.fixture
def library(live_org, media_dir, tmp_path):
    """The member's library: presenter.mp4, and intro.wav with its subtitles; a project."""
    _org, _admin, member = live_org
    made = {}
    for sample, name, kind in (
        ("face.mp4", "presenter.mp4", "avatar"),
        ("speech.wav", "intro.wav", "audio"),
    ):
        copy = tmp_path / f"upload-{name}"
        shutil.copy(media_dir / sample, copy)
        made[name] = services.asset_create(
            membership=member, kind=kind, upload=services.UploadedMedia(copy, name)
        )
    services.asset_attach_subtitles(membership=member, asset=made["intro.wav"], data=SRT)
    project = services.project_create(membership=member, name="Dealers")
    return member, project


def _auth(live_server, member) -> list[str]:
    return ["--url", live_server.url, "--org", "acme", "--token", _token(member)]


def test_a_bad_sheet_prints_every_row_error_and_submits_nothing(live_server, library, tmp_path):
    member, project = library
    sheet = tmp_path / "dealers.xlsx"
    sheet.write_bytes(_xlsx(_twenty_rows(bad=True)))
    auth = _auth(live_server, member)
    before = every_row_count()
    english = cli("submit", *auth, "--sheet", str(sheet), "--project", str(project.pk), LANG="C")
    assert english.returncode == 2, english.stderr
    lines = english.stderr.splitlines()
    assert lines[0].startswith("error: 3 rows of the sheet have errors; nothing was submitted.")
    assert lines[1] == "  Row 6: There is no avatar video called “nobody.mp4” in the library."
    assert lines[2].startswith("  Row 12: There is no voice “klingon”. Choose one of:")
    assert lines[3] == "  Row 18: Write yes or no in the subtitles column, not “maybe”."
    assert english.stdout == ""
    chinese = cli(
        "submit", *auth, "--sheet", str(sheet), "--project", "Dealers", LANG="zh_CN.UTF-8"
    )
    assert chinese.returncode == 2, chinese.stderr
    lines = chinese.stderr.splitlines()
    assert lines[0].startswith("错误：表格中有 3 行有错误")
    assert lines[1] == "  第 6 行：素材库中没有名为“nobody.mp4”的形象视频。"
    assert lines[2].startswith("  第 12 行：") and lines[3].startswith("  第 18 行：")
    assert every_row_count() == before  # not a batch, not a script, not a file


def test_a_good_sheet_is_submitted_and_followed(
    live_server,
    library,
    render_worker,
    tmp_path,
):
    member, _project = library
    rows = _twenty_rows(bad=False)
    sheet = tmp_path / "dealers.xlsx"
    sheet.write_bytes(_xlsx([rows[0], rows[1], rows[4]]))  # Chinese, English, audio + SRT
    done = cli(
        "submit", *_auth(live_server, member), "--sheet", str(sheet), "--project", "Dealers",
        "--tag", "wave-2", "--wait", "--interval", "0.2", LANG="C",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    batch = Batch.objects.get()
    assert done.stdout.splitlines() == [
        f"Batch {batch.pk}: 3 videos queued in “Dealers”.",
        f"Batch {batch.pk} succeeded: 3 of 3 videos rendered.",
    ]
    assert sorted(batch.tags.values_list("name", flat=True)) == [
        "audio", "english", "wave-2", "中文",
    ]  # fmt: skip
    assert list(batch.jobs.order_by("id").values_list("output_name", flat=True)) == [
        "经销商_0", "dealer_1", "intro_4",
    ]  # fmt: skip
    assert set(batch.jobs.values_list("status", flat=True)) == {RenderJob.Status.SUCCEEDED}
    assert all(j.output.subtitles for j in batch.jobs.select_related("output"))


def test_a_good_sheet_in_chinese_and_the_template(live_server, library, tmp_path):
    member, _project = library
    sheet = tmp_path / "经销商.xlsx"
    sheet.write_bytes(_xlsx(_twenty_rows(bad=False)))
    auth = _auth(live_server, member)
    queued = cli("submit", *auth, "--sheet", str(sheet), "--project", "Dealers",
                 LANG="zh_CN.UTF-8")  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    batch = Batch.objects.get()
    assert batch.jobs.count() == 20
    assert queued.stdout.strip().startswith(f"批量任务 {batch.pk}：")
    assert "20" in queued.stdout and "Dealers" in queued.stdout
    out = tmp_path / "template.xlsx"
    saved = cli("template", *auth, "--out", str(out), LANG="C")
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == f"Saved the template sheet as {out}."
    assert [r.avatar for r in read_sheet("template.xlsx", out.read_bytes())] == [
        "presenter.mp4", "presenter.mp4",
    ]  # fmt: skip


def test_submit_needs_a_sheet_or_an_avatar_and_audio(tmp_path):
    both = cli("submit", "--sheet", "x.xlsx", "--avatar", "a.mp4", "--project", "p", LANG="C")
    assert both.returncode == 2
    assert "--sheet takes the place of --avatar and --audio-dir." in both.stderr
    neither = cli("submit", "--project", "p", LC_ALL="zh_CN.UTF-8")
    assert neither.returncode == 2
    assert "缺少以下必需参数：--avatar, --audio-dir" in neither.stderr
