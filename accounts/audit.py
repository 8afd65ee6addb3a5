"""The audit log: an append-only hash chain per organization.

Every row stores the hash of the previous row of its organization and a SHA-256 over a
canonical form of itself (which includes that previous hash). The organization row holds the
chain head (sequence number and hash) and is locked while a row is appended, so concurrent
writers queue up instead of forking the chain, and a deleted tail is caught by comparing the
last row with the head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import AuditEvent, Organization, User
from core.http import client_ip

CHAIN_VERSION = 1

# What each action is called on the audit page (its filter and its rows). The log stores the
# action's code, the same in every language; an action missing here shows as its code.
ACTION_LABELS = {
    "org.created": _("Organization created"),
    "org.renamed": _("Organization renamed"),
    "member.added": _("Member added"),
    "member.role_changed": _("Member's role changed"),
    "member.removed": _("Member removed"),
    "invitation.created": _("Invitation sent"),
    "invitation.accepted": _("Invitation accepted"),
    "invitation.revoked": _("Invitation withdrawn"),
    "token.created": _("API token created"),
    "token.revoked": _("API token revoked"),
    "webhook.created": _("Webhook added"),
    "webhook.updated": _("Webhook changed"),
    "webhook.secret_rotated": _("Webhook signing secret rotated"),
    "webhook.deleted": _("Webhook removed"),
    "webhook.tested": _("Webhook test event sent"),
    "project.created": _("Project created"),
    "asset.uploaded": _("Asset uploaded"),
    "asset.renamed": _("Asset renamed"),
    "asset.deleted": _("Asset deleted"),
    "asset.synthesized": _("Audio made from a script"),
    "asset.subtitles_attached": _("Subtitles attached"),
    "asset.subtitles_removed": _("Subtitles removed"),
    "batch.submitted": _("Batch submitted"),
    "batch.canceled": _("Batch cancelled"),
    "job.canceled": _("Video job cancelled"),
    "job.retried": _("Video job retried"),
    "export.requested": _("Bundle requested"),
    "export.built": _("Bundle packed"),
    "export.failed": _("Bundle failed"),
    "export.downloaded": _("Bundle downloaded"),
    "export.expired": _("Bundle expired"),
}


# The audit filter groups the actions by what they act on, in this order.
ACTION_AREAS = {
    "org": pgettext_lazy("audit area", "Organization"),
    "member": pgettext_lazy("audit area", "Members"),
    "invitation": pgettext_lazy("audit area", "Invitations"),
    "token": pgettext_lazy("audit area", "API tokens"),
    "webhook": pgettext_lazy("audit area", "Webhooks"),
    "project": pgettext_lazy("audit area", "Projects"),
    "asset": pgettext_lazy("audit area", "Library"),
    "batch": pgettext_lazy("audit area", "Batches"),
    "job": pgettext_lazy("audit area", "Video jobs"),
    "export": pgettext_lazy("audit area", "Bundles"),
}


def action_groups(actions: list[str]) -> list[tuple[str, str, list[str]]]:
    """``actions`` grouped for the filter: (area code, area name, actions), areas in the order
    of ``ACTION_AREAS`` (an unknown one last, named by its code)."""
    groups: dict[str, list[str]] = {}
    for action in actions:
        groups.setdefault(action.split(".", 1)[0], []).append(action)
    order = {area: n for n, area in enumerate(ACTION_AREAS)}
    return [
        (area, str(ACTION_AREAS.get(area, area)), codes)
        for area, codes in sorted(groups.items(), key=lambda g: (order.get(g[0], 99), g[0]))
    ]


def action_label(action: str) -> str:
    """The action as people read it, in the active language (its code when it has no name)."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


@lru_cache(maxsize=1)
def target_type_labels() -> dict[str, Any]:
    """What each ``target_type`` is called: the model's (lazily translated) verbose name, by the
    model name ``Target.of`` records (``project`` → 项目 in Chinese)."""
    labels: dict[str, Any] = {}
    for model in apps.get_models():
        labels.setdefault(model._meta.model_name, model._meta.verbose_name)
    return labels


