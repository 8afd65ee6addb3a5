"""Every API endpoint x every role x own / other organization, from one table.

``CALLS`` lists each route and method with the action of accounts.permissions that decides
it. ``test_every_route_has_a_call`` fails when a route (or a method of one) is added to
heygem_site/api_urls.py without an entry here, so a new endpoint cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from accounts.models import ApiToken, AuditEvent, Membership, WebhookEndpoint
from accounts.permissions import PERMISSIONS, ROLE_RANK, Role, role_allows
from accounts.tenancy.api import OrganizationAPIView
from exports.models import Export
from heygem_site import api_urls
from jobs.models import Asset, Batch, Project, RenderJob
from tests.api.helpers import (
    Api,
    World,
    assert_error,
    build_world,
    sheet_upload,
    srt_upload,
    wav_upload,
)
from tests.factories import MembershipFactory


@dataclass(frozen=True)
class Call:
    name: str  # route name in the "api" namespace
    method: str
    action: str  # the permission-table action that decides whether it succeeds
    args: Callable[[World], tuple] = lambda w: ()
    body: Callable[[World], Any] | None = None
    params: dict = field(default_factory=dict)
    multipart: bool = False
    ok: tuple[int, ...] = (200,)
    done: Callable[[World], bool] = lambda w: True

    @property
    def id(self) -> str:
        query = "?" + "&".join(f"{k}={v}" for k, v in self.params.items()) if self.params else ""
        return f"{self.method} {self.name}{query}"

    @property
    def uses_object(self) -> bool:
        return self.args is not Call.args

    def send(self, api: Api, world: World):
        path = api.url(self.name, *self.args(world))
        data = self.body(world) if self.body else (self.params or None)
        return api.call(self.method, path, data, multipart=self.multipart)


def _role(w: World) -> str:
    return Membership.objects.get(pk=w.target.pk).role


CALLS: list[Call] = [
    Call("org", "GET", "org.view"),
    # members
    Call("member-list", "GET", "member.list"),
    Call("member-detail", "GET", "member.list", lambda w: (w.target.pk,)),
    Call(
        "member-detail",
        "PATCH",
        "member.change_role",
        lambda w: (w.target.pk,),
        body=lambda w: {"role": "member"},
        done=lambda w: _role(w) == "member",
    ),
    Call(
        "member-detail",
        "DELETE",
        "member.remove",
        lambda w: (w.target.pk,),
        ok=(204,),
        done=lambda w: not Membership.objects.filter(pk=w.target.pk).exists(),
    ),
    # tokens
    Call("token-list", "GET", "token.list"),
    Call(
        "token-list",
        "POST",
        "token.create",
        body=lambda w: {"name": "ci"},
        ok=(201,),
        done=lambda w: ApiToken.objects.filter(organization=w.org, name="ci").exists(),
    ),
    Call(
        "token-detail",
        "DELETE",
        "token.revoke",
        lambda w: (w.own_token.pk,),
        ok=(204,),
        done=lambda w: ApiToken.objects.get(pk=w.own_token.pk).revoked_at is not None,
    ),
    Call(
        "token-detail",
        "DELETE",
        "token.revoke_any",
        lambda w: (w.other_token.pk,),
        ok=(204,),
        done=lambda w: ApiToken.objects.get(pk=w.other_token.pk).revoked_at is not None,
    ),
    # audit
    Call("audit-list", "GET", "audit.view"),
    Call("audit-list", "GET", "audit.export", params={"format": "csv"}),
    Call("audit-csv", "GET", "audit.export"),
    # webhooks
    Call("webhook-list", "GET", "webhook.manage"),
    Call(
        "webhook-list",
        "POST",
        "webhook.manage",
        ok=(201,),
        body=lambda w: {"url": "https://93.184.216.34/new", "events": ["job.failed"]},
        done=lambda w: WebhookEndpoint.objects.filter(url__endswith="/new").exists(),
    ),
    Call("webhook-detail", "GET", "webhook.manage", lambda w: (w.webhook.pk,)),
    Call(
        "webhook-detail",
        "PATCH",
        "webhook.manage",
        lambda w: (w.webhook.pk,),
        body=lambda w: {"description": "changed"},
        done=lambda w: WebhookEndpoint.objects.get(pk=w.webhook.pk).description == "changed",
    ),
    Call(
        "webhook-detail",
        "DELETE",
        "webhook.manage",
        lambda w: (w.webhook.pk,),
        ok=(204,),
        done=lambda w: not WebhookEndpoint.objects.filter(pk=w.webhook.pk).exists(),
    ),
    Call(
        "webhook-rotate-secret",
        "POST",
        "webhook.manage",
        lambda w: (w.webhook.pk,),
        done=lambda w: WebhookEndpoint.objects.get(pk=w.webhook.pk).secret != "whsec_test",
    ),
    Call(
        "webhook-test",
        "POST",
        "webhook.manage",
        lambda w: (w.webhook.pk,),
        ok=(202,),
        done=lambda w: w.webhook.deliveries.filter(event="ping").exists(),
    ),
    Call("webhook-deliveries", "GET", "webhook.manage", lambda w: (w.webhook.pk,)),
    # projects and assets
    Call("project-list", "GET", "project.view"),
    Call(
        "project-list",
        "POST",
        "project.create",
        body=lambda w: {"name": "Fresh"},
        ok=(201,),
        done=lambda w: Project.objects.filter(organization=w.org, name="Fresh").exists(),
    ),
    Call("project-detail", "GET", "project.view", lambda w: (w.project.pk,)),
    Call("asset-list", "GET", "project.view"),
    Call(
        "asset-list",
        "POST",
        "asset.upload",
        multipart=True,
        ok=(201,),
        body=lambda w: {"kind": "audio", "file": wav_upload()},
        done=lambda w: Asset.objects.filter(organization=w.org, original_name="tone.wav").exists(),
    ),
    Call("asset-detail", "GET", "project.view", lambda w: (w.audio.pk,)),
    Call(
        "asset-detail",
        "PATCH",
        "asset.rename",
        lambda w: (w.audio.pk,),
        body=lambda w: {"name": "intro.wav"},
        done=lambda w: Asset.objects.get(pk=w.audio.pk).original_name == "intro.wav",
    ),
    Call(
        "asset-detail",
        "DELETE",
        "asset.delete_any",
        lambda w: (w.spare_audio.pk,),
        ok=(204,),
        done=lambda w: not Asset.objects.filter(pk=w.spare_audio.pk).exists(),
    ),
    Call(
        "asset-subtitles",
        "POST",
        "asset.upload",
        lambda w: (w.audio.pk,),
        multipart=True,
        body=lambda w: {"file": srt_upload()},
        done=lambda w: Asset.objects.get(pk=w.audio.pk).subtitles_name == "new.srt",
    ),
    Call(
        "asset-subtitles",
        "DELETE",
        "asset.upload",
        lambda w: (w.audio.pk,),
        ok=(204,),
        done=lambda w: Asset.objects.get(pk=w.audio.pk).subtitles == "",
    ),
    # scripts: voices and sheets
    Call("voice-list", "GET", "project.view"),
    Call("sheet-template", "GET", "project.view"),
    Call(
        "sheet-check",
        "POST",
        "batch.submit",
        multipart=True,
        body=lambda w: {"file": sheet_upload()},
    ),
    Call(
        "sheet-submit",
        "POST",
        "batch.submit",
        multipart=True,
        ok=(201,),
        body=lambda w: {"project": w.project.pk, "file": sheet_upload()},
        done=lambda w: Batch.objects.filter(project=w.project).count() == 2,
    ),
    # batches and jobs
    Call("batch-list", "GET", "project.view"),
    Call(
        "batch-list",
        "POST",
        "batch.submit",
        ok=(201,),
        body=lambda w: {"project": w.project.pk, "avatars": [w.avatar.pk], "audios": [w.audio.pk]},
        done=lambda w: Batch.objects.filter(project=w.project).count() == 2,
    ),
    Call("batch-detail", "GET", "project.view", lambda w: (w.batch.pk,)),
    Call(
        "batch-cancel",
        "POST",
        "batch.cancel",
        lambda w: (w.batch.pk,),
        done=lambda w: RenderJob.objects.get(pk=w.queued_job.pk).status == "canceled",
    ),
    Call("job-detail", "GET", "project.view", lambda w: (w.queued_job.pk,)),
    Call(
        "job-cancel",
        "POST",
        "job.cancel",
        lambda w: (w.queued_job.pk,),
        done=lambda w: RenderJob.objects.get(pk=w.queued_job.pk).status == "canceled",
    ),
    Call(
        "job-retry",
        "POST",
        "job.retry",
        lambda w: (w.failed_job.pk,),
        done=lambda w: RenderJob.objects.get(pk=w.failed_job.pk).status == "queued",
    ),
    # outputs
    Call("output-list", "GET", "project.view"),
    Call("output-detail", "GET", "project.view", lambda w: (w.output.pk,)),
    # 200 with the file from a local folder, 302 to a presigned URL from a bucket.
    Call("output-download", "GET", "output.download", lambda w: (w.output.pk,), ok=(200, 302)),
    Call("output-subtitles", "GET", "output.download", lambda w: (w.output.pk,)),
    # exports
    Call("export-list", "GET", "export.view"),
    Call(
        "export-list",
        "POST",
        "export.request",
        body=lambda w: {"batch": w.batch.pk},
        ok=(201,),
        done=lambda w: Export.objects.filter(batch=w.batch).count() == 2,
    ),
    Call("export-detail", "GET", "export.view", lambda w: (w.export.pk,)),
    Call(
        "export-download",
        "GET",
        "export.download",
        lambda w: (w.export.pk,),
        done=lambda w: AuditEvent.objects.filter(
            organization=w.org, action="export.downloaded"
        ).exists(),
    ),
]
ROLES = Role.values
# Calls that change nothing (a sheet check only reads the library).
READ_ONLY = {c.id for c in CALLS if c.method == "GET" and c.name != "export-download"} | {
    "POST sheet-check"
}


def test_every_route_has_a_call():
    covered = {(c.name, c.method) for c in CALLS}
    routes = set()
    for pattern in api_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        if view is not None and issubclass(view, OrganizationAPIView):
            routes |= {(pattern.name, method) for method in view.permissions}
    assert routes, "no API routes found"
    others = {p.name for p in api_urls.urlpatterns} - {name for name, _ in routes}
    assert others == {"schema", "docs", "redoc", "not-found"}, others  # tested in test_schema
    assert routes == covered, f"missing: {routes - covered}; stale: {covered - routes}"


def _gate(call: Call) -> str:
    """The action the view itself checks for this method."""
    return next(
        p.callback.view_class.permissions[call.method]
        for p in api_urls.urlpatterns
        if p.name == call.name and hasattr(p.callback, "view_class")
    )


def test_every_call_names_the_view_gate_or_a_stricter_action():
    """A call may name a stricter action than the view's gate: one its service applies
    (token.revoke_any) or the CSV variant of a list (audit.export)."""
    for call in CALLS:
        minimum = ROLE_RANK[PERMISSIONS[_gate(call)]]
        assert ROLE_RANK[PERMISSIONS[call.action]] >= minimum, call.id


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
def test_own_organization(client, make_token, call, role):
    acting = MembershipFactory(role=role)
    world = build_world(acting.organization, acting)
    api = Api(client, make_token(acting), acting.organization.slug)
    response = call.send(api, world)
    if role_allows(role, call.action):
        assert response.status_code in call.ok, (response.status_code, response.content[:500])
        assert call.done(world), f"{role} was allowed {call.id} but nothing changed"
        if call.params.get("format") == "csv" or call.name == "audit-csv":
            assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfseq,created_at")
    else:
        assert_error(response, 403, "permission_denied")
        if call.id not in READ_ONLY:
            assert not call.done(world), f"{role} was refused {call.id} yet it happened"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
def test_other_organization_is_hidden(client, make_token, call, role):
    """A token of organization A on B's URLs and ids: 404, whatever the role in A."""
    acting = MembershipFactory(role=role)
    build_world(acting.organization, acting)
    foreign = build_world(MembershipFactory(role=Role.OWNER).organization)
    api = Api(client, make_token(acting), foreign.org.slug)
    response = call.send(api, foreign)
    assert_error(response, 404, "not_found")
    if call.id not in READ_ONLY:
        assert not call.done(foreign)


OBJECT_CALLS = [c for c in CALLS if c.uses_object]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("call", OBJECT_CALLS, ids=lambda c: c.id)
def test_foreign_object_in_own_organization(client, make_token, call, role):
    """Another tenant's ids under our own slug: 404 like a missing id (403 if the role is
    too low to ask at all)."""
    acting = MembershipFactory(role=role)
    build_world(acting.organization, acting)
    foreign = build_world(MembershipFactory(role=Role.OWNER).organization)
    api = Api(client, make_token(acting), acting.organization.slug)
    response = call.send(api, foreign)
    if role_allows(role, _gate(call)):
        assert_error(response, 404, "not_found")
    else:
        assert_error(response, 403, "permission_denied")
    if call.id not in READ_ONLY:
        assert not call.done(foreign)


@pytest.mark.django_db
@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
def test_anonymous_gets_401(client, call):
    world = build_world(MembershipFactory(role=Role.OWNER).organization)
    response = call.send(Api(client, None, world.org.slug), world)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    if call.id not in READ_ONLY:
        assert not call.done(world)
