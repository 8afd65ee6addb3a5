"""The header's notification badge follows new messages without a reload: it polls while the
tab is visible, stops while it is hidden, and tells screen readers what arrived."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from playwright.sync_api import expect

from accounts.models import Notification
from accounts.services import notify
from tests.browser.helpers import LIVENESS_MS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

POLL_MS = 500

SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture(autouse=True)
def _fast_poll(settings):
    settings.NOTIFICATION_POLL_MS = POLL_MS


def _ready(membership, label="Spring", videos=3):
    notify(
        user=membership.user,
        organization=membership.organization,
        kind="export.ready",
        level="success",
        message=f"Your bundle “{label}” is ready ({videos} videos).",
        link=f"/o/{membership.organization.slug}/exports/1/",
    )


UNREAD_URL = re.compile(r"/notifications/unread\.json$")


class PollLog:
    """The badge's requests as the browser sends them."""

    def __init__(self, page):
        self.sent: list[str] = []
        self.done: list[str] = []
        page.on("request", lambda r: UNREAD_URL.search(r.url) and self.sent.append(r.url))
        page.on("requestfinished", lambda r: UNREAD_URL.search(r.url) and self.done.append(r.url))
        page.on("requestfailed", lambda r: UNREAD_URL.search(r.url) and self.done.append(r.url))

    def settle(self, page) -> int:
        """Wait until no poll is on its way; returns how many were sent."""
        page.wait_for_timeout(POLL_MS)
        while len(self.done) < len(self.sent):
            page.wait_for_timeout(50)
        return len(self.sent)


def test_badge_shows_new_notifications_without_reload(new_page, member, outsider):
    page = new_page(member)
    polls = PollLog(page)
    page.goto("/o/acme/")
    bell = page.get_by_role("link", name=re.compile(r"^Notifications"))
    badge = page.locator("[data-unread-count]")
    live = page.locator("[data-unread-live]")
    expect(bell).to_have_attribute("data-poll-ms", str(POLL_MS))
    expect(badge).to_be_hidden()
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_be_empty()
    page.evaluate("() => { window.sameDocument = true; }")
    polls.settle(page)

    _ready(member)
    expect(badge).to_be_visible(timeout=LIVENESS_MS)
    expect(badge).to_have_text("1 unread")
    expect(bell).to_have_accessible_name("Notifications 1 unread")
    expect(live).to_have_text("1 new notification: Your bundle “Spring” is ready (3 videos).")

    # Two more at once; someone else's, in another organization, never counts.
    with transaction.atomic():  # both in one commit: no poll can fall between them
        _ready(member, "Summer")
        _ready(member, "Autumn")
    _ready(outsider)
    expect(badge).to_have_text("3 unread", timeout=LIVENESS_MS)
    expect(live).to_have_text("2 new notifications")
    assert page.evaluate("() => window.sameDocument") is True  # never reloaded
    assert polls.sent and all(u.endswith("/o/acme/notifications/unread.json") for u in polls.sent)

    # Opening the list reads them: the badge is gone there and stays gone.
    bell.click()
    expect(page).to_have_url(re.compile(r"/o/acme/notifications/$"))
    expect(
        page.get_by_role("link", name="Your bundle “Autumn” is ready (3 videos).")
    ).to_be_visible()
    expect(badge).to_be_hidden()
    polls.settle(page)
    expect(badge).to_be_hidden()
    assert not Notification.objects.filter(user=member.user, read_at=None).exists()


def test_no_polling_while_the_tab_is_hidden(new_page, member):
    page = new_page(member)
    polls = PollLog(page)
    page.goto("/o/acme/")
    badge = page.locator("[data-unread-count]")
    with page.expect_request(UNREAD_URL, timeout=LIVENESS_MS):
        pass  # the badge polls while the tab is visible

    page.evaluate(SET_VISIBILITY, "hidden")
    before = polls.settle(page)
    _ready(member)
    page.wait_for_timeout(4 * POLL_MS)  # four intervals in which a visible tab would ask
    assert len(polls.sent) == before
    expect(badge).to_be_hidden()

    # Back in view, it asks at once instead of waiting for the next interval.
    page.evaluate(SET_VISIBILITY, "visible")
    expect(badge).to_have_text("1 unread", timeout=LIVENESS_MS)
    expect(page.locator("[data-unread-live]")).to_contain_text("1 new notification")
