"""Roles and the one permission table that pages, templates and the API all read.

Roles are ordered data: a role may do everything a lower role may. ``PERMISSIONS`` maps each
action to the lowest role allowed to perform it; adding an action here adds it to the
permission-matrix test automatically.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer")
    MEMBER = "member", _("Member")
    ADMIN = "admin", _("Admin")
    OWNER = "owner", _("Owner")


ROLE_RANK: dict[str, int] = {
    Role.VIEWER: 10,
    Role.MEMBER: 20,
    Role.ADMIN: 30,
    Role.OWNER: 40,
}

# action -> lowest role allowed.
PERMISSIONS: dict[str, Role] = {
    "org.view": Role.VIEWER,
    "org.update": Role.OWNER,
    "member.list": Role.VIEWER,
    "member.invite": Role.ADMIN,
    "member.change_role": Role.ADMIN,
    "member.remove": Role.ADMIN,
    "invitation.revoke": Role.ADMIN,
    "token.list": Role.MEMBER,
    "token.create": Role.MEMBER,
    "token.revoke": Role.MEMBER,
    "token.revoke_any": Role.ADMIN,
    "audit.view": Role.ADMIN,
    "audit.export": Role.ADMIN,
    "project.view": Role.VIEWER,
    "project.create": Role.MEMBER,
    "asset.upload": Role.MEMBER,
    "asset.rename": Role.MEMBER,
    "asset.delete": Role.MEMBER,  # what they uploaded themselves
    "asset.delete_any": Role.ADMIN,
    "batch.submit": Role.MEMBER,
    "batch.cancel": Role.MEMBER,
    "job.cancel": Role.MEMBER,
    "job.retry": Role.MEMBER,
    "output.download": Role.VIEWER,
    "export.view": Role.VIEWER,
    "export.request": Role.MEMBER,
    "export.download": Role.MEMBER,
    "webhook.manage": Role.ADMIN,
}


class UnknownAction(KeyError):
    pass


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[minimum]


def role_allows(role: str, action: str) -> bool:
    """True when ``role`` may perform ``action``; an unknown action is a programming error."""
    try:
        minimum = PERMISSIONS[action]
    except KeyError as exc:
        raise UnknownAction(f"{action!r} is not in accounts.permissions.PERMISSIONS") from exc
    return role_at_least(role, minimum)


def roles_assignable_by(role: str) -> list[Role]:
    """The roles a member with ``role`` may hand out: never above their own."""
    return [r for r in Role if ROLE_RANK[r] <= ROLE_RANK[role]]
