"""Writes and business rules for accounts: organizations, memberships, invitations, tokens.

Every service runs in a transaction, takes the acting membership explicitly, checks the
permission table, and writes its audit row in the same transaction as the change. Errors a
person can fix are raised as ValidationError with a message that says what to do; a missing
permission is PermissionDenied.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import (
    RESERVED_SLUGS,
    ApiToken,
    Invitation,
    Membership,
    Organization,
    User,
    normalize_email,
)
from accounts.permissions import ROLE_RANK, Role, role_allows
from accounts.preferences import (
    language_of,
    time_zone_error,
    valid_language,
    valid_time_zone,
    zone_label,
    zone_of,
)
from accounts.slugs import free_slug, slug_from_name
from core import links

TOKEN_PREFIX = "hgm"  # noqa: S105  (a public marker, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)


def require(membership: Membership, action: str) -> None:
    """Raise PermissionDenied unless the membership's role allows ``action``."""
    if not role_allows(membership.role, action):
        raise PermissionDenied(
            _("Your role (%(role)s) may not do this: ask an organization admin.")
            % {"role": membership.get_role_display()}
        )


def _hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _validate_role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError(
            _("“%(role)s” is not a role. Choose one of: %(roles)s.")
            % {"role": role, "roles": ", ".join(Role.values)},
            code="role",
        )
    return role


# --- organizations ---------------------------------------------------------------------------


@transaction.atomic
def organization_create(
    *, user: User, name: str, slug: str = "", meta: RequestMeta = SYSTEM
) -> Organization:
    """Create an organization; its creator becomes its owner.

    An empty ``slug`` is made from the name (``华东经销商`` → ``huadong-jingxiaoshang``, see
    accounts/slugs.py), with ``-2``, ``-3``… when taken or reserved; a ``slug`` that is given
    is used as it is or refused.
    """
    name, slug = (name or "").strip(), (slug or "").strip().lower()
    derived = not slug
    if derived:
        Organization(name=name).full_clean(exclude=["slug"])  # the name, before reading it
        slug = free_slug(slug_from_name(name))
    elif slug in RESERVED_SLUGS:
        raise ValidationError(
            {"slug": _("“%(slug)s” is reserved; choose another address.") % {"slug": slug}}
        )
    organization = Organization(name=name, slug=slug)
    organization.full_clean(validate_unique=False)  # length and characters
    taken = _("An organization already exists at this address; choose another.")
    if not derived and Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": taken})
    for attempt in range(3):
        try:
            with transaction.atomic():
                organization.save()
            break
        except IntegrityError as exc:  # a concurrent create took the slug after the check
            if not derived or attempt == 2:
                raise ValidationError({"slug": taken}) from exc
            organization.pk = None
            organization.slug = slug = free_slug(slug_from_name(name))
    membership = Membership.objects.create(user=user, organization=organization, role=Role.OWNER)
    record_event(
        organization=organization,
        action="org.created",
        actor=user,
        target=Target.of(organization),
        meta=meta,
        detail={"slug": slug},
    )
    record_event(
        organization=organization,
        action="member.added",
        actor=user,
        target=Target.of(membership, user.email),
        meta=meta,
        detail={"role": Role.OWNER},
    )
    return organization


@transaction.atomic
def organization_rename(
    *, membership: Membership, name: str, meta: RequestMeta = SYSTEM
) -> Organization:
    require(membership, "org.update")
    organization = Organization.objects.select_for_update().get(pk=membership.organization_id)
    old = organization.name
    organization.name = (name or "").strip()
    organization.full_clean(exclude=["slug"])
    organization.save(update_fields=["name"])
    record_event(
        organization=organization,
        action="org.renamed",
        actor=membership.user,
        target=Target.of(organization),
        meta=meta,
        detail={"from": old, "to": organization.name},
    )
    return organization


# --- invitations -----------------------------------------------------------------------------


def _check_assignable(membership: Membership, role: str) -> None:
    if ROLE_RANK[role] > ROLE_RANK[membership.role]:
        raise PermissionDenied(
            _("You cannot grant the %(role)s role: it is above your own (%(own)s).")
            % {"role": Role(role).label, "own": Role(membership.role).label}
        )


