"""The results' player (issue 17) in a real browser: a thumbnail opens it on its video, titled
with the avatar and the audio; Previous/Next and the arrow keys walk the page's results (those
that arrive later too); Download follows the video shown; it fits a phone; and the results of
a tag on the project page play the same way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Output, RenderJob, Tag
from tests.browser.a11y import axe_violations, blocking, describe, overflow
from tests.browser.helpers import ACTION_MS, screenshot
from tests.browser.seed import rendered_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

PHONE = {"width": 390, "height": 844}
TITLES = [f"presenter.mp4 · take{i}.wav" for i in (1, 2, 3)]


@pytest.fixture
def batch(owner, outsider, browser_media):
    """Three real videos of one avatar and three audio tracks (numbered 1..3)."""
    return rendered_batch(owner, browser_media)


def outputs_of(batch) -> list[Output]:
    return list(Output.objects.filter(job__batch=batch).order_by("job__number"))


def expect_showing(player, output: Output, title: str, position: str) -> None:
    """The dialog shows ``output``: its video, its title, its place and its download."""
    expect(player.locator("video")).to_have_attribute("src", f"/o/acme/outputs/{output.pk}/play/")
    expect(player.get_by_role("heading")).to_have_text(title)
    expect(player).to_have_accessible_name(title)
    expect(player.locator("[data-player-position]")).to_have_text(position)
    expect(player.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/o/acme/outputs/{output.pk}/download/"
    )


def fits_on_screen(locator, size) -> None:
    box = locator.bounding_box()
    assert box is not None, locator
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"], box
    assert box["y"] + box["height"] <= size["height"], box


def test_the_player_walks_the_results_of_a_batch(new_page, owner, batch):
    outputs = outputs_of(batch)
    page = new_page(owner)
    page.goto(f"/o/acme/batches/{batch.pk}/")
    cards = page.locator("[data-results] figure")
    expect(cards).to_have_count(3)
    for i in range(3):
        expect(cards.nth(i).locator(".play-sign")).to_be_visible()
        expect(cards.nth(i).locator(".job-number")).to_have_text(f"#{i + 1}")

    page.get_by_role("button", name=f"Play {outputs[0].name}").click()
    player = page.get_by_role("dialog")
    expect(player).to_be_visible()
    expect_showing(player, outputs[0], TITLES[0], "Video 1 of 3")
    previous = player.get_by_role("button", name="Previous")
    following = player.get_by_role("button", name="Next")
    expect(previous).to_be_disabled()
    expect(following).to_be_enabled()
    expect(player.get_by_role("link", name="Subtitles (.srt)")).to_be_hidden()
    page.wait_for_function(
        "() => document.querySelector('[data-player] video').readyState >= 1", timeout=ACTION_MS
    )
    screenshot(page, "player", full_page=False)

    following.click()
    expect_showing(player, outputs[1], TITLES[1], "Video 2 of 3")
    expect(previous).to_be_enabled()
    page.keyboard.press("ArrowRight")
    expect_showing(player, outputs[2], TITLES[2], "Video 3 of 3")
    expect(following).to_be_disabled()
    page.keyboard.press("ArrowRight")  # the last one: nowhere to go
    expect_showing(player, outputs[2], TITLES[2], "Video 3 of 3")
    page.keyboard.press("ArrowLeft")
    expect_showing(player, outputs[1], TITLES[1], "Video 2 of 3")
    previous.click()
    expect_showing(player, outputs[0], TITLES[0], "Video 1 of 3")

    # Download gives the video shown, under its name.
    with page.expect_download() as download:
        player.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == outputs[0].name

    # Escape closes it, stops and unloads the video, and the focus is back on its card.
    page.keyboard.press("Escape")
    expect(player).to_be_hidden()
    page.wait_for_function(
        """() => { const v = document.querySelector("[data-player] video");
                   return v.paused && v.getAttribute("src") === null; }""",
        timeout=ACTION_MS,
    )
    expect(page.get_by_role("button", name=f"Play {outputs[0].name}")).to_be_focused()


def test_a_video_finished_while_the_page_is_open_joins_the_order(new_page, owner, batch):
    outputs = outputs_of(batch)
    middle = outputs[1].job_id
    RenderJob.objects.filter(pk=middle).update(status="running")
    page = new_page(owner)
    page.goto(f"/o/acme/batches/{batch.pk}/")
    expect(page.locator("[data-results] figure")).to_have_count(2)
    page.get_by_role("button", name=f"Play {outputs[0].name}").click()
    player = page.get_by_role("dialog")
    expect_showing(player, outputs[0], TITLES[0], "Video 1 of 2")
    player.get_by_role("button", name="Next").click()
    expect_showing(player, outputs[2], TITLES[2], "Video 2 of 2")
    expect(player.get_by_role("button", name="Next")).to_be_disabled()

    # The second job finishes: its card takes its place between the others, in the order too.
    RenderJob.objects.filter(pk=middle).update(status="succeeded")
    expect(page.locator("[data-results] figure")).to_have_count(3)
    numbers = page.locator("[data-results] figure").evaluate_all(
        "(cards) => cards.map((card) => card.dataset.number)"
    )
    assert numbers == ["1", "2", "3"]
    expect(player.locator("[data-player-position]")).to_have_text("Video 3 of 3")
    page.keyboard.press("ArrowLeft")
    expect_showing(player, outputs[1], TITLES[1], "Video 2 of 3")


def test_the_player_fits_a_phone_and_passes_axe(new_page, owner, batch):
    page = new_page(owner, viewport=PHONE, mobile=True)
    page.goto(f"/o/acme/batches/{batch.pk}/")
    page.locator("[data-play]").nth(1).click()
    player = page.get_by_role("dialog")
    expect(player.get_by_role("heading")).to_have_text(TITLES[1])
    page.wait_for_function(
        "() => document.querySelector('dialog[open] video').readyState >= 1", timeout=ACTION_MS
    )
    fits_on_screen(player, PHONE)
    for control in (
        player.locator("video"),
        player.get_by_role("heading"),
        player.get_by_role("button", name="Previous"),
        player.get_by_role("button", name="Next"),
        player.get_by_role("link", name="Download"),
        player.get_by_role("button", name="Close"),
    ):
        fits_on_screen(control, PHONE)
    assert overflow(page, PHONE["width"]) is None
    bad = blocking(axe_violations(page))
    assert not bad, describe(bad)
    screenshot(page, "phone-player-walk", full_page=False)


def test_results_by_tag_play_in_the_player(new_page, owner, batch):
    batch.tags.add(Tag.objects.create(organization=owner.organization, name="promo"))
    outputs = outputs_of(batch)
    page = new_page(owner)
    page.goto(f"/o/acme/projects/{batch.project_id}/?tag=promo")
    expect(page.get_by_role("heading", name=re.compile("Results tagged"))).to_be_visible()
    expect(page.locator(".results .play-sign")).to_have_count(3)
    page.get_by_role("button", name=f"Play {outputs[1].name}").click()
    player = page.get_by_role("dialog")
    expect_showing(player, outputs[1], TITLES[1], "Video 2 of 3")
    # It really plays.
    page.wait_for_function(
        """() => { const v = document.querySelector("[data-player] video");
                   return v.readyState >= 2 && v.duration > 0 && v.currentTime > 0; }""",
        timeout=ACTION_MS,
    )
    player.get_by_role("button", name="Next").click()
    expect_showing(player, outputs[2], TITLES[2], "Video 3 of 3")
    bad = blocking(axe_violations(page))
    assert not bad, describe(bad)
    player.get_by_role("button", name="Close").click()
    expect(player).to_be_hidden()
