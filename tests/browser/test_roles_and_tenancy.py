"""What a viewer sees (and does not), and what a user of another organization gets: 404."""

import pytest
from playwright.sync_api import expect

from accounts.permissions import Role
from jobs.models import RenderJob
from tests.browser.seed import built_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]


@pytest.fixture
def busy_batch(member, make_outputs):
    """One finished video, one still queued, one failed: every control has a reason to show."""
    batch, outputs = make_outputs(member, ["take1.mp4"], batch_name="Spring promo")
    done = outputs[0].job
    common = {"batch": batch, "avatar": done.avatar, "audio": done.audio, "engine": "warp"}
    RenderJob.objects.create(status="queued", **common)
    RenderJob.objects.create(status="failed", error="No face in frame 12.", **common)
    return batch


def batch_controls(page):
    return {
        "batch bundle": page.get_by_role("link", name="Download all as ZIP"),
        "cancel batch": page.get_by_role("button", name="Cancel batch"),
        "cancel job": page.get_by_role("button", name="Cancel", exact=True),
        "retry job": page.get_by_role("button", name="Retry"),
    }


def test_viewer_sees_no_submit_bundle_or_job_controls(new_page, admin, viewer, busy_batch):
    project = busy_batch.project
    # The same pages as an admin: the controls are there, so their absence below means something.
    seen = {}
    for who in (admin, viewer):
        page = new_page(who)
        page.goto(f"/o/acme/projects/{project.pk}/")
        expect(page.get_by_role("heading", name=project.name)).to_be_visible()
        seen[(who.role, "new batch")] = page.get_by_role("link", name="New batch").count()
        seen[(who.role, "project bundle")] = page.locator("[data-bundle]").count()

        page.get_by_role("link", name="Spring promo").click()
        expect(page.get_by_role("heading", name="Spring promo")).to_be_visible()
        page.wait_for_load_state()  # the whole page is there before counting what is not
        expect(page.locator("[data-results] figure")).to_have_count(1)  # results: for everyone
        expect(page.locator("[data-results] figure")).to_contain_text("take1.mp4")
        for name, locator in batch_controls(page).items():
            seen[(who.role, name)] = locator.count()

        page.get_by_role("navigation", name="Organization").get_by_role(
            "link", name="Members"
        ).click()
        expect(page.get_by_role("heading", name="Members of Acme Media")).to_be_visible()
        page.wait_for_load_state()
        seen[(who.role, "invite form")] = page.get_by_role("button", name="Send invitation").count()
        seen[(who.role, "role change")] = page.get_by_role("button", name="Change").count()
        seen[(who.role, "remove member")] = page.get_by_role("button", name="Remove").count()

    admin_saw = {k[1]: v for k, v in seen.items() if k[0] == Role.ADMIN}
    viewer_saw = {k[1]: v for k, v in seen.items() if k[0] == Role.VIEWER}
    assert all(admin_saw.values()), admin_saw
    assert not any(viewer_saw.values()), viewer_saw

    # Typing the address does not help either.
    page = new_page(viewer)
    for path in (
        f"/o/acme/projects/{project.pk}/batches/new/",
        f"/o/acme/exports/new/?batch={busy_batch.pk}",
    ):
        assert page.goto(path).status == 403, path


def test_another_organization_gets_404_on_every_page(new_page, owner, outsider, make_outputs):
    batch, outputs = make_outputs(owner, ["take1.mp4"], batch_name="Spring promo")
    project, output = batch.project, outputs[0]
    export = built_export(owner, batch)

    page = new_page(outsider)
    response = page.goto("/o/rival/projects/")
    assert response.status == 200  # logged in, in their own organization
    pages = [
        "/o/acme/",
        "/o/acme/projects/",
        f"/o/acme/projects/{project.pk}/",
        f"/o/acme/batches/{batch.pk}/",
        f"/o/acme/exports/{export.pk}/",
        "/o/acme/exports/",
        "/o/acme/audit/",
        "/o/acme/members/",
        # The ids of the first organization under the second one's own address.
        f"/o/rival/projects/{project.pk}/",
        f"/o/rival/batches/{batch.pk}/",
        f"/o/rival/exports/{export.pk}/",
    ]
    for path in pages:
        response = page.goto(path)
        assert response.status == 404, path
        main = page.get_by_role("main")
        expect(main).not_to_contain_text("Acme")
        expect(main).not_to_contain_text("Spring")
    files = [
        f"/o/acme/batches/{batch.pk}/status.json",
        f"/o/acme/exports/{export.pk}/status.json",
        f"/o/acme/exports/{export.pk}/download/",
        f"/o/acme/outputs/{output.pk}/play/",
        f"/o/acme/outputs/{output.pk}/download/",
        "/o/acme/audit.csv",
        f"/o/rival/exports/{export.pk}/download/",
        f"/o/rival/outputs/{output.pk}/download/",
    ]
    for path in files:
        assert page.request.get(path, max_redirects=0).status == 404, path
    export.refresh_from_db()
    assert export.download_count == 0
