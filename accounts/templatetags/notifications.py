"""Template tags of the header's notification badge."""

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def notification_poll_ms() -> int:
    """How often (ms) the badge asks for the unread count: the NOTIFICATION_POLL_MS setting."""
    return max(250, int(settings.NOTIFICATION_POLL_MS))
