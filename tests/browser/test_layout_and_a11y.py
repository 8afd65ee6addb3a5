"""Every page of the dashboard on a phone (390x844) and on a laptop (1280x800): nothing is wider
than the window, axe-core finds no serious or critical accessibility problem, and the ARIA
references of forms point at texts that exist.

The pages are not listed by hand: the URL resolver is walked (as tests/test_crawl.py does) and
every page pattern is filled with rows of a seeded organization, whose names are as long as
the fields allow and have no spaces, so nothing can hide behind short demo names. A pattern
whose values the walk cannot fill fails by name instead of going unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services as account_services
from accounts.audit import Target, record_event
from accounts.models import Membership, Notification, WebhookDelivery, WebhookEndpoint
from accounts.permissions import Role
from core.storage import media as storage
from exports.models import Export
from jobs.models import Asset, Batch, Output, RenderJob
from tests.browser.a11y import axe_violations, blocking, broken_references, describe, overflow
from tests.browser.helpers import log_in, screenshot
from tests.browser.seed import built_export, rendered_batch
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SCREENS = {"phone": PHONE, "desktop": DESKTOP}

# Names as long as their fields allow, without a single space to break a line at.
LONG_FILE = ("Fruehjahrskampagne_Haendlervideo_Peking_Nord_final_v12_" * 4)[:196] + ".mp4"
LONG_AUDIO = ("Sprecherin_Zhang_Wei_Take_07_ohne_Hall_normalisiert_" * 4)[:196] + ".wav"
LONG_PROJECT = ("Spring_campaign_dealer_videos_wave_two_" * 4)[:120]
LONG_BATCH = ("Northern_dealers_second_wave_all_presenters_" * 3)[:120]
LONG_TAG = ("northern_dealers_" * 3)[:40]
LONG_TOKEN = ("nightly_batch_script_on_the_render_box_" * 3)[:100]
LONG_EMAIL = "very.long.name.of.a.colleague.very.long.name@a-very-long-company-domain.example"
LONG_URL = "https://hooks.example.com/" + ("heygem/batch-completed/notify/" * 15)[:400]
LONG_ERROR = "ffmpeg:" + ("Invalid_data_found_when_processing_input_" * 6)
LONG_ORG = ("Shanghai_Digital_Human_Studio_Group_" * 3)[:100]


# --- the URL resolver, walked -----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    kwargs: tuple[str, ...]
    view_class: type | None

    def answers_get(self) -> bool:
        view = self.view_class
        return view is None or ("get" in view.http_method_names and hasattr(view, "get"))


def _walk(resolver: URLResolver, prefix: str = "", namespaces: tuple[str, ...] = ()):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry, route, inner)
        elif isinstance(entry, URLPattern):
            converters = getattr(entry.pattern, "converters", None) or {}
            kwargs = tuple(converters) or tuple(entry.pattern.regex.groupindex)
            name = ":".join((*namespaces, entry.name or f"<unnamed {route}>"))
            view_class = getattr(entry.callback, "view_class", None)
            yield Route(name, route, kwargs, view_class)


# Not the dashboard: the REST API (JSON, and its third-party Swagger/ReDoc pages) and Django's
# staff-only admin site.
NOT_DASHBOARD = ("api", "admin")


def dashboard_routes() -> list[Route]:
    """Every route of the dashboard that answers GET (POST-only actions have no page)."""
    return [
        r
        for r in _walk(get_resolver())
        if r.name.split(":")[0] not in NOT_DASHBOARD and r.answers_get()
    ]


# --- the organization every page is shown with ------------------------------------------------


@dataclass
class World:
    owner: Membership
    viewer: Membership
    project: object
    rendered: Batch  # real videos and thumbnails
    long_batch: Batch  # long names, a failed and a queued job
    failed_job: RenderJob
    output: Output
    asset: Asset
    export: Export
    token: object
    invitation: object
    invitation_raw: str
    webhook: WebhookEndpoint
    target: Membership  # a colleague with a long e-mail


def build_world(owner, viewer, make_outputs, browser_media) -> World:
    org = owner.organization
    # A second organization of the owner's, with a long name, for the switcher.
    MembershipFactory(
        user=owner.user, organization=OrganizationFactory(name=LONG_ORG), role=Role.OWNER
    )
    rendered = rendered_batch(owner, browser_media)
    project = rendered.project
    project.name = LONG_PROJECT
    project.description = "Briefing:" + ("dealer_" * 60)
    project.save()
    long_batch, outputs = make_outputs(
        owner, [LONG_FILE, "short.mp4"], project=project, batch_name=LONG_BATCH, tags=[LONG_TAG]
    )
    job = outputs[0].job
    Asset.objects.filter(pk=job.audio_id).update(original_name=LONG_AUDIO)
    Asset.objects.filter(pk=job.avatar_id).update(original_name=LONG_FILE)
    storage.save_bytes(job.avatar.file.name, b"the library's preview serves it")
    common = {"batch": long_batch, "avatar": job.avatar, "audio": job.audio, "engine": "warp"}
    failed = RenderJob.objects.create(status="failed", error=LONG_ERROR, **common)
    RenderJob.objects.create(status="queued", **common)
    export = built_export(owner, long_batch)

    target = MembershipFactory(
        organization=org, role=Role.MEMBER, user=UserFactory(email=LONG_EMAIL, full_name="")
    )
    invitation, raw = account_services.invitation_create(
        membership=owner, email="new." + LONG_EMAIL, role=Role.MEMBER
    )
    token, _ = account_services.api_token_create(
        membership=owner, name=LONG_TOKEN, expires_in_days=30
    )
    webhook = WebhookEndpoint.objects.create(
        organization=org, url=LONG_URL, events=["batch.completed", "export.ready"],
        secret="whsec_test", description="Dealer portal:" + "x" * 150, created_by=owner.user,
    )  # fmt: skip
    for status, code in (("delivered", 200), ("failed", 502), ("pending", None)):
        WebhookDelivery.objects.create(
            endpoint=webhook, organization=org, event="batch.completed", payload={"id": 1},
            status=status, attempts=3, last_status_code=code,
            last_error="" if code == 200 else "ConnectionError:" + "refused_" * 40,
            next_attempt_at=timezone.now() + timedelta(minutes=5),
        )  # fmt: skip
    account_services.notify(
        user=owner.user, organization=org, kind="export.ready", level="success",
        message=f"Your bundle “{LONG_BATCH}” is ready (2 videos).",
        link=reverse("exports:detail", args=[org.slug, export.pk]),
    )  # fmt: skip
    record_event(
        organization=org, action="asset.uploaded", actor=target.user,
        target=Target(type="asset", id=str(job.audio_id), label=LONG_AUDIO),
        file_count=1, total_bytes=123_456,
    )  # fmt: skip
    # The walked video has subtitles, so its SRT and WebVTT routes have something to show.
    output = Output.objects.filter(job__batch=rendered).first()
    srt = b"1\n00:00:00,000 --> 00:00:00,500\nHello\n"
    name = f"outputs/{org.pk}/walk-{output.pk}.srt"
    storage.save_bytes(name, srt)
    Output.objects.filter(pk=output.pk).update(subtitles=name, subtitles_bytes=len(srt))
    output.refresh_from_db()
    return World(
        owner=owner, viewer=viewer, project=project, rendered=rendered, long_batch=long_batch,
        failed_job=failed, output=output,
        asset=job.avatar, export=export, token=token, invitation=invitation,
        invitation_raw=raw, webhook=webhook, target=target,
    )  # fmt: skip


# Which row a ``pk`` means, by the path segment in front of it.
PK_BY_SEGMENT: dict[str, Callable[[World], object]] = {
    "members": lambda w: w.target,
    "invitations": lambda w: w.invitation,
    "tokens": lambda w: w.token,
    "webhooks": lambda w: w.webhook,
    "projects": lambda w: w.project,
    "batches": lambda w: w.long_batch,
    "jobs": lambda w: w.failed_job,
    "outputs": lambda w: w.output,
    "exports": lambda w: w.export,
    "assets": lambda w: w.asset,
}
KWARGS: dict[str, Callable[[Route, World], object]] = {
    "org_slug": lambda route, w: w.owner.organization.slug,
    "token": lambda route, w: w.invitation_raw,
    "language": lambda route, w: "en",
}
# Query strings a page needs to have something to show.
QUERY: dict[str, Callable[[World], str]] = {
    "exports:confirm": lambda w: f"?batch={w.long_batch.pk}",
}


def _pk(route: Route, world: World):
    parts = route.route.split("/")
    at = next(i for i, part in enumerate(parts) if part.endswith(":pk>"))
    segment = parts[at - 1] if at else ""
    if segment not in PK_BY_SEGMENT:
        raise LookupError(f"{route.name}: no row is known for a pk after {segment!r}")
    return PK_BY_SEGMENT[segment](world).pk


def url_of(route: Route, world: World) -> str:
    kwargs = {}
    for name in route.kwargs:
        if name == "pk":
            kwargs[name] = _pk(route, world)
        elif name in KWARGS:
            kwargs[name] = KWARGS[name](route, world)
        else:
            raise LookupError(f"{route.name}: no value for <{name}>: add it to KWARGS")
    return reverse(route.name, kwargs=kwargs) + QUERY.get(route.name, lambda w: "")(world)


def dashboard_pages(page, world: World) -> list[tuple[str, str]]:
    """(name, path) of every dashboard route that answers the owner's GET with an HTML page;
    the others must redirect or answer something that is not a page (JSON, a file)."""
    pages, problems = [], []
    for route in dashboard_routes():
        try:
            url = url_of(route, world)
        except LookupError as exc:
            problems.append(str(exc))
            continue
        response = page.request.get(url, max_redirects=0)
        kind = response.headers.get("content-type", "")
        html = kind.startswith("text/html")
        if response.status == 200 and html:
            pages.append((route.name, url))
        elif response.status in (200, 206) and not html:
            continue  # JSON, a video, a ZIP, a CSV, the scripts' catalogue
        elif response.status not in (302, 405):  # a form's address, or an action
            problems.append(f"{route.name} {url}: {response.status} {kind}")
    assert not problems, "routes the walk cannot show:\n" + "\n".join(problems)
    return pages


def extra_pages(world: World) -> list[tuple[str, str]]:
    """Pages the resolver walk cannot reach by itself: other states of the same routes."""
    slug = world.owner.organization.slug
    project = reverse("jobs:project", args=[slug, world.project.pk])
    return [
        ("batch with real results", reverse("jobs:batch", args=[slug, world.rendered.pk])),
        ("results by tag", f"{project}?tag={LONG_TAG}"),
        ("library searched", reverse("jobs:library", args=[slug]) + "?kind=audio&q=dealer"),
        ("404", f"/o/{slug}/projects/987654321/"),
    ]


def check(page, name: str, width: int) -> list[str]:
    """Everything wrong with the page as it is shown now, as readable lines."""
    page.evaluate("() => document.fonts.ready")
    problems = []
    if (wide := overflow(page, width)) is not None:
        problems.append(f"{name} ({page.url}) at {width} px: {wide}")
    if bad := blocking(axe_violations(page)):
        problems.append(f"{name} ({page.url}) at {width} px, axe:\n{describe(bad)}")
    if refs := broken_references(page):
        problems.append(f"{name} ({page.url}) at {width} px: " + "; ".join(refs))
    return problems


def visit(page, name: str, path: str, width: int) -> list[str]:
    response = page.goto(path)
    assert response is not None
    page.wait_for_load_state("load")
    return check(page, name, width)


# --- the tests --------------------------------------------------------------------------------

EXPECTED_PAGES = (
    "accounts:org_home", "accounts:org_settings", "accounts:org_create", "accounts:profile",
    "accounts:members", "accounts:tokens", "accounts:audit", "accounts:notifications",
    "accounts:webhooks", "accounts:webhook", "accounts:invitation",
    "jobs:projects", "jobs:project", "jobs:batch_create", "jobs:batch",
    "exports:list", "exports:detail", "exports:confirm",
)  # fmt: skip


@pytest.fixture
def world(owner, viewer, outsider, make_outputs, browser_media) -> World:
    return build_world(owner, viewer, make_outputs, browser_media)


@pytest.mark.parametrize("screen", SCREENS, ids=list(SCREENS))
def test_every_page_fits_and_passes_axe(new_page, world, screen, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the webhook form below posts to a loopback address
    size = SCREENS[screen]
    mobile = screen == "phone"
    page = new_page(world.owner, viewport=size, mobile=mobile)
    pages = dashboard_pages(page, world)
    # The walk found the pages a person uses (fewer means the walk went wrong).
    missing = set(EXPECTED_PAGES) - {name for name, _ in pages}
    assert not missing, f"the walk did not find {sorted(missing)}"

    problems: list[str] = []
    seen: list[str] = []

    def shown(on, name: str, path: str | None = None) -> None:
        """Check the page ``on`` shows now (after going to ``path``, if given)."""
        seen.append(name)
        if path is None:
            problems.extend(check(on, name, size["width"]))
        else:
            problems.extend(visit(on, name, path, size["width"]))

    for name, path in [*pages, *extra_pages(world)]:
        shown(page, name, path)

    # A message after a redirect (the live region around the list of messages).
    slug = world.owner.organization.slug
    page.goto(f"/o/{slug}/projects/")
    page.get_by_label("Name").fill("Autumn")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_contain_text("Autumn")
    shown(page, "project created (a message)")

    # Forms sent with mistakes: the errors are shown next to the fields they belong to.
    page.goto(f"/o/{slug}/projects/")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator(".field.invalid").first).to_be_visible()
    shown(page, "projects, form with errors")
    page.goto(f"/o/{slug}/tokens/")
    page.get_by_label("Expires after (days)").fill("100000")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".field.invalid").first).to_be_visible()
    shown(page, "tokens, form with errors")

    # The pages a form answers with: the one-time secrets.
    page.goto(f"/o/{slug}/tokens/")
    page.get_by_label("Name").fill("deploy")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-value")).to_be_visible()
    shown(page, "token created")
    page.goto(f"/o/{slug}/members/")
    page.get_by_label("E-mail").fill("someone.new@example.com")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invite-link")).to_be_visible()
    shown(page, "invitation created")
    page.goto(f"/o/{slug}/webhooks/")
    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/" + "hook/" * 30)
    page.get_by_role("checkbox").first.check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#secret-value")).to_be_visible()
    shown(page, "webhook secret")

    # A viewer's refusal, and the pages of someone signed out.
    as_viewer = new_page(world.viewer, viewport=size, mobile=mobile)
    refused = f"/o/{slug}/projects/{world.project.pk}/batches/new/"
    shown(as_viewer, "403", refused)
    signed_out = new_page(viewport=size, mobile=mobile)
    shown(signed_out, "login", "/login/")
    signed_out.get_by_role("button", name="Log in").click()
    expect(signed_out.locator(".field.invalid").first).to_be_visible()
    shown(signed_out, "login with errors")
    invitation = reverse("accounts:invitation", args=[world.invitation_raw])
    shown(signed_out, "invitation", invitation)

    print(f"checked {len(seen)} pages at {size['width']} px: {', '.join(seen)}")
    assert not problems, f"{len(problems)} problems:\n" + "\n\n".join(problems)


# Pages where Chinese text, which breaks anywhere, meets the long Latin names.
CHINESE_PAGES = ("jobs:projects", "jobs:project", "jobs:batch", "exports:confirm",
                 "accounts:audit", "accounts:members", "accounts:webhooks")  # fmt: skip


@pytest.mark.parametrize("screen", SCREENS, ids=list(SCREENS))
def test_chinese_pages_fit_and_pass_axe(new_page, world, screen):
    size = SCREENS[screen]
    page = new_page(world.owner, locale="zh-CN", viewport=size, mobile=screen == "phone")
    routes = {r.name: r for r in dashboard_routes()}
    problems = []
    for name in CHINESE_PAGES:
        problems += visit(page, name, url_of(routes[name], world), size["width"])
        assert page.locator("html").get_attribute("lang") == "zh-hans", name
    assert not problems, f"{len(problems)} problems:\n" + "\n\n".join(problems)


# --- a phone in the hand ----------------------------------------------------------------------


def menu_state(page) -> bool | None:
    """What assistive technology is told about the menu button: expanded or not (None when it
    is not shown at all)."""
    session = page.context.new_cdp_session(page)
    try:
        for node in session.send("Accessibility.getFullAXTree")["nodes"]:
            name = node.get("name", {}).get("value", "")
            if node.get("ignored") or not name.startswith("Menu"):
                continue
            for prop in node.get("properties", []):
                if prop["name"] == "expanded":
                    return prop["value"]["value"]
        return None
    finally:
        session.detach()


def fits_on_screen(locator, size) -> None:
    box = locator.bounding_box()
    assert box is not None, locator
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"], box
    assert box["y"] + box["height"] <= size["height"], box


def phone_check(page, name: str) -> None:
    problems = check(page, name, PHONE["width"])
    assert not problems, "\n\n".join(problems)


def test_a_phone_user_finds_the_way_plays_a_video_and_reads_the_log(
    new_page, owner, member, viewer, outsider, browser_media
):
    """The header is one short line with a menu button that opens the navigation (by touch or
    keyboard, and says whether it is open); every page fits; the player fits with its Close
    button on the screen. The pictures of docs/screenshots/phone-* are taken on the way."""
    batch = rendered_batch(owner, browser_media)
    export = built_export(owner, batch)
    page = new_page(owner, viewport=PHONE, mobile=True)
    page.goto("/o/acme/projects/")

    header = page.get_by_role("banner")
    assert header.bounding_box()["height"] <= 64  # one line (294 px before the menu)
    nav = page.get_by_role("navigation", name="Organization")
    expect(nav).to_be_hidden()
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    assert menu_state(page) is False
    # The bell is in the closed menu: its button repeats the number of unread notifications.
    unread = Notification.objects.filter(user=owner.user, read_at=None).count()
    assert unread
    expect(page.locator("details.menu > summary")).to_have_text(f"Menu {unread} unread")
    phone_check(page, "projects")
    screenshot(page, "phone-projects")

    # The keyboard opens it, Tab walks into it, Escape closes it and comes back to the button.
    menu = page.locator("details.menu > summary")
    menu.focus()
    page.keyboard.press("Enter")
    expect(nav).to_be_visible()
    assert menu_state(page) is True
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Overview")).to_be_focused()
    for link in ("Overview", "Projects", "Bundles", "Members", "Audit log", "Settings"):
        fits_on_screen(nav.get_by_role("link", name=link, exact=True), PHONE)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(menu).to_be_focused()
    assert menu_state(page) is False

    # A tap opens it too; the next page starts with it closed again.
    menu.click()
    expect(nav).to_be_visible()
    phone_check(page, "projects, menu open")
    screenshot(page, "phone-nav-open")
    nav.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Spring campaign").click()
    expect(page.get_by_role("heading", name="Spring campaign")).to_be_visible()
    expect(nav).to_be_hidden()
    phone_check(page, "project")
    screenshot(page, "phone-project")

    page.get_by_role("link", name="Spring promo").click()
    expect(page.locator("[data-results] figure")).to_have_count(3)
    phone_check(page, "batch")
    screenshot(page, "phone-batch")

    # The player: the video and its Close button both on the screen.
    page.locator("[data-play]").first.click()
    player = page.locator("dialog[open]")
    expect(player).to_be_visible()
    page.wait_for_function("() => document.querySelector('dialog[open] video').readyState >= 1")
    close = player.get_by_role("button", name="Close")
    fits_on_screen(player, PHONE)
    fits_on_screen(player.locator("video"), PHONE)
    fits_on_screen(close, PHONE)
    phone_check(page, "batch, playing")
    screenshot(page, "phone-player", full_page=False)
    close.click()
    expect(player).to_be_hidden()

    page.goto(f"/o/acme/exports/{export.pk}/")
    expect(page.locator("[data-download]")).to_be_visible()
    phone_check(page, "bundle")
    screenshot(page, "phone-bundle")

    menu.click()
    nav.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    phone_check(page, "audit log")
    screenshot(page, "phone-audit-log")

    menu.click()
    nav.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members of Acme Media")).to_be_visible()
    phone_check(page, "members")
    screenshot(page, "phone-members")

    # A wide screen shows the navigation itself, without the button.
    wide = new_page(owner)
    wide.goto("/o/acme/projects/")
    expect(wide.get_by_role("navigation", name="Organization")).to_be_visible()
    expect(wide.locator("details.menu > summary")).to_be_hidden()


def test_the_menu_works_without_javascript(browser, live_server, owner):
    """Progressive enhancement: the menu is a <details>, so it opens without any script, and a
    wide screen shows the navigation without it."""
    for size, opens in ((PHONE, True), (DESKTOP, False)):
        context = browser.new_context(
            base_url=live_server.url, viewport=size, java_script_enabled=False
        )
        try:
            log_in(context, live_server.url, owner.user)
            page = context.new_page()
            page.goto("/o/acme/")
            nav = page.get_by_role("navigation", name="Organization")
            if opens:
                expect(nav).to_be_hidden()
                page.locator("details.menu > summary").click()
            else:
                expect(page.locator("details.menu > summary")).to_be_hidden()
            expect(nav.get_by_role("link", name="Projects")).to_be_visible()
            nav.get_by_role("link", name="Projects").click()
            expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
        finally:
            context.close()


# --- progress, told to screen readers ---------------------------------------------------------

RECORD_LIVE = """(selector) => {
  window.liveSaid = [];
  const region = document.querySelector(selector);
  new MutationObserver(() => window.liveSaid.push(region.textContent))
    .observe(region, { childList: true, characterData: true, subtree: true });
}"""


class FakeStatus:
    """Answers a page's status.json polls with whatever the test sets, counting the answers."""

    def __init__(self, page, pattern: str, payload: dict):
        self.payload, self.served = payload, 0
        page.route(pattern, self.answer)

    def answer(self, route):
        self.served += 1
        route.fulfill(json=self.payload)


