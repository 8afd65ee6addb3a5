"""Organization-scoped reads for accounts. Each takes the acting membership."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiToken, AuditEvent, Invitation, Membership, User


def membership_for(user: User, slug: str) -> Membership:
    """The user's membership in the organization ``slug``; 404 when there is none.

    Missing organizations and organizations the user is not in look the same, so slugs of
    other tenants do not leak.
    """
    if not user.is_authenticated:
        raise Http404(_("No such organization."))
    found = list(
        Membership.objects.select_related("organization").filter(
            user=user, organization__slug=slug
        )[:1]  # (user, organization) is unique: no ORDER BY needed
    )
    if not found:
        raise Http404(_("No such organization."))
    membership = found[0]
    membership.user = user  # the caller's user object, not a second copy from the database
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


# The audit page's columns (the detail is worded by accounts.audit_detail); hashes and the user
# agent stay in the database.
AUDIT_ROW_FIELDS = (
    "id",
    "seq",
    "created_at",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "file_count",
    "total_bytes",
    "ip",
    "outcome",
    "detail",
)


class _ChainPaginator(Paginator):
    """An organization's whole audit log, cut by ``seq`` instead of OFFSET and counted by the
    chain head instead of COUNT(*): the chain numbers events 1…head without gaps (what
    ``verify_audit`` checks), so page n holds seqs head - n·per_page + 1 … head - (n-1)·per_page,
    read from the (organization, seq) index however long the log grows. Events appended after
    the organization row was read show on the next request."""

    def __init__(self, events: QuerySet[AuditEvent], per_page: int, head: int) -> None:
        super().__init__(events, per_page)
        self.count = head  # replaces the cached COUNT(*)

    def page(self, number):
        number = self.validate_number(number)
        top = self.count - (number - 1) * self.per_page
        rows = self.object_list.filter(seq__lte=top, seq__gt=top - self.per_page)
        return self._get_page(rows, number, self)


def audit_page(membership: Membership, filters: AuditFilters, per_page: int, number) -> Page:
    """One page of the audit log, newest first, as the audit page shows it."""
    events = audit_events(membership, filters).only(*AUDIT_ROW_FIELDS)
    if filters == AuditFilters():
        paginator = _ChainPaginator(events, per_page, membership.organization.audit_head_seq)
    else:
        paginator = Paginator(events, per_page)
    return paginator.get_page(number)


def audit_actions(membership: Membership) -> list[str]:
    """The actions this organization's log holds, sorted: one index seek per action (a loose
    index scan on (organization, action, seq)), not a scan of every event."""
    sql = """
        WITH RECURSIVE found(action) AS (
            SELECT MIN(action) FROM accounts_auditevent WHERE organization_id = %s
            UNION ALL
            SELECT (
                SELECT MIN(e.action) FROM accounts_auditevent e
                WHERE e.organization_id = %s AND e.action > found.action
            )
            FROM found WHERE found.action IS NOT NULL
        )
        SELECT action FROM found WHERE action IS NOT NULL ORDER BY action
    """
    org = membership.organization_id
    with connection.cursor() as cursor:
        cursor.execute(sql, [org, org])
        return [row[0] for row in cursor.fetchall()]
