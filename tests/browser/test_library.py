"""The library page in a real browser: reached from the navigation, files uploaded as they are
chosen (each with its verdict, the same content again said to be the entry already there) and
listed without a reload; searched by part of a Chinese name and filtered by kind; renamed (and
the audit log says so); previewed in the shared player; deleted (refused while a queued video
needs the file); on a phone; checked by axe-core in English and in Chinese."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from accounts.models import AuditEvent
from jobs import services
from jobs.models import Asset, RenderJob
from tests.browser.a11y import axe_violations, blocking, broken_references, describe, overflow
from tests.browser.helpers import ACTION_MS, LIVENESS_MS, screenshot
from tests.browser.test_chinese_journey import assert_chinese

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LIBRARY = "/o/acme/library/"

# Audio tracks of different lengths (so of different bytes), some with Chinese names.
AUDIOS = {
    "welcome.wav": 0.6,
    "offer.wav": 0.8,
    "广州旁白.wav": 1.0,
    "closing.wav": 1.2,
    "北京天气预报.wav": 1.4,
}
AVATAR = "北京主播.mp4"
FACELESS = "grey-wall.mp4"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """What a person picks in the file dialogs, under the names the browser sends."""
    from tests import media

    folder = tmp_path_factory.mktemp("library-media")
    made = {
        AVATAR: media.make_avatar(folder / AVATAR, seconds=1.0),
        FACELESS: media.make_faceless_video(folder / FACELESS),
    }
    for name, seconds in AUDIOS.items():
        made[name] = media.make_audio(folder / name, seconds=seconds)
    return made


def stored(membership, path, name: str | None = None) -> Asset:
    """A library entry made through the service, as an upload would (no browser)."""
    kind = Asset.Kind.AVATAR if path.suffix == ".mp4" else Asset.Kind.AUDIO
    return services.asset_create(
        membership=membership, kind=kind, upload=services.UploadedMedia(path, name or path.name)
    )


def rows(page):
    return page.locator("table.library tbody tr[data-asset]")


def row_of(page, name: str):
    return rows(page).filter(has=page.locator("td.name", has_text=name))


def names_listed(page) -> list[str]:
    """The names in the list, top to bottom (the preview buttons' titles)."""
    return (
        rows(page)
        .locator("[data-play]")
        .evaluate_all("(buttons) => buttons.map((b) => b.dataset.title)")
    )


def flash(page):
    return page.locator(".messages[role=status]")


def fits_on_screen(locator, size) -> None:
    box = locator.bounding_box()
    assert box is not None, locator
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"] + 0.5, box
    assert box["y"] + box["height"] <= size["height"] + 0.5, box


def expect_axe_clean(page) -> None:
    bad = blocking(axe_violations(page))
    assert not bad, describe(bad)
    assert broken_references(page) == []


# --- 1-3: upload, the same content again, search, kind, rename, audit -----------------------


def test_upload_dedupe_search_rename_and_audit(new_page, owner, outsider, files, tmp_path):
    # The rival organization already has one of these tracks: entries are one per content
    # *within* an organization, so ours is still new.
    stored(outsider, files["welcome.wav"], "rival-welcome.wav")

    page = new_page(owner)
    page.goto("/o/acme/")
    nav_link = page.locator("nav.orgnav").get_by_role("link", name="Library")
    nav_link.click()
    expect(page).to_have_url(re.compile(r"/o/acme/library/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Library")
    expect(page.locator("nav.orgnav").get_by_role("link", name="Library")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("[data-library-list]")).to_contain_text("The library is empty.")
    expect(rows(page)).to_have_count(0)
    # The form's own Upload button is for pages without the script: files go as chosen.
    expect(page.locator("[data-upload-submit]")).to_be_hidden()

    # Everything below happens in this one document: a reload would drop this mark.
    page.evaluate("() => { window.sameDocument = 'yes'; }")
    audio_zone = page.locator("[data-uploader=audio]")
    avatar_zone = page.locator("[data-uploader=avatar]")
    page.locator("#library_audios").set_input_files([files["welcome.wav"], files["offer.wav"]])
    page.locator("#library_avatars").set_input_files(files[AVATAR])

    audio_uploads = audio_zone.locator("[data-upload-list] li")
    avatar_uploads = avatar_zone.locator("[data-upload-list] li")
    expect(audio_uploads).to_have_count(2)
    expect(avatar_uploads).to_have_count(1)
    for item in (audio_uploads.nth(0), audio_uploads.nth(1), avatar_uploads.nth(0)):
        expect(item.locator(".verdict")).to_have_text("accepted", timeout=LIVENESS_MS)
        expect(item).to_have_class(re.compile(r"\bok\b"))
        expect(item.locator("progress")).to_have_attribute("value", "100")
    for i, name in enumerate(["welcome.wav", "offer.wav"]):
        expect(audio_uploads.nth(i).locator(".name")).to_contain_text(name)
    expect(avatar_uploads.nth(0).locator(".name")).to_contain_text(AVATAR)

    # The list was fetched again in place: the three files are there, no reload.
    expect(rows(page)).to_have_count(3, timeout=LIVENESS_MS)
    expect(page.locator("[data-library-list] .count")).to_have_text("3 files")
    assert sorted(names_listed(page)) == sorted(["welcome.wav", "offer.wav", AVATAR])
    assert page.evaluate("() => window.sameDocument") == "yes"
    ours = Asset.objects.filter(organization=owner.organization)
    assert ours.count() == 3
    assert set(ours.values_list("created_by", flat=True)) == {owner.user_id}
    avatar = ours.get(kind="avatar")
    assert avatar.original_name == AVATAR
    avatar_row = row_of(page, AVATAR)
    expect(avatar_row.locator("td").nth(2)).to_contain_text("Avatar video")
    expect(avatar_row.locator("td").nth(2)).to_contain_text(f"{avatar.width}×{avatar.height}")
    expect(avatar_row.get_by_role("button", name=f"Preview {AVATAR}")).to_have_text("Preview")
    welcome_row = row_of(page, "welcome.wav")
    expect(welcome_row.locator("td").nth(2)).to_have_text("Audio track")
    expect(welcome_row.locator("td").nth(3)).to_have_text("0.6 s")
    expect(welcome_row.locator("td").nth(6)).to_have_text("0 videos")
    expect(welcome_row.locator("td").nth(5)).to_contain_text(owner.user.email)
    expect(welcome_row.get_by_role("button", name="Listen to welcome.wav")).to_have_text("Listen")

    # The same bytes again under another name: the entry already there, nothing stored.
    again = tmp_path / "welcome-final-v2.wav"
    shutil.copy(files["welcome.wav"], again)
    with page.expect_response(
        lambda r: r.request.method == "GET" and r.url.endswith(LIBRARY), timeout=LIVENESS_MS
    ):
        page.locator("#library_audios").set_input_files(again)
        expect(audio_uploads).to_have_count(3)
        expect(audio_uploads.nth(2).locator(".verdict")).to_have_text(
            "already in your library as “welcome.wav”", timeout=LIVENESS_MS
        )
    expect(audio_uploads.nth(2)).to_have_class(re.compile(r"\bok\b"))
    expect(audio_uploads.nth(2).locator(".name")).to_contain_text("welcome-final-v2.wav")
    expect(rows(page)).to_have_count(3)
    expect(row_of(page, "welcome.wav")).to_have_count(1)
    expect(row_of(page, "welcome-final-v2")).to_have_count(0)
    assert ours.count() == 3
    assert ours.filter(kind="audio", original_name="welcome.wav").count() == 1
    assert page.evaluate("() => window.sameDocument") == "yes"

    # A video without a face is refused, with the reason; the list does not change.
    page.locator("#library_avatars").set_input_files(files[FACELESS])
    expect(avatar_uploads).to_have_count(2)
    expect(avatar_uploads.nth(1)).to_have_class(re.compile(r"\brefused\b"), timeout=LIVENESS_MS)
    expect(avatar_uploads.nth(1).locator(".verdict")).to_have_text(
        re.compile(
            rf"^No face was found in the first \d+ seconds? of “{re.escape(FACELESS)}”\. "
            r"Use a video where one face looks at the camera, well lit\.$"
        )
    )
    expect(avatar_uploads.nth(0).locator(".verdict")).to_have_text("accepted")
    expect(rows(page)).to_have_count(3)
    assert ours.count() == 3
    screenshot(page, "library-upload")

    # The rows fetched in place work like the others: one plays in the player.
    page.get_by_role("button", name="Listen to welcome.wav").click()
    player = page.get_by_role("dialog")
    expect(player.locator("[data-player-title]")).to_have_text("welcome.wav")
    expect(player.locator("[data-player-position]")).to_have_text(
        f"File {names_listed(page).index('welcome.wav') + 1} of 3"
    )
    player.get_by_role("button", name="Close").click()
    expect(player).to_be_hidden()
    assert page.evaluate("() => window.sameDocument") == "yes"

    # Search by part of the Chinese name.
    page.get_by_label("Name contains").fill("北京")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"[?&]q=%E5%8C%97%E4%BA%AC"))
    expect(rows(page)).to_have_count(1)
    assert names_listed(page) == [AVATAR]
    expect(page.get_by_label("Name contains")).to_have_value("北京")
    expect(page.locator("[data-library-list] .count")).to_have_text("1 file")

    # Filter by kind: the audio tracks only (and the search words kept, until cleared).
    page.get_by_label("Kind").select_option("audio")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("[data-library-list]")).to_contain_text(
        "No file matches. Try other words, or show everything."
    )
    expect(rows(page)).to_have_count(0)
    page.get_by_label("Name contains").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"[?&]kind=audio"))
    expect(rows(page)).to_have_count(2)
    assert sorted(names_listed(page)) == ["offer.wav", "welcome.wav"]
    expect(page.get_by_label("Kind")).to_have_value("audio")
    page.get_by_label("Kind").select_option("avatar")
    page.get_by_role("button", name="Search").click()
    expect(rows(page)).to_have_count(1)
    assert names_listed(page) == [AVATAR]
    page.get_by_role("link", name="Show everything").click()
    expect(page).to_have_url(re.compile(r"/o/acme/library/$"))
    expect(rows(page)).to_have_count(3)
    # The rival's entry never shows, whatever the search.
    page.get_by_label("Name contains").fill("rival")
    page.get_by_role("button", name="Search").click()
    expect(rows(page)).to_have_count(0)
    page.goto(LIBRARY)

    # Rename one to a Chinese name through its details form.
    offer = ours.get(original_name="offer.wav")
    row = page.locator(f"tr[data-asset='{offer.pk}']")
    expect(row.get_by_label("New name for offer.wav")).to_be_hidden()
    row.locator("details.rename summary").click()
    field = row.get_by_label("New name for offer.wav")
    expect(field).to_be_visible()
    expect(field).to_have_value("offer.wav")
    field.fill("上海优惠旁白.wav")
    row.get_by_role("button", name="Save name").click()
    expect(flash(page)).to_contain_text("“offer.wav” is now called “上海优惠旁白.wav”.")
    row = page.locator(f"tr[data-asset='{offer.pk}']")
    expect(row.locator("td.name")).to_contain_text("上海优惠旁白.wav")
    expect(row.get_by_role("button", name="Listen to 上海优惠旁白.wav")).to_have_attribute(
        "data-title", "上海优惠旁白.wav"
    )
    expect(row_of(page, "offer.wav")).to_have_count(0)
    offer.refresh_from_db()
    assert offer.original_name == "上海优惠旁白.wav"
    assert Asset.objects.filter(organization=owner.organization).count() == 3
    # Now found by a part of its new Chinese name.
    page.get_by_label("Name contains").fill("上海")
    page.get_by_role("button", name="Search").click()
    expect(rows(page)).to_have_count(1)
    assert names_listed(page) == ["上海优惠旁白.wav"]

    # The audit log says who renamed what.
    event = AuditEvent.objects.get(action="asset.renamed")
    assert event.detail["from"] == "offer.wav" and event.detail["to"] == "上海优惠旁白.wav"
    page.goto("/o/acme/audit/")
    renamed = page.locator("table.audit tbody tr").filter(
        has=page.locator("td[data-action='asset.renamed']")
    )
    expect(renamed).to_have_count(1)
    expect(renamed.locator("td[data-action]")).to_have_text("Asset renamed")
    expect(renamed).to_contain_text(owner.user.email)
    expect(renamed).to_contain_text("上海优惠旁白.wav")
    uploaded = page.locator("table.audit td[data-action='asset.uploaded']")
    expect(uploaded).to_have_count(3)  # the second welcome.wav stored nothing, so no event


