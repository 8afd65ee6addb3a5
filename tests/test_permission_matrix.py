"""Every action of the permission table x every role x own / other organization.

The cases are generated from accounts.permissions.PERMISSIONS: an action added to the table
without a probe here fails ``test_every_action_has_a_probe``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse

from accounts.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    WebhookEndpoint,
)
from accounts.permissions import PERMISSIONS, Role, role_allows
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob
from tests.factories import MembershipFactory, UserFactory
from tests.worlds import jobs_world, token_for


@dataclass
class World:
    """One organization's objects that the probes act on."""

    org: Organization
    target: Membership  # a viewer, to change or remove
    invitation: Invitation
    own_token: ApiToken | None
    other_token: ApiToken
    project: Project
    avatar: Asset
    audio: Asset
    batch: Batch
    queued_job: RenderJob
    failed_job: RenderJob
    done_job: RenderJob
    output: Output
    export: Export
    spare_audio: Asset
    own_asset: Asset  # unused, uploaded by the acting member (by nobody in a foreign world)
    other_asset: Asset  # unused, uploaded by a colleague


def _world(org: Organization, acting: Membership | None) -> World:
    from datetime import timedelta

    from django.utils import timezone

    target = MembershipFactory(organization=org, role=Role.VIEWER)
    colleague = MembershipFactory(organization=org, role=Role.MEMBER)
    invitation = Invitation.objects.create(
        organization=org,
        email=f"guest-{org.slug}@example.com",
        role=Role.VIEWER,
        token_hash=f"hash-{org.slug}".ljust(64, "0"),
        expires_at=timezone.now() + timedelta(days=1),
    )
    loose = {"organization": org, "kind": "audio", "duration": 1.0, "bytes": 10}
    own_asset = Asset.objects.create(
        file="assets/own.wav", original_name="own.wav", sha256="1" * 64,
        created_by=acting.user if acting else None, **loose,
    )  # fmt: skip
    other_asset = Asset.objects.create(
        file="assets/other.wav", original_name="other.wav", sha256="2" * 64,
        created_by=colleague.user, **loose,
    )  # fmt: skip
    return World(
        org=org,
        target=target,
        own_asset=own_asset,
        other_asset=other_asset,
        invitation=invitation,
        own_token=token_for(acting, "mine") if acting else None,
        other_token=token_for(colleague, "theirs"),
        **jobs_world(org),
    )


@dataclass(frozen=True)
class Probe:
    send: Callable  # (client, slug, world) -> response
    done: Callable[[World], bool]  # did the allowed request take effect?
    uses_object: bool = False


def _get(name):
    return lambda c, slug, w: c.get(reverse(f"accounts:{name}", args=[slug]))


