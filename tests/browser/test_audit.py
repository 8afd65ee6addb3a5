"""An admin reviews who packed and downloaded what: the audit log page, its filters and its
CSV, all through the browser."""

import csv
import io
import re
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from accounts.spreadsheet import audit_csv_header
from jobs.models import Project
from tests.browser.helpers import screenshot
from tests.browser.seed import built_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]


def filter_by(page, *, action: str, actor: str) -> None:
    """Choose the filters and apply them; returns once the filtered page is shown."""
    page.get_by_label("Action type").select_option(action)
    page.get_by_label("Actor e-mail contains").fill(actor)
    page.get_by_role("button", name="Apply filters").click()
    wanted = {"action": [action], "actor": [actor]}

    def filtered(url: str) -> bool:
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        return {key: query.get(key) for key in wanted} == wanted

    page.wait_for_url(filtered)


def audit_rows(page):
    return page.locator("table.audit tbody").get_by_role("row")


def read_csv(download) -> list[dict]:
    with open(download.path(), encoding="utf-8-sig", newline="") as f:
        text = f.read()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == audit_csv_header(zoneinfo.ZoneInfo("UTC"))  # the browser's (and admin's) zone
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_admin_filters_the_audit_log_and_downloads_the_csv(
    new_page, owner, admin, member, viewer, outsider, make_outputs
):
    project = Project.objects.create(organization=member.organization, name="Spring campaign")
    batch, _ = make_outputs(
        member, ["take1.mp4", "take2.mp4"], project=project, batch_name="Spring promo"
    )
    export = built_export(member, batch)
    # Another organization's bundle: none of it may show up below.
    rival_batch, _ = make_outputs(outsider, ["secret.mp4"], batch_name="Rival launch")
    built_export(outsider, rival_batch)

    page = new_page(admin)
    page.goto(f"/o/acme/exports/{export.pk}/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("^Download ZIP")).click()
    assert download_info.value.suggested_filename == export.filename

    page.get_by_role("navigation", name="Organization").get_by_role(
        "link", name="Audit log"
    ).click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(audit_rows(page).filter(has_text="Bundle downloaded")).to_have_count(1)
    expect(page.get_by_role("main")).not_to_contain_text("boss@rival.test")
    expect(page.get_by_role("main")).not_to_contain_text("Rival launch")
    screenshot(page, "audit-log")

    # Filter by action (the select) and actor: who asked for a bundle?
    filter_by(page, action="export.requested", actor="member@")
    rows = audit_rows(page)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("member@acme.test")
    expect(rows.first).to_contain_text("Bundle requested")
    expect(rows.first).to_contain_text("Spring promo")
    expect(page.get_by_label("Action type")).to_have_value("export.requested")  # the filter stays
    expect(page.get_by_label("Actor e-mail contains")).to_have_value("member@")

    # ... and who downloaded it, from where.
    filter_by(page, action="export.downloaded", actor="admin@")
    rows = audit_rows(page)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("admin@acme.test")
    expect(rows.first).to_contain_text("127.0.0.1")

    filter_by(page, action="export.downloaded", actor="nobody@")
    expect(audit_rows(page)).to_have_count(0)
    expect(page.get_by_text("No events match these filters.")).to_be_visible()

    # The CSV follows the filters on the page.
    filter_by(page, action="export.requested", actor="")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    assert download_info.value.suggested_filename.endswith(".csv")
    rows = read_csv(download_info.value)
    assert [(r["action"], r["actor"]) for r in rows] == [("export.requested", "member@acme.test")]

    # Unfiltered: the whole story of the bundle, and nothing of the other organization.
    filter_by(page, action="", actor="")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    rows = read_csv(download_info.value)
    story = [
        (r["action"], r["actor"])
        for r in rows
        if r["target_type"] == "export" and r["target_id"] == str(export.pk)
    ]
    assert sorted(story) == [
        ("export.built", "system"),
        ("export.downloaded", "admin@acme.test"),
        ("export.requested", "member@acme.test"),
    ]
    downloaded = next(r for r in rows if r["action"] == "export.downloaded")
    assert downloaded["ip"] == "127.0.0.1" and downloaded["file_count"] == "2"
    assert "Chrome" in downloaded["user_agent"]
    assert not [r for r in rows if "rival" in (r["actor"] + r["target"]).lower()]
    seqs = [int(r["seq"]) for r in rows]
    assert len(set(seqs)) == len(seqs)


def test_admin_sees_the_members_page(new_page, owner, admin, member, viewer, outsider):
    page = new_page(admin)
    page.goto("/o/acme/")
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members of Acme Media")).to_be_visible()
    for email in ("owner@acme.test", "member@acme.test", "viewer@acme.test"):
        expect(page.get_by_role("main")).to_contain_text(email)
    expect(page.get_by_role("main")).not_to_contain_text("boss@rival.test")
    expect(page.get_by_role("heading", name="Invite someone")).to_be_visible()
    expect(page.get_by_role("combobox", name="Role of member@acme.test")).to_have_value("member")
    screenshot(page, "members")