# --- 4: preview in the shared player ----------------------------------------------------------


def test_listen_and_preview_walk_the_library_in_the_player(new_page, owner, outsider, files):
    for name in ["welcome.wav", "广州旁白.wav", AVATAR, "closing.wav"]:
        stored(owner, files[name])
    stored(outsider, files["offer.wav"])  # another organization's: not in our order
    page = new_page(owner)
    page.goto(LIBRARY)
    order = ["closing.wav", AVATAR, "广州旁白.wav", "welcome.wav"]  # newest first
    expect(rows(page)).to_have_count(4)
    assert names_listed(page) == order
    assets = {a.original_name: a for a in Asset.objects.filter(organization=owner.organization)}

    player = page.locator("dialog[data-player]")
    expect(player).to_be_hidden()
    row_of(page, "广州旁白.wav").get_by_role("button", name="Listen to 广州旁白.wav").click()
    expect(player).to_be_visible()
    title = player.locator("[data-player-title]")
    position = player.locator("[data-player-position]")
    download = player.locator("[data-player-download]")
    video = player.locator("video")

    def expect_showing(name: str, index: int) -> None:
        asset = assets[name]
        expect(title).to_have_text(name)
        expect(player).to_have_accessible_name(name)
        expect(position).to_have_text(f"File {index} of 4")
        expect(video).to_have_attribute("src", f"/o/acme/assets/{asset.pk}/media/")
        expect(download).to_have_attribute("href", f"/o/acme/assets/{asset.pk}/media/?download=1")

    expect_showing("广州旁白.wav", 3)
    # The track really loads: the element knows its length.
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-player] video');"
        " return v.readyState >= 1 && v.duration > 0; }",
        timeout=ACTION_MS,
    )
    duration = page.evaluate("() => document.querySelector('[data-player] video').duration")
    assert abs(duration - assets["广州旁白.wav"].duration) < 0.1, duration

    previous = player.locator("[data-player-step='-1']")
    following = player.locator("[data-player-step='1']")
    expect(previous).to_have_accessible_name("Previous")
    expect(following).to_have_accessible_name("Next")
    following.click()
    expect_showing("welcome.wav", 4)
    expect(following).to_be_disabled()
    previous.click()
    previous.click()
    expect_showing(AVATAR, 2)
    # The avatar video plays as a picture, at its own size.
    page.wait_for_function(
        "() => document.querySelector('[data-player] video').videoWidth > 0", timeout=ACTION_MS
    )
    assert page.evaluate("() => document.querySelector('[data-player] video').videoWidth") == (
        assets[AVATAR].width
    )

    # Download gives the file shown, under its library name.
    with page.expect_download() as download_info:
        download.click()
    assert download_info.value.suggested_filename == AVATAR
    assert download_info.value.path().read_bytes() == files[AVATAR].read_bytes()

    player.get_by_role("button", name="Close").click()
    expect(player).to_be_hidden()
    page.wait_for_function(
        "() => document.querySelector('[data-player] video').getAttribute('src') === null",
        timeout=ACTION_MS,
    )
    # The focus is back on the button of the file last shown.
    expect(page.get_by_role("button", name=f"Preview {AVATAR}")).to_be_focused()