PROBES: dict[str, Probe] = {
    "org.view": Probe(_get("org_home"), lambda w: True),
    "org.update": Probe(
        lambda c, slug, w: c.post(reverse("accounts:org_settings", args=[slug]), {"name": "New"}),
        lambda w: Organization.objects.get(pk=w.org.pk).name == "New",
    ),
    "member.list": Probe(_get("members"), lambda w: True),
    "member.invite": Probe(
        lambda c, slug, w: c.post(
            reverse("accounts:invite", args=[slug]), {"email": "new@x.test", "role": "viewer"}
        ),
        lambda w: Invitation.objects.filter(organization=w.org, email="new@x.test").exists(),
    ),
    "member.change_role": Probe(
        lambda c, slug, w: c.post(
            reverse("accounts:member_role", args=[slug, w.target.pk]), {"role": "member"}
        ),
        lambda w: Membership.objects.get(pk=w.target.pk).role == "member",
        uses_object=True,
    ),
    "member.remove": Probe(
        lambda c, slug, w: c.post(reverse("accounts:member_remove", args=[slug, w.target.pk])),
        lambda w: not Membership.objects.filter(pk=w.target.pk).exists(),
        uses_object=True,
    ),
    "invitation.revoke": Probe(
        lambda c, slug, w: c.post(
            reverse("accounts:invitation_revoke", args=[slug, w.invitation.pk])
        ),
        lambda w: Invitation.objects.get(pk=w.invitation.pk).revoked_at is not None,
        uses_object=True,
    ),
    "token.list": Probe(_get("tokens"), lambda w: True),
    "token.create": Probe(
        lambda c, slug, w: c.post(reverse("accounts:token_create", args=[slug]), {"name": "ci"}),
        lambda w: ApiToken.objects.filter(organization=w.org, name="ci").exists(),
    ),
    "token.revoke": Probe(
        lambda c, slug, w: c.post(reverse("accounts:token_revoke", args=[slug, w.own_token.pk])),
        lambda w: ApiToken.objects.get(pk=w.own_token.pk).revoked_at is not None,
        uses_object=True,
    ),
    "token.revoke_any": Probe(
        lambda c, slug, w: c.post(reverse("accounts:token_revoke", args=[slug, w.other_token.pk])),
        lambda w: ApiToken.objects.get(pk=w.other_token.pk).revoked_at is not None,
        uses_object=True,
    ),
    "audit.view": Probe(_get("audit"), lambda w: True),
    "audit.export": Probe(_get("audit_csv"), lambda w: True),
    "project.view": Probe(
        lambda c, slug, w: c.get(reverse("jobs:batch", args=[slug, w.batch.pk])),
        lambda w: True,
        uses_object=True,
    ),
    "project.create": Probe(
        lambda c, slug, w: c.post(reverse("jobs:project_create", args=[slug]), {"name": "Fresh"}),
        lambda w: Project.objects.filter(organization=w.org, name="Fresh").exists(),
    ),
    "asset.upload": Probe(
        lambda c, slug, w: c.post(
            reverse("jobs:asset_upload", args=[slug]), {"kind": "audio", "file": _wav()}
        ),
        lambda w: Asset.objects.filter(organization=w.org, original_name="tone.wav").exists(),
    ),
    "asset.rename": Probe(
        lambda c, slug, w: c.post(
            reverse("jobs:asset_rename", args=[slug, w.audio.pk]), {"name": "主播 intro.wav"}
        ),
        lambda w: Asset.objects.get(pk=w.audio.pk).original_name == "主播 intro.wav",
        uses_object=True,
    ),
    "asset.delete": Probe(
        lambda c, slug, w: c.post(reverse("jobs:asset_delete", args=[slug, w.own_asset.pk])),
        lambda w: not Asset.objects.filter(pk=w.own_asset.pk).exists(),
        uses_object=True,
    ),
    "asset.delete_any": Probe(
        lambda c, slug, w: c.post(reverse("jobs:asset_delete", args=[slug, w.other_asset.pk])),
        lambda w: not Asset.objects.filter(pk=w.other_asset.pk).exists(),
        uses_object=True,
    ),
    "batch.submit": Probe(
        lambda c, slug, w: c.post(
            reverse("jobs:batch_create", args=[slug, w.project.pk]),
            {"engine": "warp", "avatars": [w.avatar.pk], "audios": [w.audio.pk]},
        ),
        lambda w: Batch.objects.filter(project=w.project).count() == 2,
        uses_object=True,
    ),
    "batch.cancel": Probe(
        lambda c, slug, w: c.post(reverse("jobs:batch_cancel", args=[slug, w.batch.pk])),
        lambda w: RenderJob.objects.get(pk=w.queued_job.pk).status == "canceled",
        uses_object=True,
    ),
    "job.cancel": Probe(
        lambda c, slug, w: c.post(reverse("jobs:job_cancel", args=[slug, w.queued_job.pk])),
        lambda w: RenderJob.objects.get(pk=w.queued_job.pk).status == "canceled",
        uses_object=True,
    ),
    "job.retry": Probe(
        lambda c, slug, w: c.post(reverse("jobs:job_retry", args=[slug, w.failed_job.pk])),
        lambda w: RenderJob.objects.get(pk=w.failed_job.pk).status != "failed",
        uses_object=True,
    ),
    "export.view": Probe(
        lambda c, slug, w: c.get(reverse("exports:detail", args=[slug, w.export.pk])),
        lambda w: True,
        uses_object=True,
    ),
    "export.request": Probe(
        lambda c, slug, w: c.post(reverse("exports:confirm", args=[slug]), {"batch": w.batch.pk}),
        lambda w: Export.objects.filter(batch=w.batch).count() == 2,
        uses_object=True,
    ),
    "export.download": Probe(
        lambda c, slug, w: c.get(reverse("exports:download", args=[slug, w.export.pk])),
        lambda w: AuditEvent.objects.filter(
            organization=w.org, action="export.downloaded"
        ).exists(),
        uses_object=True,
    ),
    "output.download": Probe(
        lambda c, slug, w: c.get(reverse("jobs:output_download", args=[slug, w.output.pk])),
        lambda w: True,
        uses_object=True,
    ),
    "webhook.manage": Probe(
        lambda c, slug, w: c.post(
            reverse("accounts:webhook_create", args=[slug]),
            {"url": "https://93.184.216.34/hook", "events": ["batch.completed"]},
        ),
        lambda w: WebhookEndpoint.objects.filter(organization=w.org).exists(),
    ),
}


