from django import template

from accounts.permissions import role_allows

register = template.Library()


@register.filter
def can(membership, action: str) -> bool:
    """``{% if membership|can:"member.invite" %}`` — reads the one permission table."""
    return membership is not None and role_allows(membership.role, action)