# --- 5: delete, refused while a queued video needs the file ----------------------------------


def test_delete_is_refused_while_a_queued_video_needs_the_file(
    new_page, owner, outsider, files, clusters
):
    # ``clusters`` sends the tasks to a queue of this test's own that no worker serves (none
    # is started): the batch's video stays queued.
    avatar = stored(owner, files[AVATAR])
    busy = stored(owner, files["welcome.wav"])
    spare = stored(owner, files["closing.wav"])
    project = services.project_create(membership=owner, name="Spring campaign")
    batch = services.batch_submit(
        membership=owner, project=project, avatars=[avatar], audios=[busy], name="Spring promo"
    )
    job = RenderJob.objects.get(batch=batch)
    assert job.status == RenderJob.Status.QUEUED

    page = new_page(owner)
    confirms: list[str] = []
    answers = iter([False, True, True])  # the first confirm is dismissed

    def answer(dialog) -> None:
        confirms.append(dialog.message)
        if next(answers):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.goto(LIBRARY)
    expect(rows(page)).to_have_count(3)
    busy_row = page.locator(f"tr[data-asset='{busy.pk}']")
    expect(busy_row.locator("td").nth(6)).to_contain_text("1 video")
    expect(busy_row.locator(".busy")).to_have_text("1 queued or rendering")
    expect(page.locator(f"tr[data-asset='{avatar.pk}'] .busy")).to_have_text(
        "1 queued or rendering"
    )
    expect(page.locator(f"tr[data-asset='{spare.pk}'] td").nth(6)).to_have_text("0 videos")

    # Dismissed: nothing is sent, the row stays.
    page.evaluate("() => { window.sameDocument = 'yes'; }")
    busy_row.get_by_role("button", name="Delete welcome.wav").click()
    # confirm() blocks the page's script: once it answers again, the dialog was handled.
    assert page.evaluate("() => window.sameDocument") == "yes"
    assert len(confirms) == 1
    assert confirms[0] == (
        "Delete “welcome.wav” from the library? Videos already made with it keep working."
    )
    expect(busy_row).to_be_visible()

    # Accepted, but a queued video needs the file: refused, said on the page, the row stays.
    busy_row.get_by_role("button", name="Delete welcome.wav").click()
    expect(flash(page)).to_contain_text(
        "“welcome.wav” cannot be deleted: 1 video that uses it is still queued or rendering "
        "(“Spring promo”)."
    )
    expect(page.locator(".messages .msg.error")).to_have_count(1)
    assert len(confirms) == 2
    expect(rows(page)).to_have_count(3)
    expect(page.locator(f"tr[data-asset='{busy.pk}']")).to_be_visible()
    assert Asset.objects.in_library().filter(pk=busy.pk).exists()
    job.refresh_from_db()
    assert job.status == RenderJob.Status.QUEUED

    # A file nothing needs: deleted once the confirm is accepted; its row goes.
    page.locator(f"tr[data-asset='{spare.pk}']").get_by_role(
        "button", name="Delete closing.wav"
    ).click()
    expect(flash(page)).to_contain_text(
        "“closing.wav” was deleted from the library. Videos already made with it keep working."
    )
    assert confirms[2] == (
        "Delete “closing.wav” from the library? Videos already made with it keep working."
    )
    expect(page.locator(f"tr[data-asset='{spare.pk}']")).to_have_count(0)
    expect(rows(page)).to_have_count(2)
    assert sorted(names_listed(page)) == sorted([AVATAR, "welcome.wav"])
    assert not Asset.objects.filter(pk=spare.pk).exists()  # no job named it: the row is gone
    assert AuditEvent.objects.filter(action="asset.deleted").count() == 1


