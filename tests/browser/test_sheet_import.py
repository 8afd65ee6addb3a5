"""A sheet from the browser: a 20-row workbook of Chinese and English scripts uploaded,
previewed row by row and submitted; a real render cluster synthesises and renders the
videos; the batch page shows the scripts and voices; the bundle holds 20 videos and their 20
subtitle files, listed in manifest.csv. Prints how long synthesis and rendering took."""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect

from jobs import services
from jobs.models import Batch, RenderJob
from tests.browser.helpers import ACTION_MS, LIVENESS_MS, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.queue,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
]

CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "南京", "重庆"]


def _workbook() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["形象视频", "文案", "音色", "输出名称", "标签", "字幕"])
    for i, city in enumerate(CITIES):
        sheet.append(
            ["presenter.mp4", f"{city}的经销商朋友们，大家好。", "espeak:zh-cn",
             f"经销商_{city}", "中文", "否"]
        )  # fmt: skip
        sheet.append(
            ["presenter", f"Hello dealer {i + 1}. Welcome!", "en-us", f"dealer_{i + 1}",
             "english", "no"]
        )  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_import_preview_submit_render_and_bundle_a_sheet(
    new_page, member, clusters, browser_media, tmp_path
):
    avatar_copy = tmp_path / "presenter.mp4"
    shutil.copy(browser_media["avatar"], avatar_copy)
    services.asset_create(
        membership=member,
        kind="avatar",
        upload=services.UploadedMedia(avatar_copy, "presenter.mp4"),
    )
    project = services.project_create(membership=member, name="Dealers")
    page = new_page(member)
    page.goto(f"/o/acme/projects/{project.pk}/")
    page.get_by_role("link", name="Import a sheet").click()
    expect(page.get_by_role("heading", name="Import a sheet")).to_be_visible()
    expect(page.get_by_role("link", name="Download the template sheet")).to_be_visible()

    page.get_by_label("Sheet (.xlsx or .csv)").set_input_files(
        {
            "name": "dealers.xlsx",
            "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "buffer": _workbook(),
        }
    )
    page.get_by_role("button", name="Check the sheet").click()
    rows = page.locator(".sheet-rows tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator(".sheet-rows tbody tr.ok")).to_have_count(20)
    expect(page.get_by_text("20 rows are ready.")).to_be_visible()
    expect(rows.nth(0)).to_contain_text("经销商_北京.mp4")
    expect(rows.nth(1)).to_contain_text("Hello dealer 1. Welcome!")
    expect(rows.nth(1)).to_contain_text("English (US), male")
    assert not Batch.objects.exists()  # a preview submits nothing
    screenshot(page, "sheet-preview")

    page.get_by_role("button", name="Submit 20 videos").click()
    expect(page.get_by_role("status")).to_contain_text("Batch submitted: 20 videos are queued.")
    batch = Batch.objects.get()
    jobs = page.locator("[data-job]")
    expect(jobs).to_have_count(20)
    expect(jobs.nth(0)).to_contain_text("北京的经销商朋友们，大家好。")
    expect(jobs.nth(0)).to_contain_text("voice: Mandarin Chinese, male (espeak-ng)")
    expect(jobs.nth(1)).to_contain_text("saved as dealer_1.mp4")

    clusters.render()
    finished = page.locator("[data-batch-finished]")
    done = 0
    while done < 20:  # liveness: another video finishes within each LIVENESS_MS
        expect(finished).not_to_have_text(str(done), timeout=LIVENESS_MS)
        done = int(finished.text_content())
    expect(page.locator("[data-batch-status]")).to_have_text("succeeded")
    results = page.locator("[data-results] figure")
    expect(results).to_have_count(20)
    expect(results.get_by_role("link", name="Subtitles (.srt)")).to_have_count(20)
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-results] img")]
                   .every((img) => img.complete && img.naturalWidth > 0)""",
        timeout=ACTION_MS,
    )
    screenshot(page, "batch-scripts")

    # The player gets the video's WebVTT track.
    results.first.get_by_role("button").click()
    track = page.locator("[data-player] video track")
    expect(track).to_have_attribute("kind", "subtitles")
    page.wait_for_function(
        "() => document.querySelector('[data-player] video').textTracks[0].cues?.length > 0",
        timeout=ACTION_MS,
    )
    page.get_by_role("button", name="Close").click()

    records = list(batch.jobs.select_related("output", "script__audio").order_by("id"))
    assert [j.status for j in records] == [RenderJob.Status.SUCCEEDED] * 20
    _report_timing(records)

    page.get_by_role("link", name="Download all as ZIP").click()
    page.get_by_role("button", name="Pack 20 videos").click()
    clusters.light()
    download_button = page.get_by_role("link", name=re.compile("^Download ZIP"))
    expect(download_button).to_be_visible(timeout=LIVENESS_MS)
    with page.expect_download() as download_info:
        download_button.click()
    path = tmp_path / "bundle.zip"
    download_info.value.save_as(path)
    with zipfile.ZipFile(path) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        manifest = list(
            csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode("utf-8-sig")))
        )
        srt = bundle.read("经销商_北京.srt").decode()
    videos = sorted(n for n in names if n.endswith(".mp4"))
    subtitles = sorted(n for n in names if n.endswith(".srt"))
    assert len(videos) == 20 and len(subtitles) == 20
    assert videos == sorted(
        [f"经销商_{c}.mp4" for c in CITIES] + [f"dealer_{i}.mp4" for i in range(1, 11)]
    )
    assert subtitles == sorted(v[:-4] + ".srt" for v in videos)
    assert sorted(row["path"] for row in manifest) == sorted(videos + subtitles)
    assert "北京的经销商朋友们，大家好。" in srt


def _report_timing(jobs: list[RenderJob]) -> None:
    """How long the 20 took on this machine: each job's own time (synthesis included: a
    script is spoken by the worker that renders it) and the batch's wall time on the
    cluster, from the first start to the last finish."""
    own = [(j.finished_at - j.started_at).total_seconds() for j in jobs]
    wall = (max(j.finished_at for j in jobs) - min(j.started_at for j in jobs)).total_seconds()
    audio = [j.script.audio.duration for j in jobs]
    print(
        f"\nsheet of {len(jobs)} script videos (espeak-ng + warp, "
        f"{sum(audio) / len(audio):.1f} s of speech each on average): "
        f"per job started->finished mean {sum(own) / len(own):.2f} s, "
        f"min {min(own):.2f} s, max {max(own):.2f} s; "
        f"batch wall time {wall:.1f} s on the render cluster = {wall / len(jobs):.2f} s per video"
    )
