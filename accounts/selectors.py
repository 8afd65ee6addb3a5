"""Organization-scoped reads for accounts. Each takes the acting membership."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, Invitation, Membership, User


def membership_for(user: User, slug: str) -> Membership:
    """The user's membership in the organization ``slug``; 404 when there is none.

    Missing organizations and organizations the user is not in look the same, so slugs of
    other tenants do not leak.
    """
    if not user.is_authenticated:
        raise Http404("No such organization.")
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(user=user, organization__slug=slug)
        .first()
    )
    if membership is None:
        raise Http404("No such organization.")
    return membership


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.select_related("organization").filter(user=user)


def member_list(membership: Membership) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("user")
        .filter(organization=membership.organization_id)
        .order_by("user__email")
    )


def pending_invitations(membership: Membership) -> QuerySet[Invitation]:
    return Invitation.objects.select_related("invited_by").filter(
        organization=membership.organization_id,
        accepted_at=None,
        revoked_at=None,
        expires_at__gt=timezone.now(),
    )


def token_list(membership: Membership) -> QuerySet[ApiToken]:
    """Admins see every token of the organization; others only their own."""
    tokens = ApiToken.objects.select_related("user").filter(organization=membership.organization_id)
    if not membership.can("token.revoke_any"):
        tokens = tokens.filter(user=membership.user_id)
    return tokens


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    since: dt.date | None = None
    until: dt.date | None = None


def audit_events(membership: Membership, filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(organization=membership.organization_id)
    if filters.action:
        # "member" matches member.*, "member.removed" matches itself only.
        if "." in filters.action:
            events = events.filter(action=filters.action)
        else:
            events = events.filter(action__startswith=filters.action + ".")
    if filters.actor:
        events = events.filter(actor_label__icontains=filters.actor.strip())
    if filters.since:
        events = events.filter(created_at__date__gte=filters.since)
    if filters.until:
        events = events.filter(created_at__date__lte=filters.until)
    return events.order_by("-seq")


def audit_actions(membership: Membership) -> list[str]:
    return list(
        AuditEvent.objects.filter(organization=membership.organization_id)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