# --- roles: what a member and a viewer are offered ---------------------------------------------


def test_a_member_deletes_only_their_own_and_a_viewer_only_looks(
    new_page, owner, member, viewer, files
):
    theirs = stored(owner, files["welcome.wav"])
    mine = stored(member, files["广州旁白.wav"])

    page = new_page(member)
    page.goto(LIBRARY)
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#library_audios")).to_be_visible()
    own_row = page.locator(f"tr[data-asset='{mine.pk}']")
    expect(own_row.get_by_role("button", name="Delete 广州旁白.wav")).to_be_visible()
    expect(page.locator(f"tr[data-asset='{theirs.pk}'] button.danger")).to_have_count(0)
    expect(page.locator("details.rename")).to_have_count(2)  # members rename any entry

    page = new_page(viewer)
    page.goto(LIBRARY)
    expect(rows(page)).to_have_count(2)
    expect(page.locator("form[data-uploads]")).to_have_count(0)
    expect(page.locator("details.rename")).to_have_count(0)
    expect(page.locator("table.library button.danger")).to_have_count(0)
    # Looking and listening stay open to a viewer.
    page.get_by_role("button", name="Listen to welcome.wav").click()
    expect(page.locator("dialog[data-player] [data-player-title]")).to_have_text("welcome.wav")
    expect(page.locator("dialog[data-player] [data-player-position]")).to_have_text("File 2 of 2")


