"""A batch from the browser: upload one avatar and three audio tracks, watch a real render
cluster fill the progress bars, and play a result in the page's video player."""

import os
import re

import pytest
from playwright.sync_api import expect

from jobs import services
from jobs.models import Batch, RenderJob
from tests.browser.helpers import ACTION_MS, LIVENESS_MS, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.queue,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
]

# Every value each progress bar takes, in order, as the page's own script sets them.
RECORD_BARS = """
() => {
  window.barValues = {};
  const bars = document.querySelectorAll("[role=progressbar]");
  const note = (bar) => {
    const label = bar.getAttribute("aria-label");
    (window.barValues[label] ||= []).push(Number(bar.getAttribute("aria-valuenow")));
  };
  bars.forEach(note);
  const observer = new MutationObserver((changes) => changes.forEach((c) => note(c.target)));
  bars.forEach((bar) => observer.observe(bar, { attributeFilter: ["aria-valuenow"] }));
}
"""

PLAYER_STATE = """
() => {
  const v = document.querySelector("[data-player] video");
  return {
    readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
    width: v.videoWidth, height: v.videoHeight, error: v.error && v.error.code,
    paused: v.paused, src: v.getAttribute("src"),
  };
}
"""


def test_upload_watch_the_bars_fill_and_play_a_result(
    new_page, member, outsider, clusters, browser_media
):
    project = services.project_create(membership=member, name="Spring campaign")
    page = new_page(member)
    page.goto(f"/o/acme/projects/{project.pk}/")
    page.get_by_role("link", name="New batch").click()
    expect(page.get_by_role("heading", name="New batch")).to_be_visible()

    # Choose the files as a person does in the file dialogs; each is uploaded and checked.
    page.locator("#avatar_files").set_input_files(browser_media["avatar"])
    page.locator("#audio_files").set_input_files(browser_media["audios"])
    uploads = page.locator("[data-upload-list] li")
    expect(uploads).to_have_count(4)
    for i in range(4):
        expect(uploads.nth(i)).to_contain_text("accepted", timeout=LIVENESS_MS)
    page.get_by_label("Name", exact=True).fill("Spring promo")
    page.get_by_label("Tags").fill("promo, north")
    submit = page.get_by_role("button", name="Submit batch")
    expect(submit).to_be_enabled()
    screenshot(page, "new-batch")
    submit.click()

    # The batch page, before any worker runs: everything queued, empty bars.
    expect(page).to_have_url(re.compile(r"/o/acme/batches/\d+/$"))
    expect(page.get_by_role("status")).to_contain_text("Batch submitted: 3 videos are queued.")
    expect(page.get_by_role("heading", name=re.compile("Spring promo"))).to_be_visible()
    batch_bar = page.get_by_role("progressbar", name="Batch progress")
    expect(batch_bar).to_have_attribute("aria-valuenow", "0")
    rows = page.locator("[data-job]")
    expect(rows).to_have_count(3)
    for i in range(3):
        expect(rows.nth(i).locator("[data-status]")).to_have_text("queued")
    expect(page.get_by_text("Finished videos appear here as they are rendered.")).to_be_visible()

    # A real render cluster starts; the page follows it by itself (no reload).
    page.evaluate(RECORD_BARS)
    clusters.render()
    expect(page.locator("[data-batch-status]")).to_have_text("succeeded", timeout=LIVENESS_MS)
    expect(batch_bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("[data-batch-finished]")).to_have_text("3")
    for i in range(3):
        row = rows.nth(i)
        expect(row.locator("[data-status]")).to_have_text("succeeded")
        expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(row.locator("[data-frames]")).to_have_text(re.compile(r"^\d+ / \d+ frames$"))
        expect(row.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel batch")).to_have_count(0)

    bars = page.evaluate("() => window.barValues")
    assert set(bars) == {"Batch progress"} | {
        f"Job {j.number} progress" for j in RenderJob.objects.all()
    }
    for label, values in bars.items():
        assert values == sorted(values), f"{label} went backwards: {values}"
        assert values[-1] == 100, f"{label} did not fill: {values}"

    batch = Batch.objects.get()
    jobs = list(batch.jobs.select_related("output"))
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error for j in jobs]
    assert all(j.worker_pid and j.worker_pid != os.getpid() for j in jobs)  # the cluster did it
    names = sorted(j.output.name for j in jobs)
    assert names == [f"presenter__take{i}.mp4" for i in (1, 2, 3)]

    # The results arrived in the grid while we watched.
    results = page.locator("[data-results] figure")
    expect(results).to_have_count(3)
    expect(page.get_by_text("Finished videos appear here as they are rendered.")).to_be_hidden()
    for name in names:
        expect(page.locator("[data-results]")).to_contain_text(name)
    page.locator("[data-results]").scroll_into_view_if_needed()
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-results] img")]
                   .every((img) => img.complete && img.naturalWidth > 0)""",
        timeout=ACTION_MS,
    )
    screenshot(page, "batch")

    # Play one: the dialog opens and the video really plays.
    playable = page.evaluate(
        """() => document.createElement("video")
                   .canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"')"""
    )
    assert playable, "this Chromium cannot play H.264/AAC MP4 (a codec-less build?)"
    output = next(j.output for j in jobs if j.output.name == "presenter__take2.mp4")
    page.get_by_role("button", name="Play presenter__take2.mp4").click()
    player = page.locator("dialog[data-player]")
    expect(player).to_be_visible()
    page.wait_for_function(
        """() => { const v = document.querySelector("[data-player] video");
                   return v.readyState >= 2 && v.duration > 0 && v.currentTime > 0; }""",
        timeout=ACTION_MS,
    )
    state = page.evaluate(PLAYER_STATE)
    assert state["error"] is None, state
    assert state["src"].endswith(f"/o/acme/outputs/{output.pk}/play/")
    assert (state["width"], state["height"]) == (output.width, output.height)
    assert abs(state["duration"] - output.duration) < 0.2, (state, output.duration)

    player.get_by_role("button", name="Close").click()
    expect(player).to_be_hidden()
    # The dialog's "close" event (which stops and unloads the video) fires a moment after the
    # dialog is hidden: wait for it rather than race it.
    page.wait_for_function(
        """() => { const v = document.querySelector("[data-player] video");
                   return v.paused && v.getAttribute("src") === null; }""",
        timeout=ACTION_MS,
    )
    state = page.evaluate(PLAYER_STATE)
    assert state["paused"] and state["src"] is None


def test_files_chosen_before_the_uploader_script_loads_are_still_uploaded(
    new_page, member, browser_media
):
    """A slow connection: the page is on screen, the person picks files, and only then does
    the uploader script arrive. It takes what is already chosen instead of waiting for a
    second pick."""
    project = services.project_create(membership=member, name="Spring campaign")
    page = new_page(member)
    held = []
    page.route("**/js/uploader*.js", lambda route: held.append(route))
    page.goto(f"/o/acme/projects/{project.pk}/batches/new/", wait_until="commit")
    expect(page.get_by_role("heading", name="New batch")).to_be_visible()
    page.wait_for_function("() => document.readyState === 'interactive'")
    page.locator("#audio_files").set_input_files(browser_media["audios"])
    expect(page.locator("[data-upload-list] li")).to_have_count(0)  # nothing to run it yet
    assert len(held) == 1, "the uploader script was requested once and held"
    held[0].continue_()
    uploads = page.locator("[data-upload-list] li")
    expect(uploads).to_have_count(3)
    for i in range(3):
        expect(uploads.nth(i)).to_contain_text("accepted", timeout=LIVENESS_MS)
    expect(page.get_by_role("button", name="Submit batch")).to_be_enabled()
