"""The tenancy crawl: an owner of organization A asks for every organization URL with
organization B's slug and ids, and every answer is 404.

The URLs are not listed by hand: the whole URL resolver is walked, and every pattern is either
crawled or named in ``NOT_ORG_SCOPED`` with the reason. A crawled pattern must take the
organization slug and only kwargs this module knows how to fill (``KWARG_PROVIDERS``), so a new
route whose kwargs cannot be filled fails here, by name, instead of going uncrawled.

For each crawled pattern the kwargs are filled two ways:

1. B's slug with B's ids — A's owner is no member of B, so the organization itself is hidden;
2. A's slug with B's ids (patterns that take an object id) — the object must be looked up in
   A only, so B's rows are answered like missing ones.

Each is sent as GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS; pages with A's session, API
routes with A's session and with a Bearer token of A. The crawling user is an *owner* of A, so
no 404 can be explained by a missing permission. Afterwards B's rows are compared with a
snapshot taken before the crawl, and B's audit log must not mention A's user.

A control crawl fills the same patterns with A's slug and A's own ids: every GET must then
succeed (so the kwargs are known to be filled correctly and the 404s above mean something).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.db.models import Model, Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.audit import record_event
from accounts.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organization,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from accounts.permissions import Role
from core.storage import media as storage
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob, Script, Tag
from tests.api.helpers import World, build_world

# --- the URL resolver, walked -----------------------------------------------------------------

# Patterns that are deliberately not crawled, by full name, with the reason. Everything else
# the resolver knows is crawled (and must then take the organization slug).
NOT_ORG_SCOPED: dict[str, str] = {
    "api:schema": "the OpenAPI document: the same for everyone, holds no organization's data",
    "api:docs": "Swagger UI over the schema: static, no organization's data",
    "api:redoc": "ReDoc over the schema: static, no organization's data",
    "api:not-found": "the catch-all under /api/: answers 404 to everything already",
    "accounts:home": "redirects to the user's own first organization; takes no slug",
    "accounts:login": "the login form",
    "accounts:logout": "ends the user's own session",
    "accounts:invitation": "reached with an invitation's secret token, by design without a "
    "membership (the token is the credential; tests/test_pages.py covers it)",
    "accounts:org_create": "creates a new organization of the user's own; takes no slug",
    "accounts:profile": "the user's own language and time zone; takes no slug",
    "accounts:set_language": "the language switch: the user's own choice and a cookie",
    "js_catalog": "the pages' translated JavaScript strings: the same for everyone",
}
# Django's admin site: staff only (is_staff), not per organization; the crawling owner is not
# staff, and test_admin_is_not_open_to_an_owner checks that it answers them with its login.
EXCLUDED_NAMESPACES = ("admin",)

ORG_SLUG_KWARG = "org_slug"
# The crawl covered this many organization patterns when it was written: 26 API routes and
# 37 pages (63), of which 36 take an object id. Fewer means patterns went missing from the walk.
MIN_CRAWLED = 63
MIN_CRAWLED_WITH_IDS = 36

CRAWL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MISSING_PK = 987_654_321  # an id no table of the test database reaches


@dataclass(frozen=True)
class Pattern:
    name: str  # with its namespaces, e.g. "api:project-detail"
    route: str  # the full route, e.g. "api/v1/orgs/<slug:org_slug>/projects/<int:pk>/"
    kwargs: tuple[str, ...]
    callback: Callable
    namespaces: tuple[str, ...]

    @property
    def view_class(self) -> type | None:
        return getattr(self.callback, "view_class", None)

    @property
    def is_api(self) -> bool:
        return self.namespaces[:1] == ("api",)

    @property
    def takes_ids(self) -> bool:
        return any(k != ORG_SLUG_KWARG for k in self.kwargs)

    def implements(self, method: str) -> bool:
        """Does the view have a handler of its own for ``method``? (A function view is taken
        to handle every method: nothing can be read off it.)"""
        view = self.view_class
        if view is None:
            return True
        name = method.lower()
        if name == "head":  # Django's View answers HEAD with get() when there is no head()
            allowed = name in view.http_method_names
            return allowed and (hasattr(view, "get") or hasattr(view, "head"))
        return name in view.http_method_names and hasattr(view, name)

    def __str__(self) -> str:
        return f"{self.name} ({self.route})"


def _kwarg_names(pattern) -> tuple[str, ...]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters is not None and getattr(pattern.pattern, "_route", None) is not None:
        return tuple(converters)
    return tuple(pattern.pattern.regex.groupindex)


def _walk(resolver: URLResolver, prefix: str = "", namespaces: tuple[str, ...] = ()):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry, route, inner)
        elif isinstance(entry, URLPattern):
            name = ":".join((*namespaces, entry.name or f"<unnamed {route}>"))
            yield Pattern(name, route, _kwarg_names(entry), entry.callback, namespaces)


ALL_PATTERNS: list[Pattern] = list(_walk(get_resolver()))
CRAWLED: list[Pattern] = [
    p
    for p in ALL_PATTERNS
    if p.name not in NOT_ORG_SCOPED and p.namespaces[:1] not in {(n,) for n in EXCLUDED_NAMESPACES}
]


# --- the worlds -------------------------------------------------------------------------------


@dataclass
class Side:
    """One organization's world: tests/api/helpers.build_world (members, tokens, jobs rows,
    webhook and delivery) plus what it lacks: an invitation, a tag, a thumbnail, a
    notification and an audit event."""

    owner: Membership
    world: World
    invitation: Invitation
    tag: Tag
    notification: Notification

    def __getattr__(self, name):
        if name == "world":
            raise AttributeError(name)
        return getattr(self.world, name)


def _side(owner: Membership) -> Side:
    org = owner.organization
    world = build_world(org, owner)
    tag = Tag.objects.create(organization=org, name=f"{org.slug}-tag")
    world.batch.tags.add(tag)
    invitation = Invitation.objects.create(
        organization=org,
        email=f"guest-{org.slug}@example.com",
        role=Role.VIEWER,
        token_hash=f"crawl-{org.slug}".ljust(64, "0"),
        invited_by=owner.user,
        expires_at=timezone.now() + timedelta(days=1),
    )
    # A real thumbnail, so a leaking thumbnail view would answer 200, not "missing file".
    thumbnail = f"outputs/{org.pk}/o.jpg"
    storage.save_bytes(thumbnail, b"\xff\xd8\xff\xe0 not really a jpeg")
    Output.objects.filter(pk=world.output.pk).update(thumbnail=thumbnail)
    world.output.refresh_from_db()
    Project.objects.filter(pk=world.project.pk).update(description=f"{org.name} secret plans")
    notification = Notification.objects.create(
        user=owner.user, organization=org, kind="export.ready", message=f"{org.name}: ready"
    )
    record_event(organization=org, action="crawl.world_built", actor=owner.user)
    return Side(owner, world, invitation, tag, notification)


# Which of a side's rows a ``pk`` means, by the collection segment in front of it in the route.
PK_BY_SEGMENT: dict[str, str] = {
    "members": "target",
    "invitations": "invitation",
    "tokens": "other_token",
    "webhooks": "webhook",
    "projects": "project",
    "assets": "audio",
    "batches": "batch",
    "jobs": "queued_job",
    "outputs": "output",
    "exports": "export",
}
# Where one row fits an action better than the segment's default.
PK_BY_NAME: dict[str, str] = {"jobs:job_retry": "failed_job", "api:job-retry": "failed_job"}


def _pk_attr(pattern: Pattern) -> str:
    if pattern.name in PK_BY_NAME:
        return PK_BY_NAME[pattern.name]
    parts = pattern.route.split("/")
    at = next(i for i, part in enumerate(parts) if part.endswith(":pk>"))
    segment = parts[at - 1] if at else ""
    if segment not in PK_BY_SEGMENT:
        raise LookupError(
            f"{pattern}: no row is known for a pk after {segment!r}: add it to PK_BY_SEGMENT "
            "(and the row to _side())"
        )
    return PK_BY_SEGMENT[segment]


# kwarg name -> value provider(pattern, side whose slug is used, side whose ids are used)
KWARG_PROVIDERS: dict[str, Callable[[Pattern, Side, Side], object]] = {
    ORG_SLUG_KWARG: lambda pattern, slug_side, id_side: slug_side.org.slug,
    "pk": lambda pattern, slug_side, id_side: getattr(id_side, _pk_attr(pattern)).pk,
}


def _fill_problems(pattern: Pattern) -> list[str]:
    """Why the crawl cannot fill ``pattern`` (empty: it can)."""
    problems = []
    if "<unnamed" in pattern.name:
        problems.append("it has no name, so the crawl cannot reverse it")
    if ORG_SLUG_KWARG not in pattern.kwargs:
        problems.append(
            f"it does not take the organization slug ({ORG_SLUG_KWARG}): put it under an "
            "organization, or list it in NOT_ORG_SCOPED with the reason it holds no "
            "organization's data"
        )
    unknown = [k for k in pattern.kwargs if k not in KWARG_PROVIDERS]
    if unknown:
        problems.append(f"no value provider for kwargs {unknown}: add them to KWARG_PROVIDERS")
    if "pk" in pattern.kwargs:
        try:
            _pk_attr(pattern)
        except (LookupError, StopIteration) as exc:
            problems.append(str(exc) or "the pk is not a path segment of its own")
    return problems


def _url(pattern: Pattern, slug_side: Side, id_side: Side, **override) -> str:
    kwargs = {k: KWARG_PROVIDERS[k](pattern, slug_side, id_side) for k in pattern.kwargs}
    kwargs.update(override)
    url = reverse(pattern.name, kwargs=kwargs)
    match = resolve(url)
    assert match.view_name == pattern.name and match.route == pattern.route, (
        f"{pattern}: {url} resolves to {match.view_name} ({match.route}): two patterns share "
        "a name or overlap"
    )
    return url


# --- requests ---------------------------------------------------------------------------------


def _body(ids: Side) -> dict:
    """Something plausible for every form and serializer, naming B's rows where ids go: if a
    check were missing, the write would really happen (and the snapshot would show it)."""
    return {
        "name": "crawl",
        "description": "crawl",
        "role": Role.OWNER,
        "email": "crawl@acme.test",
        "url": "https://93.184.216.34/crawl",
        "events": ["batch.completed"],
        "is_active": False,
        "kind": "audio",
        "engine": "warp",
        "tags": ["crawl"],
        "expires_in_days": 1,
        "project": ids.project.pk,
        "batch": ids.batch.pk,
        "avatars": [ids.avatar.pk],
        "audios": [ids.audio.pk],
        "outputs": [ids.output.pk],
        "output": [ids.output.pk],
    }


def _send(client: Client, method: str, url: str, pattern: Pattern, body: dict, headers: dict):
    send = getattr(client, method.lower())
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return send(url, headers=headers)
    if pattern.is_api:
        return send(url, json.dumps(body), content_type="application/json", headers=headers)
    if method == "POST":
        return send(url, body, headers=headers)  # a form, as the pages send it
    return send(url, json.dumps(body), content_type="application/json", headers=headers)


@dataclass
class Crawl:
    a: Side
    b: Side
    session: Client  # logged in as A's owner
    bearer: Client  # no session; sends A's owner's API token
    token: str

    def auths(self, pattern: Pattern) -> list[tuple[str, Client, dict]]:
        modes = [("session", self.session, {})]
        if pattern.is_api:
            modes.append(("bearer", self.bearer, {"Authorization": f"Bearer {self.token}"}))
        return modes

    def markers(self) -> list[bytes]:
        """Text only B's rows hold: none of it may appear in any answer to A."""
        b = self.b
        return [
            s.encode()
            for s in (
                b.org.name,
                b.owner.user.email,
                b.target.user.email,
                b.colleague.user.email,
                b.invitation.email,
                b.tag.name,
            )
        ]