# --- 6: pictures, the phone ----------------------------------------------------------------------


@pytest.fixture
def filled_library(owner, outsider, files):
    """A handful of files, some with Chinese names (the last one stored is listed first)."""
    return {name: stored(owner, files[name]) for name in [AVATAR, *AUDIOS]}


def test_the_library_at_1280_and_on_a_phone(new_page, owner, filled_library):
    page = new_page(owner, viewport=DESKTOP)
    page.goto(LIBRARY)
    expect(rows(page)).to_have_count(6)
    assert overflow(page, DESKTOP["width"]) is None
    screenshot(page, "library")

    page = new_page(owner, viewport=PHONE, mobile=True)
    page.goto(LIBRARY)
    expect(page.get_by_role("heading", level=1)).to_have_text("Library")
    expect(rows(page)).to_have_count(6)
    sizes = page.evaluate(
        "() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })"
    )
    assert sizes["inner"] == PHONE["width"], sizes
    assert sizes["scroll"] <= sizes["inner"], overflow(page, PHONE["width"])
    # The search and upload controls are within reach, not cut off on the right.
    for control in (
        page.get_by_label("Name contains"),
        page.get_by_label("Kind"),
        page.get_by_role("button", name="Search"),
        page.locator("#library_avatars"),
        page.locator("#library_audios"),
    ):
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0, control
        assert box["x"] + box["width"] <= PHONE["width"] + 0.5, (control, box)
    screenshot(page, "phone-library")

    # The player opened on a phone fits its screen, every control of it too.
    page.get_by_role("button", name=f"Preview {AVATAR}").click()
    player = page.get_by_role("dialog")
    expect(player.locator("[data-player-title]")).to_have_text(AVATAR)
    page.wait_for_function(
        "() => document.querySelector('dialog[open] video').readyState >= 1", timeout=ACTION_MS
    )
    fits_on_screen(player, PHONE)
    for control in (
        player.locator("video"),
        player.locator("[data-player-title]"),
        player.locator("[data-player-position]"),
        player.locator("[data-player-step='-1']"),
        player.locator("[data-player-step='1']"),
        player.locator("[data-player-download]"),
        player.get_by_role("button", name="Close"),
    ):
        fits_on_screen(control, PHONE)
    assert overflow(page, PHONE["width"]) is None
    expect_axe_clean(page)