@transaction.atomic
def invitation_create(
    *, membership: Membership, email: str, role: str, meta: RequestMeta = SYSTEM
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``; returns the invitation and its one-time token.

    Only the hash of the token is stored; the link is e-mailed and shown to the inviter once.
    A newer invitation to the same address replaces a pending older one.
    """
    require(membership, "member.invite")
    email = normalize_email(email)
    _validate_role(role)
    _check_assignable(membership, role)
    organization = membership.organization
    probe = Invitation(organization=organization, email=email, role=role, expires_at=timezone.now())
    probe.full_clean(exclude=["token_hash", "expires_at", "organization"])
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise ValidationError(
            {
                "email": _("%(email)s is already a member of %(organization)s.")
                % {"email": email, "organization": organization.name}
            }
        )
    now = timezone.now()
    Invitation.objects.filter(
        organization=organization, email=email, accepted_at=None, revoked_at=None
    ).update(revoked_at=now)
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=_hash_secret(raw),
        invited_by=membership.user,
        expires_at=now + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    record_event(
        organization=organization,
        action="invitation.created",
        actor=membership.user,
        target=Target.of(invitation, email),
        meta=meta,
        detail={"role": role, "expires_at": invitation.expires_at.isoformat()},
    )
    link = links.absolute(reverse("accounts:invitation", args=[raw]))
    inviter = membership.user
    transaction.on_commit(
        lambda: _send_invitation_email(invitation=invitation, inviter=inviter, link=link),
        robust=True,  # a mail that cannot be written or sent never fails the invitation
    )
    return invitation, raw


def _send_invitation_email(*, invitation: Invitation, inviter: User, link: str) -> None:
    """The link by e-mail, written in the language and time zone of the person it goes to:
    their own when they already have an account and chose them, else the inviter's."""
    reader = User.objects.filter(email=invitation.email).first()
    language = reader.language if reader and valid_language(reader.language) else None
    zone = zone_of(reader) if reader and valid_time_zone(reader.time_zone) else zone_of(inviter)
    with translation.override(language or language_of(inviter)), timezone.override(zone):
        organization = invitation.organization.name
        subject = _("You are invited to %(organization)s on HeyGem Studio") % {
            "organization": organization
        }
        body = render_to_string(
            "emails/invitation.txt",
            {
                "inviter": inviter.display_name,
                "organization": organization,
                "role": invitation.get_role_display(),
                "link": link,
                "expires": timezone.localtime(invitation.expires_at).strftime("%Y-%m-%d %H:%M"),
                "zone": zone_label(zone, invitation.expires_at),
            },
        )
    send_mail(subject, body, None, [invitation.email], fail_silently=True)


def invitation_by_token(raw: str) -> Invitation:
    """The invitation behind a link, or a ValidationError a person can understand."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=_hash_secret(raw or ""))
        .first()
    )
    if invitation is None:
        raise ValidationError(_("This invitation link is not valid. Ask for a new invitation."))
    return invitation


def _check_inviter_still_may_grant(invitation: Invitation) -> None:
    """An invitation carries its inviter's authority: it is good only while they are still a
    member whose role is at least the one it grants (demoting or removing them also withdraws
    it; this also covers rows from before that rule)."""
    inviter = (
        Membership.objects.filter(
            organization=invitation.organization_id, user=invitation.invited_by_id
        ).first()
        if invitation.invited_by_id
        else None
    )
    if inviter is None or ROLE_RANK[inviter.role] < ROLE_RANK[invitation.role]:
        raise ValidationError(
            _(
                "This invitation can no longer be used: the person who sent it may no longer "
                "grant the %(role)s role in %(organization)s. Ask an admin there for a new "
                "invitation."
            )
            % {"role": Role(invitation.role).label, "organization": invitation.organization.name}
        )


def _withdraw_invitations_of(
    target: Membership, *, above: str | None, actor: Membership, meta: RequestMeta
) -> int:
    """Withdraw the pending invitations ``target`` sent in their organization: those granting
    a role above ``above`` (their new role), or all of them (``above=None``, removed)."""
    pending = Invitation.objects.select_for_update().filter(
        organization=target.organization_id,
        invited_by=target.user_id,
        accepted_at=None,
        revoked_at=None,
        expires_at__gt=timezone.now(),
    )
    if above is not None:
        pending = pending.filter(
            role__in=[r for r, rank in ROLE_RANK.items() if rank > ROLE_RANK[above]]
        )
    withdrawn = list(pending)
    now = timezone.now()
    for invitation in withdrawn:
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
        record_event(
            organization=actor.organization,
            action="invitation.revoked",
            actor=actor.user,
            target=Target.of(invitation, invitation.email),
            meta=meta,
            detail={
                "role": invitation.role,
                "reason": "inviter removed" if above is None else f"inviter now {above}",
                "inviter": target.user.email,
            },
        )
    return len(withdrawn)


def invitation_check_open(invitation: Invitation) -> None:
    status = invitation.status
    if status == "accepted":
        raise ValidationError(_("This invitation has already been used. Log in instead."))
    if status == "revoked":
        raise ValidationError(_("This invitation was withdrawn. Ask an admin for a new one."))
    if status == "expired":
        raise ValidationError(_("This invitation has expired. Ask an admin for a new one."))
    _check_inviter_still_may_grant(invitation)


@transaction.atomic
def invitation_accept(*, raw_token: str, user: User, meta: RequestMeta = SYSTEM) -> Membership:
    """Accept an invitation as an existing, logged-in user whose e-mail it names."""
    invitation = invitation_by_token(raw_token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitation_check_open(invitation)
    if normalize_email(user.email) != invitation.email:
        raise ValidationError(
            _(
                "This invitation is for %(invited)s, but you are logged in as %(email)s. "
                "Log out and open the link again."
            )
            % {"invited": invitation.email, "email": user.email}
        )
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise ValidationError(
            _("You are already a member of %(organization)s.")
            % {"organization": invitation.organization.name}
        )
    membership = Membership.objects.create(
        user=user, organization=invitation.organization, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_event(
        organization=invitation.organization,
        action="invitation.accepted",
        actor=user,
        target=Target.of(membership, user.email),
        meta=meta,
        detail={"role": invitation.role, "invitation": invitation.pk},
    )
    return membership


@transaction.atomic
def invitation_accept_new_user(
    *, raw_token: str, full_name: str, password: str, meta: RequestMeta = SYSTEM
) -> Membership:
    """Create the account an invitation names, then accept the invitation with it."""
    invitation = invitation_by_token(raw_token)
    invitation_check_open(invitation)
    if User.objects.filter(email=invitation.email).exists():
        raise ValidationError(
            _("An account for %(email)s already exists: log in, then open the link.")
            % {"email": invitation.email}
        )
    user = User(email=invitation.email, full_name=(full_name or "").strip())
    user.full_clean(exclude=["password"])
    # Every validator, "too similar to the e-mail" included: it needs the user it protects.
    password_validation.validate_password(password, user=user)
    user.set_password(password)
    user.save()
    return invitation_accept(raw_token=raw_token, user=user, meta=meta)


@transaction.atomic
def invitation_revoke(
    *, membership: Membership, invitation: Invitation, meta: RequestMeta = SYSTEM
) -> Invitation:
    require(membership, "invitation.revoke")
    invitation = Invitation.objects.select_for_update().get(
        pk=invitation.pk, organization=membership.organization_id
    )
    refusals = {
        "accepted": _("This invitation has already been used."),
        "revoked": _("This invitation was already withdrawn."),
        "expired": _("This invitation has already expired."),
    }
    if invitation.status in refusals:
        raise ValidationError(refusals[invitation.status])
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_event(
        organization=membership.organization,
        action="invitation.revoked",
        actor=membership.user,
        target=Target.of(invitation, invitation.email),
        meta=meta,
    )
    return invitation


# --- memberships -----------------------------------------------------------------------------


def _lock_memberships(organization_id: int) -> None:
    # Locking the organization row serialises role changes, so two admins cannot demote the
    # last two owners at the same moment.
    Organization.objects.select_for_update().only("pk").get(pk=organization_id)


def _check_can_manage(acting: Membership, target: Membership) -> None:
    if ROLE_RANK[target.role] > ROLE_RANK[acting.role]:
        raise PermissionDenied(
            _("%(email)s is %(role)s, above your role (%(own)s).")
            % {
                "email": target.user.email,
                "role": Role(target.role).label,
                "own": Role(acting.role).label,
            }
        )


def _owner_count(organization_id: int) -> int:
    return Membership.objects.filter(organization_id=organization_id, role=Role.OWNER).count()


@transaction.atomic
def membership_change_role(
    *, membership: Membership, target: Membership, role: str, meta: RequestMeta = SYSTEM
) -> Membership:
    """Change ``target``'s role: never above the actor's own, never leaving no owner."""
    require(membership, "member.change_role")
    _validate_role(role)
    _lock_memberships(membership.organization_id)
    target = Membership.objects.select_related("user").get(
        pk=target.pk, organization=membership.organization_id
    )
    _check_can_manage(membership, target)
    _check_assignable(membership, role)
    if target.role == role:
        raise ValidationError(
            _("%(email)s is already %(role)s.")
            % {"email": target.user.email, "role": Role(role).label}
        )
    if target.role == Role.OWNER and _owner_count(target.organization_id) == 1:
        raise ValidationError(
            _("This is the last owner: make another member owner first, then change this role.")
        )
    old = target.role
    target.role = role
    target.save(update_fields=["role"])
    record_event(
        organization=membership.organization,
        action="member.role_changed",
        actor=membership.user,
        target=Target.of(target, target.user.email),
        meta=meta,
        detail={"from": old, "to": role},
    )
    _withdraw_invitations_of(target, above=role, actor=membership, meta=meta)
    return target


@transaction.atomic
def membership_remove(
    *, membership: Membership, target: Membership, meta: RequestMeta = SYSTEM
) -> None:
    """Remove ``target`` from the organization and revoke their API tokens there."""
    require(membership, "member.remove")
    _lock_memberships(membership.organization_id)
    target = Membership.objects.select_related("user").get(
        pk=target.pk, organization=membership.organization_id
    )
    _check_can_manage(membership, target)
    if target.role == Role.OWNER and _owner_count(target.organization_id) == 1:
        raise ValidationError(_("This is the last owner and cannot be removed."))
    revoked = ApiToken.objects.filter(
        organization=target.organization_id, user=target.user_id, revoked_at=None
    ).update(revoked_at=timezone.now())
    record_event(
        organization=membership.organization,
        action="member.removed",
        actor=membership.user,
        target=Target.of(target, target.user.email),
        meta=meta,
        detail={"role": target.role, "tokens_revoked": revoked},
    )
    _withdraw_invitations_of(target, above=None, actor=membership, meta=meta)
    target.delete()


# --- API tokens ------------------------------------------------------------------------------


@transaction.atomic
def api_token_create(
    *,
    membership: Membership,
    name: str,
    expires_in_days: int | None,
    meta: RequestMeta = SYSTEM,
) -> tuple[ApiToken, str]:
    """Create a token for the acting member; returns it and the secret, shown only once."""
    require(membership, "token.create")
    if expires_in_days is not None and not 1 <= expires_in_days <= settings.API_TOKEN_MAX_DAYS:
        raise ValidationError(
            {
                "expires_in_days": _("Choose between 1 and %(max)s days.")
                % {"max": settings.API_TOKEN_MAX_DAYS}
            }
        )
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        organization=membership.organization,
        user=membership.user,
        name=(name or "").strip(),
        prefix=prefix,
        token_hash=_hash_secret(raw),
        expires_at=(timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None),
    )
    token.full_clean()
    token.save()
    record_event(
        organization=membership.organization,
        action="token.created",
        actor=membership.user,
        target=Target.of(token),
        meta=meta,
        detail={"expires_at": token.expires_at.isoformat() if token.expires_at else None},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(
    *, membership: Membership, token: ApiToken, meta: RequestMeta = SYSTEM
) -> ApiToken:
    """Revoke a token: your own with token.revoke, anyone's with token.revoke_any."""
    token = ApiToken.objects.select_for_update().get(
        pk=token.pk, organization=membership.organization_id
    )
    require(
        membership, "token.revoke" if token.user_id == membership.user_id else "token.revoke_any"
    )
    if token.revoked_at:
        raise ValidationError(_("This token is already revoked."))
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record_event(
        organization=membership.organization,
        action="token.revoked",
        actor=membership.user,
        target=Target.of(token),
        meta=meta,
        detail={"owner": token.user.email},
    )
    return token


def api_token_authenticate(raw: str) -> tuple[ApiToken, Membership] | None:
    """The active token and its owner's current membership, or None.

    A token grants exactly its owner's current role: a removed member's tokens stop working
    at once, a demoted member's tokens are demoted with them.
    """
    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.select_related("user", "organization").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.token_hash, _hash_secret(raw)):
        return None
    now = timezone.now()
    if (
        token.revoked_at
        or (token.expires_at and token.expires_at <= now)
        or not token.user.is_active
    ):
        return None
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(user=token.user_id, organization=token.organization_id)
        .first()
    )
    if membership is None:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token, membership