@pytest.fixture
def crawl(db, settings, client, org, other_org, owner, outsider) -> Crawl:
    # The throttles are per minute: the crawl sends a few hundred API requests in a row.
    settings.API_THROTTLE_TOKEN = ""
    settings.API_THROTTLE_IP = ""
    a, b = _side(owner), _side(outsider)
    assert not Membership.objects.filter(user=owner.user, organization=other_org).exists()
    assert owner.role == Role.OWNER
    _, raw = account_services.api_token_create(membership=owner, name="crawl", expires_in_days=None)
    client.force_login(owner.user)
    client.raise_request_exception = False  # a crash is an answer too (500), and a failure
    bearer = Client(raise_request_exception=False)
    # No CSRF checks: a 403 for a missing CSRF token must not hide what a POST would reach.
    assert not client.handler.enforce_csrf_checks and not bearer.handler.enforce_csrf_checks
    return Crawl(a=a, b=b, session=client, bearer=bearer, token=raw)


# --- B's rows, before and after ---------------------------------------------------------------

# Every model of the project's apps, and how its rows reach their organization.
SNAPSHOT: dict[type[Model], str] = {
    Organization: "pk",
    Membership: "organization",
    Invitation: "organization",
    ApiToken: "organization",
    AuditEvent: "organization",
    Notification: "organization",
    WebhookEndpoint: "organization",
    WebhookDelivery: "organization",
    Project: "organization",
    Tag: "organization",
    Asset: "organization",
    Script: "organization",
    Batch: "project__organization",
    Batch.tags.through: "batch__project__organization",
    RenderJob: "batch__project__organization",
    Output: "job__batch__project__organization",
    Export: "organization",
    User: "memberships__organization",
}


