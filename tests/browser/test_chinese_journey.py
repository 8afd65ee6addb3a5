"""The main journey with a Chinese browser in Shanghai: log in, a new batch, watch it render,
bundle it, read the audit log and its CSV. Every page must speak Chinese (no English message
of our catalogues on it) and show times in Shanghai time."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.utils import translation
from playwright.sync_api import expect

from accounts.models import User
from exports.models import Export
from jobs import services
from jobs.models import Batch
from tests.browser.cluster import ROOT
from tests.browser.helpers import LIVENESS_MS, screenshot
from tests.factories import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.queue,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
]

CJK = re.compile(r"[\u4e00-\u9fff]")


def zh(message: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(message)


@cache
def english_messages() -> re.Pattern:
    """Every message of our catalogues that Chinese says differently, as it would show on a
    page (placeholders cut out, each remaining run of 2+ words or one 4+ letter word)."""
    phrases: set[str] = set()
    for po in ROOT.glob("**/locale/zh_Hans/LC_MESSAGES/django*.po"):  # the pages' catalogues
        if ".venv" in po.parts:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh)
        for message in catalog:
            if not message.id or not message.string:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if ids[0] in strings:
                continue  # the same in both (API, Webhook, HeyGem Studio …)
            for text in ids:
                for run in re.split(r"%(?:\([a-z_0-9]+\))?[sdif]|<[^>]+>|[.:;,!?()“”\"…]", text):
                    run = run.strip(" -–—·/")
                    if any(run in translated for translated in strings):
                        continue  # a name the translation keeps (warp, MP4, manifest.csv)
                    if len(run.split()) >= 2 or re.fullmatch(r"[A-Za-z]{4,}", run):
                        phrases.add(run)
    alternatives = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![\w@.])(" + "|".join(map(re.escape, alternatives)) + r")(?![\w@])")


def assert_chinese(page, name: str, *, heading: bool = True) -> None:
    """The page is in Chinese: <html lang>, a Chinese heading (unless the heading is a name
    the team chose), no English message of ours anywhere on it."""
    assert page.locator("html").get_attribute("lang") == "zh-hans", name
    if heading:
        title = page.locator("h1").first.inner_text()
        assert CJK.search(title), f"{name}: heading {title!r} is not Chinese"
    # The language switch names each language in itself ("English"): not a leftover.
    text = page.evaluate(
        """() => [...document.body.querySelectorAll(":scope > *")]
                   .filter((el) => !el.matches("script"))
                   .map((el) => {
                     const copy = el.cloneNode(true);
                     copy.querySelectorAll(".language-switch").forEach((s) => s.remove());
                     return copy.textContent;
                   }).join("\\n")"""
    )
    leftovers = sorted(set(english_messages().findall(text)))
    assert not leftovers, f"{name}: English on the Chinese page: {leftovers}"


def test_a_team_in_shanghai_uses_every_page_in_chinese(
    new_page, admin, outsider, clusters, browser_media, tmp_path
):
    project = services.project_create(membership=admin, name="春季经销商视频")
    page = new_page(locale="zh-CN", timezone_id="Asia/Shanghai")

    # Logging in: the browser's language, before anyone is known.
    page.goto(f"/o/acme/projects/{project.pk}/")
    expect(page.get_by_role("heading", name=zh("Log in"))).to_be_visible()
    assert_chinese(page, "login")
    screenshot(page, "zh-login")
    page.get_by_label(zh("E-mail")).fill("admin@acme.test")
    with translation.override("zh-hans"):
        password_label = str(translation.gettext("Password"))
    page.get_by_label(password_label).fill(PASSWORD)
    page.get_by_role("button", name=zh("Log in")).click()
    expect(page.get_by_role("heading", name="春季经销商视频")).to_be_visible()
    assert_chinese(page, "project", heading=False)  # the project's own (Chinese) name
    user = User.objects.get(email="admin@acme.test")
    assert user.time_zone == "Asia/Shanghai"  # preset from the browser on the first login

    # A new batch: upload an avatar and three audio tracks, submit.
    page.get_by_role("link", name=zh("New batch")).click()
    assert_chinese(page, "new batch")
    page.locator("#avatar_files").set_input_files(browser_media["avatar"])
    page.locator("#audio_files").set_input_files(browser_media["audios"])
    uploads = page.locator("[data-upload-list] li")
    expect(uploads).to_have_count(4)
    with translation.override("zh-hans"):
        verdict_accepted = translation.pgettext("upload verdict", "accepted")
    for i in range(4):
        expect(uploads.nth(i)).to_contain_text(verdict_accepted, timeout=LIVENESS_MS)
    page.locator("#id_name").fill("北京经销商")
    submit = page.get_by_role("button", name=zh("Submit batch"))
    expect(submit).to_be_enabled()
    screenshot(page, "zh-new-batch")
    submit.click()

    # Watching it render: the page follows the cluster by itself.
    expect(page).to_have_url(re.compile(r"/o/acme/batches/\d+/$"))
    assert_chinese(page, "batch (queued)")
    clusters.render()
    expect(page.locator("[data-batch-finished]")).to_have_text("3", timeout=LIVENESS_MS)
    expect(page.locator("[data-results] figure")).to_have_count(3)
    batch = Batch.objects.get()
    assert all(job.status == "succeeded" for job in batch.jobs.all())
    assert_chinese(page, "batch (done)")
    submitted = page.locator("time").first
    assert submitted.get_attribute("title") == "Asia/Shanghai"
    created_local = batch.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    expect(submitted).to_have_text(created_local.strftime("%Y-%m-%d %H:%M"))
    screenshot(page, "zh-batch")

    # The bundle: the one-click button, the confirmation, the build, the download.
    page.get_by_role("link", name=zh("Download all as ZIP")).click()
    assert_chinese(page, "bundle confirmation")
    screenshot(page, "zh-export-confirm")
    page.locator("[data-confirm-bundle]").click()
    expect(page).to_have_url(re.compile(r"/o/acme/exports/\d+/$"))
    clusters.light()
    download = page.locator("[data-download]")
    expect(download).to_be_visible(timeout=LIVENESS_MS)
    assert_chinese(page, "bundle ready")
    screenshot(page, "zh-export-ready")
    with page.expect_download() as download_info:
        download.click()
    zip_path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(zip_path)
    export = Export.objects.get()
    assert zip_path.stat().st_size == export.zip_bytes

    # The audit log and its CSV, as Excel on Chinese Windows would open it.
    page.get_by_role("navigation").get_by_role("link", name=zh("Audit log")).click()
    assert_chinese(page, "audit log")
    expect(page.locator("table.audit tbody tr").first).to_be_visible()
    screenshot(page, "zh-audit-log")
    with page.expect_download() as csv_info:
        page.locator("a[href$='audit.csv'], a[href*='audit.csv?']").first.click()
    raw = Path(csv_info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs
    text = raw.decode("utf-8-sig")
    assert "春季经销商视频" in text or "北京经销商" in text
    assert "+08:00" in text  # times in the person's zone, with the offset

    # The other pages of the navigation, each in Chinese.
    for link in ("Overview", "Projects", "Bundles", "Members", "API tokens", "Webhooks"):
        page.get_by_role("navigation").get_by_role("link", name=zh(link), exact=True).click()
        assert_chinese(page, link, heading=link != "Overview")  # the organization's name
    screenshot(page, "zh-webhooks")
