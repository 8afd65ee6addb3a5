"""Results (issue 17): thumbnails from the middle of the video, the player's data on every page
that shows results, jobs numbered 1..N within their batch, and the command that remakes old
thumbnails. A second organization in each page test, to catch leaks."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from core.storage import media as storage
from inference.media import make_thumbnail
from jobs.models import Output, Project, RenderJob, Script
from tests.media import _ffmpeg

pytestmark = pytest.mark.django_db

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def striped_video(path: Path) -> Path:
    """3 s: red up to 1.2 s, green up to 1.8 s (the middle, 1.5 s), then blue. A thumbnail
    taken 1 s in, as before, would be red."""
    parts = [("red", 1.2), ("lime", 0.6), ("blue", 1.2)]
    inputs = []
    for colour, seconds in parts:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:size=64x48:rate=25:duration={seconds}"]
    _ffmpeg(
        *inputs, "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def colour_of(image_path: Path) -> tuple[int, int, int]:
    with Image.open(image_path) as img:
        return img.convert("RGB").getpixel((img.width // 2, img.height // 2))


def assert_close(colour, expected) -> None:
    assert all(abs(a - b) < 40 for a, b in zip(colour, expected, strict=True)), (colour, expected)


@pytest.fixture(scope="module")
def striped(tmp_path_factory) -> Path:
    return striped_video(tmp_path_factory.mktemp("striped") / "striped.mp4")


# --- thumbnails -------------------------------------------------------------------------------


def test_the_thumbnail_is_the_middle_frame(tmp_path, striped):
    out = make_thumbnail(striped, tmp_path / "thumb.jpg", 320)
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (320, 240)
    assert_close(colour_of(out), GREEN)


def test_a_thumbnail_at_a_chosen_time_and_the_first_frame_when_that_fails(tmp_path, striped):
    assert_close(colour_of(make_thumbnail(striped, tmp_path / "a.jpg", at=2.5)), BLUE)
    # Past the end nothing decodes: the first frame instead.
    assert_close(colour_of(make_thumbnail(striped, tmp_path / "b.jpg", at=60.0)), RED)


def stored_output(make_outputs, membership, video: Path, *, thumbnail: bytes | None = b"old"):
    """A finished output whose stored video is ``video`` (and whose thumbnail is ``thumbnail``,
    none when None)."""
    project, _ = Project.objects.get_or_create(organization=membership.organization, name="Thumbs")
    _, (output,) = make_outputs(membership, ["striped"], project=project)
    storage.save_file(video, output.file.name)
    if thumbnail is not None:
        name = output.file.name.replace(".mp4", ".jpg")
        storage.save_bytes(name, thumbnail)
        Output.objects.filter(pk=output.pk).update(thumbnail=name)
    output.refresh_from_db()
    return output


def test_the_thumbnails_command_remakes_them_from_the_middle(
    make_outputs, owner, outsider, striped, tmp_path
):
    mine = stored_output(make_outputs, owner, striped)
    no_thumbnail = stored_output(make_outputs, owner, striped, thumbnail=None)
    theirs = stored_output(make_outputs, outsider, striped)
    out = io.StringIO()
    call_command("thumbnails", "--org", "acme", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["1/2", "2/2"]
    assert lines[-1] == "2 thumbnails remade."

    for output in (mine, no_thumbnail):
        output.refresh_from_db()
        assert output.thumbnail.name == output.file.name.replace(".mp4", ".jpg")
        local = tmp_path / f"{output.pk}.jpg"
        local.write_bytes(storage.read_bytes(output.thumbnail.name))
        assert_close(colour_of(local), GREEN)
    # Another organization's were left alone.
    assert storage.read_bytes(theirs.thumbnail.name) == b"old"


def test_the_thumbnails_command_reports_a_broken_video_and_goes_on(
    make_outputs, owner, striped, tmp_path
):
    broken = stored_output(make_outputs, owner, striped)
    storage.save_bytes(broken.file.name, b"not a video")
    fine = stored_output(make_outputs, owner, striped)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 thumbnails could not be remade"):
        call_command("thumbnails", stdout=out, stderr=err)
    assert err.getvalue().startswith(f"1/2 output {broken.pk}: ")
    assert out.getvalue().startswith(f"2/2 output {fine.pk}: ")
    assert storage.read_bytes(broken.thumbnail.name) == b"old"
    local = tmp_path / "fine.jpg"
    local.write_bytes(storage.read_bytes(fine.thumbnail.name))
    assert_close(colour_of(local), GREEN)


def test_the_thumbnails_command_refuses_an_unknown_organization(db):
    with pytest.raises(CommandError, match="No organization has the slug 'nope'"):
        call_command("thumbnails", "--org", "nope", stdout=io.StringIO())


# --- the pages' data ----------------------------------------------------------------------------


def attributes(page: str, tag: str, marker: str) -> list[dict[str, str]]:
    """The attributes of each ``tag`` element that has ``marker``, in page order."""
    found = []
    for match in re.finditer(rf"<{tag}\b([^>]*\b{marker}\b[^>]*)>", page):
        pairs = re.findall(r'([\w-]+)(?:="([^"]*)")?', match.group(1))
        found.append({name: html.unescape(value) for name, value in pairs})
    return found


@pytest.fixture
def numbered(make_outputs, owner, outsider):
    """A batch of three finished videos whose job ids are not 1..3 (another organization's
    batch came first), plus a script job."""
    make_outputs(outsider, ["first", "second"], tags=["promo"])
    batch, outputs = make_outputs(owner, ["hello", "world", "again"], tags=["promo"])
    job = outputs[0].job
    script = Script.objects.create(
        organization=owner.organization, text="  Welcome to   our spring sale, everyone!  ",
        voice="espeak:en-us",
    )  # fmt: skip
    spoken = RenderJob.objects.create(
        batch=batch, avatar=job.avatar, script=script, engine="warp", status="succeeded"
    )
    Output.objects.create(
        job=spoken, file=f"outputs/{owner.organization_id}/s.mp4", name="scripted.mp4",
        bytes=1, sha256="0" * 64, crc32=0, duration=1.0, width=2, height=2,
    )  # fmt: skip
    return batch


def test_jobs_are_numbered_within_their_batch(login, owner, numbered):
    jobs = list(numbered.jobs.order_by("number"))
    assert [j.number for j in jobs] == [1, 2, 3, 4]
    assert jobs[0].pk != 1  # so a number on the page cannot be the id by chance
    page = login(owner).get(f"/o/acme/batches/{numbered.pk}/").content.decode()
    cells = re.findall(r'<tr data-job="(\d+)">\s*<td>(\d+)</td>', page)
    assert cells == [(str(j.pk), str(j.number)) for j in jobs]
    bars = re.findall(r'aria-label="(Job \d+ progress)"', page)
    assert bars == [f"Job {n} progress" for n in (1, 2, 3, 4)]
    cards = attributes(page, "figure", "data-number")
    assert [c["data-number"] for c in cards] == ["1", "2", "3", "4"]
    assert re.findall(r'<span class="job-number">#(\d+)</span>', page) == ["1", "2", "3", "4"]


def test_the_batch_page_cards_carry_what_the_player_needs(login, owner, numbered):
    page = login(owner).get(f"/o/acme/batches/{numbered.pk}/").content.decode()
    outputs = list(Output.objects.filter(job__batch=numbered).order_by("job__number"))
    buttons = attributes(page, "button", "data-play")
    assert [b["data-play"] for b in buttons] == [f"/o/acme/outputs/{o.pk}/play/" for o in outputs]
    assert [b["data-download"] for b in buttons] == [
        f"/o/acme/outputs/{o.pk}/download/" for o in outputs
    ]
    assert [b["data-title"] for b in buttons] == [
        "主播.mp4 · hello.wav", "主播.mp4 · world.wav", "主播.mp4 · again.wav",
        "主播.mp4 · Welcome to our spring sale, everyone!",
    ]  # fmt: skip
    assert "data-srt" not in page  # none of them has subtitles
    assert all(b["aria-label"].startswith("Play ") for b in buttons)
    assert page.count('<span class="play-sign" aria-hidden="true"></span>') == 4
    # The player: a titled dialog with Previous, Next, Download and Close, and its script.
    assert '<dialog class="player" data-player aria-labelledby="player-title">' in page
    for word in ("Previous", "Next", "Download", "Close"):
        assert re.search(rf"<(button|a)\b[^>]*>(<span[^>]*>.</span> )?{word}\b", page), word
    assert re.search(r'<script src="/static/js/player[.\w]*\.js" defer>', page)


def test_status_json_numbers_the_jobs_and_titles_the_results(login, owner, outsider, numbered):
    data = login(owner).get(f"/o/acme/batches/{numbered.pk}/status.json").json()
    jobs = list(numbered.jobs.order_by("number"))
    assert [j["id"] for j in data["jobs"]] == [j.pk for j in jobs]
    assert [j["number"] for j in data["jobs"]] == [1, 2, 3, 4]
    cards = [j["output"] for j in data["jobs"]]
    assert [c["number"] for c in cards] == [1, 2, 3, 4]
    assert [c["title"] for c in cards] == [
        "主播.mp4 · hello.wav", "主播.mp4 · world.wav", "主播.mp4 · again.wav",
        "主播.mp4 · Welcome to our spring sale, everyone!",
    ]  # fmt: skip
    assert cards[0]["download"] == f"/o/acme/outputs/{cards[0]['id']}/download/"
    assert cards[0]["srt"] is None
    other = login(outsider).get(f"/o/acme/batches/{numbered.pk}/status.json")
    assert other.status_code in (403, 404)


def test_results_by_tag_play_in_the_player(login, owner, outsider, numbered):
    project = numbered.project
    page = login(owner).get(f"/o/acme/projects/{project.pk}/?tag=promo").content.decode()
    outputs = list(Output.objects.filter(job__batch=numbered).order_by("job__number"))
    buttons = attributes(page, "button", "data-play")
    # Only this organization's, though the other one has a "promo" tag too.
    assert [b["data-play"] for b in buttons] == [f"/o/acme/outputs/{o.pk}/play/" for o in outputs]
    assert buttons[0]["data-title"] == "主播.mp4 · hello.wav"
    assert buttons[0]["data-download"] == f"/o/acme/outputs/{outputs[0].pk}/download/"
    assert buttons[0]["aria-label"] == "Play hello"
    assert "data-player" in page and re.search(r'<script src="/static/js/player[.\w]*\.js"', page)
    assert re.findall(r"· #(\d+) ·", page) == ["1", "2", "3", "4"]
    # Without a tag there are no results, so no player either.
    plain = login(owner).get(f"/o/acme/projects/{project.pk}/").content.decode()
    assert "data-player" not in plain and "js/player" not in plain
    assert login(outsider).get(f"/o/acme/projects/{project.pk}/?tag=promo").status_code in (
        403,
        404,
    )


def test_results_by_tag_offer_the_subtitles_of_a_video_that_has_them(login, owner, numbered):
    output = Output.objects.filter(job__batch=numbered).order_by("job__number").first()
    srt = b"1\n00:00:00,000 --> 00:00:00,500\nHello\n"
    name = f"outputs/{owner.organization_id}/t.srt"
    storage.save_bytes(name, srt)
    Output.objects.filter(pk=output.pk).update(subtitles=name, subtitles_bytes=len(srt))
    page = login(owner).get(f"/o/acme/projects/{numbered.project.pk}/?tag=promo").content.decode()
    first = attributes(page, "button", "data-play")[0]
    assert first["data-vtt"] == f"/o/acme/outputs/{output.pk}/subtitles.vtt"
    assert first["data-srt"] == f"/o/acme/outputs/{output.pk}/subtitles.srt"
    assert f'href="/o/acme/outputs/{output.pk}/subtitles.srt" download' in page