# --- 7: axe-core, in English and in Chinese ------------------------------------------------------


def test_axe_finds_nothing_serious_in_english_and_chinese(new_page, owner, filled_library):
    page = new_page(owner)
    page.goto(LIBRARY)
    expect(rows(page)).to_have_count(6)
    expect_axe_clean(page)
    # With a rename form open and the player open, too.
    rows(page).first.locator("details.rename summary").click()
    expect(rows(page).first.locator("input[name=name]")).to_be_visible()
    expect_axe_clean(page)
    page.get_by_role("button", name="Listen to welcome.wav").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect_axe_clean(page)

    page = new_page(owner, locale="zh-CN", timezone_id="Asia/Shanghai")
    page.goto(LIBRARY)
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    expect(page.get_by_role("heading", level=1)).to_have_text("素材库")
    expect(page.locator("nav.orgnav").get_by_role("link", name="素材库")).to_have_attribute(
        "aria-current", "page"
    )
    expect(rows(page)).to_have_count(6)
    assert_chinese(page, "library")  # no English message of ours left on it
    expect_axe_clean(page)
    # The player's words come from the Chinese catalogue as well.
    row_of(page, "北京天气预报.wav").locator("[data-play]").click()
    player = page.get_by_role("dialog")
    expect(player.locator("[data-player-title]")).to_have_text("北京天气预报.wav")
    expect(player.locator("[data-player-position]")).to_have_text("第 1 个文件，共 6 个")
    assert_chinese(page, "library with the player open")
    expect_axe_clean(page)
