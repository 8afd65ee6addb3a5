"""The one-click bundle from the browser: the button, the confirmation with count and size,
the build on a real cluster, and the ZIP downloaded through the browser."""

import csv
import hashlib
import io
import re
import zipfile

import pytest
from django.template.defaultfilters import filesizeformat
from playwright.sync_api import expect

from accounts.models import AuditEvent
from core.storage import media as storage
from exports.models import Export
from jobs.models import Output
from tests.browser.helpers import LIVENESS_MS, screenshot
from tests.browser.seed import rendered_batch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.queue,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
]


def test_bundle_button_confirm_build_and_download_the_zip(
    new_page, member, outsider, clusters, browser_media, tmp_path
):
    batch = rendered_batch(member, browser_media)
    outputs = {
        o.name: o for o in Output.objects.filter(job__batch=batch).select_related("job__audio")
    }
    assert sorted(outputs) == [f"presenter__take{i}.mp4" for i in (1, 2, 3)]

    page = new_page(member)
    page.goto(f"/o/acme/batches/{batch.pk}/")
    expect(page.locator("[data-results] figure")).to_have_count(3)

    # The button only asks: what would be packed, how many, how large.
    page.get_by_role("link", name="Download all as ZIP").click()
    expect(page.get_by_role("heading", name="Download as one ZIP")).to_be_visible()
    expect(page.get_by_text("Spring promo")).to_be_visible()
    expect(page.locator(".bundle-size")).to_contain_text("3 videos,")
    expect(page.locator("[data-count]")).to_have_text("3")
    total = sum(o.bytes for o in outputs.values())
    expect(page.locator("[data-size]")).to_have_text(filesizeformat(total))
    assert not Export.objects.exists()  # nothing expensive happened yet
    screenshot(page, "export-confirm")

    # Confirmed: the export waits on the queue until a worker of the light cluster is up.
    page.get_by_role("button", name="Pack 3 videos").click()
    expect(page).to_have_url(re.compile(r"/o/acme/exports/\d+/$"))
    export = Export.objects.get()
    assert page.url.endswith(f"/o/acme/exports/{export.pk}/")
    expect(page.locator("[data-export-status]")).to_have_text("queued")
    expect(page.get_by_text("Packing… this page updates by itself.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Download ZIP"))).to_be_hidden()

    # Once the light cluster's worker packs it, the download starts by itself: no click.
    with page.expect_download(timeout=LIVENESS_MS) as download_info:
        clusters.light()
    download = download_info.value
    download_button = page.get_by_role("link", name=re.compile("^Download ZIP"))
    expect(download_button).to_be_visible()  # still there for another try
    expect(page.locator("[data-export-status]")).to_have_text("ready")
    expect(page.get_by_text("Packing… this page updates by itself.")).to_be_hidden()
    # Said to screen readers too: ready, then the download has started.
    expect(page.locator("[data-export-live]")).to_have_text("The bundle is ready to download.")
    started = page.locator("[data-export-started]")
    expect(started).to_have_text("Your download has started. If it did not, use the button above.")
    expect(started).to_have_attribute("role", "status")
    export.refresh_from_db()
    assert export.status == Export.Status.READY
    # Named after what it holds: the project, the kind of scope, the batch; then time and id.
    assert re.fullmatch(
        rf"{re.escape(batch.project.name)}_batch_{re.escape(str(batch))}_\d{{8}}_\d{{4}}_"
        rf"{export.pk}\.zip",
        export.filename,
    )
    expect(page.get_by_text(export.filename)).to_be_visible()
    screenshot(page, "export-ready")

    assert download.suggested_filename == export.filename
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.stat().st_size == export.zip_bytes

    # A reload does not download again; the button still does.
    page.reload()
    expect(page.locator("[data-export-started]")).to_be_hidden()
    page.wait_for_timeout(1500)
    assert Export.objects.get(pk=export.pk).download_count == 1
    with page.expect_download() as again:
        download_button.click()
    assert again.value.suggested_filename == export.filename

    with zipfile.ZipFile(path) as bundle:
        assert bundle.testzip() is None  # every CRC-32 checks out
        names = bundle.namelist()
        assert names[0] == "manifest.csv"
        assert sorted(names[1:]) == sorted(outputs)
        videos = {}
        for info in bundle.infolist()[1:]:
            assert info.compress_type == zipfile.ZIP_STORED  # videos are packed as they are
            videos[info.filename] = bundle.read(info)
        manifest_text = bundle.read("manifest.csv").decode("utf-8-sig")
    for name, data in videos.items():
        assert data == storage.read_bytes(outputs[name].file.name)

    manifest = list(csv.DictReader(io.StringIO(manifest_text)))
    assert sorted(row["path"] for row in manifest) == sorted(outputs)
    for row in manifest:
        output = outputs[row["path"]]
        assert row["sha256"] == output.sha256 == hashlib.sha256(videos[row["path"]]).hexdigest()
        assert int(row["bytes"]) == output.bytes == len(videos[row["path"]])
        assert row["avatar"] == "presenter.mp4"
        assert row["source_audio"] == output.job.audio.original_name

    events = {
        e.action: e
        for e in AuditEvent.objects.filter(
            organization=member.organization, target_type="export", target_id=str(export.pk)
        )
    }
    assert set(events) >= {"export.requested", "export.built", "export.downloaded"}
    assert events["export.requested"].actor == member.user
    assert events["export.requested"].file_count == 3
    assert events["export.downloaded"].actor == member.user
    assert events["export.downloaded"].ip == "127.0.0.1"
    assert AuditEvent.objects.filter(action="export.downloaded").count() == 2  # auto + click

    # Asked again for the same batch: the ready bundle is offered instead of a rebuild.
    page.goto(f"/o/acme/exports/new/?batch={batch.pk}")
    expect(page.get_by_text("This bundle is ready:")).to_be_visible()
    expect(page.get_by_role("button", name="Build a fresh one")).to_be_visible()
    expect(page.get_by_role("button", name="Pack 3 videos")).to_have_count(0)
    with page.expect_download() as offered:
        page.get_by_role("link", name="download it").click()
    assert offered.value.suggested_filename == export.filename
    assert Export.objects.count() == 1