def _wav():
    """A short tone as a WAV upload, written with the standard library."""
    import io
    import math
    import struct
    import wave

    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(8000)))
    return SimpleUploadedFile("tone.wav", buffer.getvalue(), content_type="audio/wav")


def test_every_action_has_a_probe():
    assert set(PROBES) == set(PERMISSIONS)


READS = {
    a for a in PERMISSIONS if a.endswith((".view", ".list", ".export")) or a in {"output.download"}
}
CASES = [(action, role) for action in PERMISSIONS for role in Role.values]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "role"), CASES)
def test_own_organization(client, action, role):
    acting = MembershipFactory(role=role)
    world = _world(acting.organization, acting)
    client.force_login(acting.user)
    response = PROBES[action].send(client, world.org.slug, world)
    if role_allows(role, action):
        assert response.status_code in (200, 201, 302), response.content[:500]
        assert PROBES[action].done(world), f"{role} was allowed {action} but nothing changed"
        if response.status_code == 200 and action == "audit.export":
            assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfseq,created_at")
    else:
        assert response.status_code == 403
        if action not in READS:
            assert not PROBES[action].done(world), f"{role} was refused {action} yet it happened"


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "role"), CASES)
def test_other_organization_is_hidden(client, action, role):
    """A member of A asking for B's pages or objects gets 404, whatever their role in A."""
    acting = MembershipFactory(role=role)
    foreign = _world(MembershipFactory(role=Role.OWNER).organization, None)
    foreign.own_token = token_for(foreign.target, "foreign")
    client.force_login(acting.user)
    response = PROBES[action].send(client, foreign.org.slug, foreign)
    assert response.status_code == 404
    if action not in READS:
        assert not PROBES[action].done(foreign)


OBJECT_CASES = [(a, r) for a, r in CASES if PROBES[a].uses_object]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "role"), OBJECT_CASES)
def test_foreign_object_in_own_organization(client, action, role):
    """Another tenant's ids under our own slug: 404 like a missing id (403 if the role is low)."""
    acting = MembershipFactory(role=role)
    _world(acting.organization, acting)
    foreign = _world(MembershipFactory(role=Role.OWNER).organization, None)
    foreign.own_token = token_for(foreign.target, "foreign")
    client.force_login(acting.user)
    response = PROBES[action].send(client, acting.organization.slug, foreign)
    # The page's own gate; the "_any" half is decided on the object, which is not found.
    minimum = {"token.revoke_any": "token.revoke", "asset.delete_any": "asset.delete"}.get(
        action, action
    )
    assert response.status_code == (404 if role_allows(role, minimum) else 403)
    if action not in READS:
        assert not PROBES[action].done(foreign)


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(PERMISSIONS))
def test_anonymous_is_sent_to_login(client, action):
    world = _world(MembershipFactory(role=Role.OWNER).organization, UserFactory and None)
    world.own_token = token_for(world.target, "x")
    response = PROBES[action].send(client, world.org.slug, world)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