@dataclass(frozen=True)
class RequestMeta:
    """Who is on the other end of a request, as the audit log records it."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        return cls(
            ip=client_ip(request) or None, user_agent=request.META.get("HTTP_USER_AGENT", "")[:512]
        )


SYSTEM = RequestMeta()


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    label: str

    @classmethod
    def of(cls, obj: Any, label: str | None = None) -> Target:
        return cls(type=obj._meta.model_name, id=str(obj.pk), label=(label or str(obj))[:255])


def _utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_form(event: AuditEvent) -> bytes:
    """The bytes an event's hash is computed over; stable across databases."""
    payload = {
        "v": CHAIN_VERSION,
        "organization": event.organization_id,
        "seq": event.seq,
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "file_count": event.file_count,
        "total_bytes": event.total_bytes,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "outcome": event.outcome,
        "detail": event.detail,
        "created_at": _utc_iso(event.created_at),
        "prev_hash": event.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_form(event)).hexdigest()


def record_event(
    *,
    organization: Organization,
    action: str,
    actor: User | None = None,
    target: Target | None = None,
    meta: RequestMeta = SYSTEM,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    file_count: int | None = None,
    total_bytes: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the organization's chain, inside the caller's transaction.

    Call it from the service that makes the change, so the change and its audit row commit or
    roll back together.
    """
    with transaction.atomic():
        head = (
            Organization.objects.select_for_update()
            .only("audit_head_seq", "audit_head_hash")
            .get(pk=organization.pk)
        )
        event = AuditEvent(
            organization_id=organization.pk,
            seq=head.audit_head_seq + 1,
            actor=actor,
            actor_label=(actor.email if actor else "system")[:254],
            action=action,
            target_type=target.type if target else "",
            target_id=target.id if target else "",
            target_label=target.label if target else "",
            file_count=file_count,
            total_bytes=total_bytes,
            ip=meta.ip,
            user_agent=meta.user_agent[:512],
            outcome=outcome,
            # A JSON round trip now, so the hash is computed over what the database returns.
            detail=json.loads(json.dumps(detail or {}, default=str)),
            created_at=timezone.now(),
            prev_hash=head.audit_head_hash,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        Organization.objects.filter(pk=organization.pk).update(
            audit_head_seq=event.seq, audit_head_hash=event.hash
        )
        organization.audit_head_seq, organization.audit_head_hash = event.seq, event.hash
    return event


@dataclass(frozen=True)
class ChainReport:
    organization: Organization
    checked: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _describe(event: AuditEvent) -> str:
    return f"row id={event.pk} (seq {event.seq}, {event.action}, {_utc_iso(event.created_at)})"


def verify_chain(organization: Organization) -> ChainReport:
    """Walk one organization's chain in order and report the first row that does not fit."""
    organization.refresh_from_db(fields=["audit_head_seq", "audit_head_hash"])
    expected_seq, prev_hash, checked = 1, "", 0
    rows: Iterator[AuditEvent] = (
        AuditEvent.objects.filter(organization=organization).order_by("seq").iterator(2000)
    )
    for event in rows:
        if event.seq != expected_seq:
            kind = "deleted" if event.seq > expected_seq else "inserted"
            return ChainReport(
                organization,
                checked,
                f"{_describe(event)}: expected seq {expected_seq}; a row was {kind} before it.",
            )
        if event.prev_hash != prev_hash:
            return ChainReport(
                organization,
                checked,
                f"{_describe(event)}: its prev_hash does not match the previous row's hash "
                "(a row before it was altered, inserted or deleted).",
            )
        if compute_hash(event) != event.hash:
            return ChainReport(
                organization, checked, f"{_describe(event)}: its content does not match its hash."
            )
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    if checked != organization.audit_head_seq or prev_hash != organization.audit_head_hash:
        return ChainReport(
            organization,
            checked,
            f"the chain ends at seq {checked} but the organization's head is at seq "
            f"{organization.audit_head_seq}: rows were deleted from (or added to) its end.",
        )
    return ChainReport(organization, checked)