# --- notifications ---------------------------------------------------------------------------


def notify(
    *,
    user: User,
    organization: Organization,
    kind: str,
    message: str | Promise,
    link: str = "",
    level: str = "info",
) -> None:
    """Leave an in-app message for ``user`` in ``organization``; when they asked for it, an
    e-mail too, sent once the surrounding transaction commits (a mail failure is logged and
    never undoes or breaks the work that caused the message).

    The message is stored as text, so it is written in ``user``'s language: a lazy one
    (``gettext_lazy``) is translated here; callers that fill in values build it inside
    ``translation.override(language_of(user))``."""
    from accounts.models import Notification
    from accounts.notification_emails import email_after_commit

    with translation.override(language_of(user)):
        text = str(message)
    notification = Notification.objects.create(
        user=user,
        organization=organization,
        kind=kind,
        message=text[:500],
        link=link[:300],
        level=level,
    )
    if user.email_notifications and user.is_active and user.email:
        email_after_commit(notification)


def notification_preferences_update(*, user: User, email_notifications: bool) -> User:
    """Switch the e-mail copies of ``user``'s notifications on or off (all organizations)."""
    User.objects.filter(pk=user.pk).update(email_notifications=email_notifications)
    user.email_notifications = email_notifications
    return user


def notifications_mark_read(*, membership: Membership) -> int:
    from accounts.models import Notification

    return Notification.objects.filter(
        user=membership.user_id, organization=membership.organization_id, read_at=None
    ).update(read_at=timezone.now())


def profile_update(*, user: User, language: str, time_zone: str) -> User:
    """Save ``user``'s language ("" follows the browser) and time zone; bad values are refused
    with a message and nothing is saved."""
    errors: dict[str, list[str]] = {}
    if language and not valid_language(language):
        errors["language"] = [_("Choose one of the languages offered.")]
    zone_problem = time_zone_error(time_zone)
    if zone_problem:
        errors["time_zone"] = [zone_problem]
    if errors:
        raise ValidationError(errors)
    User.objects.filter(pk=user.pk).update(language=language, time_zone=time_zone)
    user.language, user.time_zone = language, time_zone
    return user


def language_choose(*, user: User, language: str) -> User:
    """The language switch, for a signed-in person: saved as their choice."""
    if not valid_language(language):
        raise ValidationError(_("Choose one of the languages offered."))
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language
    return user


def time_zone_preset(*, user: User, browser_zone: str) -> bool:
    """On a login: take the browser's zone when the person has none yet. True when saved."""
    if user.time_zone or not valid_time_zone(browser_zone):
        return False
    updated = User.objects.filter(pk=user.pk, time_zone="").update(time_zone=browser_zone)
    if updated:
        user.time_zone = browser_zone
    return bool(updated)
