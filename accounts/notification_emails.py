"""E-mail copies of in-app notifications, for the users who switched them on.

They go through Django's mail settings (console backend by default, SMTP through the
EMAIL_* variables) after the transaction that created the notification commits. They are
sent by whichever process created the notification — usually a queue worker — and a mail
failure is logged, never raised: the render or export that caused it is already saved.

Each is written in its recipient's language, with times in their zone (named in the mail),
whatever language and zone the process that sends it has active.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Notification
from accounts.preferences import language_of, zone_label, zone_of
from core import links

logger = logging.getLogger(__name__)

TITLES = {
    "batch.completed": gettext_lazy("Batch finished"),
    "export.ready": gettext_lazy("Bundle ready"),
    "export.failed": gettext_lazy("Bundle failed"),
}


def notification_email(notification: Notification) -> EmailMultiAlternatives:
    """The plain-text e-mail (with an HTML alternative) for one notification, in the
    recipient's language and time zone."""
    user = notification.user
    zone = zone_of(user)
    with translation.override(language_of(user)), timezone.override(zone):
        return _notification_email(notification, zone)


def _notification_email(notification: Notification, zone: dt.tzinfo) -> EmailMultiAlternatives:
    organization = notification.organization
    title = str(TITLES.get(notification.kind, _("Notification")))
    context = {
        "notification": notification,
        "title": title,
        "user": notification.user,
        "organization": organization,
        "message": notification.message,
        "link": links.absolute(notification.link),
        "preferences_url": links.absolute(links.notifications_page(organization.slug)),
        "site_url": settings.SITE_URL.rstrip("/"),
        "when": timezone.localtime(notification.created_at).strftime("%Y-%m-%d %H:%M"),
        "zone": zone_label(zone, notification.created_at),
    }
    # One line, whatever the message holds: headers cannot carry line breaks.
    subject = _("[%(organization)s] %(title)s: %(message)s") % {
        "organization": organization.name,
        "title": title,
        "message": notification.message,
    }
    subject = " ".join(subject.split())
    if len(subject) > 150:
        subject = subject[:149] + "…"
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/notification.txt", context),
        to=[notification.user.email],
    )
    email.attach_alternative(render_to_string("emails/notification.html", context), "text/html")
    return email


def send_notification_email(notification: Notification) -> bool:
    """Send the e-mail now. Returns whether it went out; failures are logged, not raised."""
    try:
        sent = notification_email(notification).send()
    except Exception:
        logger.exception(
            "could not e-mail notification %s (%s) to user %s",
            notification.pk,
            notification.kind,
            notification.user_id,
        )
        return False
    logger.info(
        "e-mailed notification %s (%s) to user %s",
        notification.pk,
        notification.kind,
        notification.user_id,
    )
    return bool(sent)


def email_after_commit(notification: Notification) -> None:
    """Send the e-mail once the current transaction commits (at once outside of one)."""
    transaction.on_commit(partial(send_notification_email, notification), robust=True)