def _snapshot(org: Organization) -> dict[str, list[dict]]:
    return {
        model._meta.label: list(
            model._default_manager.filter(**{lookup: org.pk}).order_by("pk").values()
        )
        for model, lookup in SNAPSHOT.items()
    }


def _assert_unchanged(before: dict, org: Organization) -> None:
    after = _snapshot(org)
    changed = {
        label: {"before": rows, "after": after[label]}
        for label, rows in before.items()
        if after[label] != rows
    }
    assert not changed, f"{org.slug}'s rows changed during the crawl: {changed}"


def _assert_not_in_audit(user: User, org: Organization) -> None:
    rows = AuditEvent.objects.filter(organization=org).filter(
        Q(actor=user) | Q(actor_label__iexact=user.email)
    )
    assert not rows.exists(), f"{user.email} appears in {org.slug}'s audit log: {list(rows)}"


# Models of the project's apps that hold no organization's data, with the reason.
NOT_ORGANIZATION_DATA: dict[type[Model], str] = {
    User.groups.through: "Django's auth groups: unused (roles live on the membership)",
    User.user_permissions.through: "Django's auth permissions: unused, as above",
}


def test_the_snapshot_knows_every_model():
    """B must hold one of everything and the snapshot must compare all of it: a new model of
    accounts, jobs or exports has to be added to SNAPSHOT (and a row of it to _side())."""
    ours = {
        m
        for label in ("accounts", "jobs", "exports")
        for m in apps.get_app_config(label).get_models(include_auto_created=True)
    }
    missing = sorted(m._meta.label for m in ours - set(SNAPSHOT) - set(NOT_ORGANIZATION_DATA))
    assert not missing, f"models the crawl's snapshot does not compare: {missing}"