def test_batch_progress_is_announced_by_the_quarter(new_page, owner, make_outputs):
    batch, outputs = make_outputs(owner, ["take1.mp4"], batch_name="Spring promo")
    job = outputs[0].job
    for _ in range(7):
        RenderJob.objects.create(
            batch=batch, avatar=job.avatar, audio=job.audio, engine="warp", status="queued"
        )
    RenderJob.objects.filter(pk=job.pk).update(status="queued")
    page = new_page(owner)

    def state(finished: int) -> dict:
        status = "succeeded" if finished == 8 else "running"
        return {
            "status": status, "status_label": status, "percent": finished * 100 // 8,
            "finished": finished, "total": 8, "jobs": [],
            "counts": {"succeeded": finished, "failed": 0, "canceled": 0},
        }  # fmt: skip

    fake = FakeStatus(page, "**/status.json*", state(0))
    page.goto(f"/o/acme/batches/{batch.pk}/")
    live = page.locator("[data-batch-live]")
    expect(live).to_have_attribute("aria-live", "polite")
    page.evaluate(RECORD_LIVE, "[data-batch-live]")
    for finished in range(1, 9):
        fake.payload = state(finished)
        expect(page.locator("[data-batch-finished]")).to_have_text(str(finished))
    expect(live).to_have_text("The batch is finished: all 8 videos are ready.")
    # Every quarter once, not every tick (1, 3, 5 and 7 finished were not said).
    assert page.evaluate("() => window.liveSaid") == [
        "2 of 8 videos finished.",
        "4 of 8 videos finished.",
        "6 of 8 videos finished.",
        "The batch is finished: all 8 videos are ready.",
    ]
    assert fake.served >= 8


def test_bundle_progress_is_announced_and_said_again_after_the_reload(
    new_page, owner, make_outputs
):
    batch, _ = make_outputs(owner, ["take1.mp4"], batch_name="Spring promo")
    export = built_export(owner, batch)
    Export.objects.filter(pk=export.pk).update(status="queued")
    page = new_page(owner)

    def state(status: str) -> dict:
        return {
            "id": export.pk, "status": status, "status_label": status, "slow": False,
            "error": "", "label": export.label,
        }  # fmt: skip

    fake = FakeStatus(page, "**/status.json", state("queued"))
    page.goto(f"/o/acme/exports/{export.pk}/")
    live = page.locator("[data-export-live]")
    expect(live).to_have_attribute("aria-live", "polite")
    fake.payload = state("building")
    expect(live).to_have_text("Packing the bundle.")
    Export.objects.filter(pk=export.pk).update(status="ready")  # the page reloads to show it
    fake.payload = state("ready")
    expect(page.locator("[data-download]")).to_be_visible()
    expect(live).to_have_text("The bundle is ready to download.")
    assert fake.served >= 2