def test_b_has_one_of_everything(crawl):
    empty = [label for label, rows in _snapshot(crawl.b.org).items() if not rows]
    assert not empty, f"B has no rows of {empty}: the crawl would prove nothing about them"


# --- the walk itself --------------------------------------------------------------------------


def test_every_url_pattern_is_crawled_or_excluded_with_a_reason():
    names = [p.name for p in ALL_PATTERNS]
    stale = sorted(set(NOT_ORG_SCOPED) - set(names))
    assert not stale, f"NOT_ORG_SCOPED names patterns that no longer exist: {stale}"
    unfillable = {str(p): _fill_problems(p) for p in CRAWLED if _fill_problems(p)}
    assert not unfillable, f"patterns the crawl cannot fill: {unfillable}"
    assert len(CRAWLED) >= MIN_CRAWLED, f"only {len(CRAWLED)} organization patterns were found"
    with_ids = [p for p in CRAWLED if p.takes_ids]
    assert len(with_ids) >= MIN_CRAWLED_WITH_IDS, f"only {len(with_ids)} take an object id"
    assert any(p.is_api for p in CRAWLED) and any(not p.is_api for p in CRAWLED)


@pytest.mark.django_db
def test_admin_is_not_open_to_an_owner(client, owner):
    """The admin namespace is not crawled: it is staff-only, which an owner is not."""
    client.force_login(owner.user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- the crawl --------------------------------------------------------------------------------


def _expected(pattern: Pattern, method: str) -> set[int]:
    """404; 405 only where the view has no handler for the method at all."""
    return {404} if pattern.implements(method) else {404, 405}


# Known bugs that make a crawled URL answer something else than 404, with the status it gives
# instead: (URL name, method) -> (status, why). Each is accepted only where the same request
# with an id that exists nowhere gives the very same status (so it says nothing about B's row),
# and only while it still happens: once fixed, the crawl fails until the entry is removed.
KNOWN_BUGS: dict[tuple[str, str], tuple[int, str]] = {}
# The same, as seen by the control crawl (A's own slug and ids, GET): URL name -> (status, why).
KNOWN_CONTROL_BUGS: dict[str, tuple[int, str]] = {}


@pytest.mark.parametrize("pattern", CRAWLED, ids=[p.name for p in CRAWLED])
def test_other_organization_is_404(pattern: Pattern, crawl: Crawl):
    problems = _fill_problems(pattern)
    assert not problems, f"{pattern}: the crawl cannot fill it: {'; '.join(problems)}"
    a, b = crawl.a, crawl.b
    before = _snapshot(b.org)
    fills = [("B's slug, B's ids", b)]
    if pattern.takes_ids:
        fills.append(("A's slug, B's ids", a))
    body = _body(b)
    failures, sent = [], 0
    for fill, slug_side in fills:
        url = _url(pattern, slug_side, b)
        for auth, client, headers in crawl.auths(pattern):
            for method in CRAWL_METHODS:
                response = _send(client, method, url, pattern, body, headers)
                sent += 1
                expected = _expected(pattern, method)
                known = KNOWN_BUGS.get((pattern.name, method))
                if slug_side is a and (method == "OPTIONS" or known):
                    # OPTIONS is answered from the view class (Allow header; the API has no
                    # OPTIONS metadata), never from a row; a known bug must not depend on the
                    # row either: both must answer exactly as for an id that exists nowhere.
                    missing = _url(pattern, a, b, pk=MISSING_PK)
                    twin = _send(client, method, missing, pattern, body, headers).status_code
                    if method == "OPTIONS":
                        expected = {twin}
                    elif response.status_code == known[0] == twin:
                        expected = {known[0]}
                    elif response.status_code in expected:
                        failures.append(
                            f"{method} {url} [{fill}, {auth}] now answers "
                            f"{response.status_code}: remove it from KNOWN_BUGS"
                        )
                if response.status_code not in expected:
                    failures.append(
                        f"{method} {url} [{fill}, {auth}] -> {response.status_code} "
                        f"(expected {sorted(expected)}): {_excerpt(response)}"
                    )
                if not response.streaming:
                    leaked = [m for m in crawl.markers() if m in response.content]
                    if leaked:
                        failures.append(f"{method} {url} [{fill}, {auth}] shows B's {leaked}")
    assert sent >= len(CRAWL_METHODS)
    assert not failures, f"{pattern} answers A's owner:\n" + "\n".join(failures)
    _assert_unchanged(before, b.org)
    _assert_not_in_audit(a.owner.user, b.org)


def _excerpt(response) -> str:
    if response.streaming:
        return f"<streamed {response.get('Content-Type')}>"
    return response.content[:200].decode(errors="replace")


# --- the control: A's own slug and ids --------------------------------------------------------

# Query strings a page needs to have anything to show in the control (never in the crawl).
CONTROL_QUERY: dict[str, Callable[[Side], dict]] = {
    "exports:confirm": lambda side: {"batch": side.batch.pk},
}


def test_own_organization_is_reachable(crawl: Crawl):
    """Rule: every crawled pattern, filled with A's slug and A's ids, answers A's owner's GET
    with 200 or 302 (405 only for views that have no GET handler), with the session and — for
    API routes — the token. So the kwargs are filled right and the 404s of the crawl are the
    tenancy check, not a wrong id or a wrong route."""
    a = crawl.a
    failures, counted = [], {"ok": 0, "405": 0}
    for pattern in CRAWLED:
        if _fill_problems(pattern):
            continue  # reported by its own crawl test
        url = _url(pattern, a, a)
        query = CONTROL_QUERY.get(pattern.name, lambda side: {})(a)
        for auth, client, headers in crawl.auths(pattern):
            response = client.get(url, query, headers=headers)
            known = KNOWN_CONTROL_BUGS.get(pattern.name)
            if known:
                if response.status_code != known[0]:
                    failures.append(
                        f"GET {url} [{auth}] now answers {response.status_code}: remove it "
                        "from KNOWN_CONTROL_BUGS"
                    )
                continue
            if pattern.implements("GET"):
                ok = response.status_code in (200, 302)
                counted["ok"] += ok
            else:
                ok = response.status_code == 405
                counted["405"] += ok
            if not ok:
                failures.append(
                    f"GET {url} [{auth}] -> {response.status_code}: {_excerpt(response)}"
                )
    assert not failures, "A's owner cannot reach A's own pages:\n" + "\n".join(failures)
    assert counted["ok"] >= counted["405"], counted  # most routes can be read
