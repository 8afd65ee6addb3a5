"""Webhooks: admins register endpoints; finished work is announced to them, signed, retried.

Writes and business rules, like the other services modules:

- ``webhook_endpoint_create / _update / _delete / _rotate_secret`` — admin actions, audited in
  the same transaction. A URL must be http(s) and resolve only to public addresses (loopback,
  private, link-local, reserved and multicast ones are refused, and the refusal names the
  setting) unless ``settings.WEBHOOK_ALLOW_PRIVATE``, which also lets a host that DNS cannot
  answer for yet be saved (an intranet name; its deliveries record the error and retry).
- ``webhook_send_test`` — the "Send test event" button: one signed ``ping`` delivery to one
  endpoint, recorded and sent like the others but once, without retries; audited, and at most
  one per endpoint every ``TEST_EVENT_INTERVAL``.
- ``webhook_emit(organization_id=, event=, payload=)`` — called by the services that finish
  work; records one ``WebhookDelivery`` per subscribed endpoint and queues it after commit.
  It never raises: a webhook problem must not undo a finished render or bundle.
- ``webhook_deliver(delivery_id=)`` — one attempt, run on the queue. The body is the same
  bytes on every attempt; each attempt is signed afresh::

      X-HeyGem-Timestamp: 1767225600
      X-HeyGem-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

  A 2xx answer delivers it. Anything else (other status, redirect, timeout, refused address)
  is recorded and retried with exponential backoff — a one-off django-q2 ``Schedule`` at the
  due time, plus a sweeper every few minutes for anything a lost task left behind — until
  ``settings.WEBHOOK_MAX_ATTEMPTS``. The connection goes to the address that was checked, so
  a DNS answer that changes between check and connect cannot point it at a private host.

This module must not import jobs or exports (imports flow exports -> jobs -> accounts).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import math
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership, Organization, WebhookDelivery, WebhookEndpoint
from accounts.services import require
from core import queue

logger = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = tuple(WebhookEndpoint.Event.values)
SECRET_PREFIX = "whsec_"  # noqa: S105  (a public marker, not a secret)
MAX_ENDPOINTS_PER_ORG = 20
SIGNATURE_VERSION = "v1"
SIGNATURE_TOLERANCE_S = 300
RESPONSE_SNIPPET = 300
USER_AGENT = "HeyGem-Webhooks/1"


ALLOW_PRIVATE_SETTING = "WEBHOOK_ALLOW_PRIVATE=true"
PING_EVENT = "ping"  # "Send test event": never subscribed to, sent to one endpoint on request
TEST_EVENT_INTERVAL = timedelta(seconds=10)  # per endpoint: a button, not a load generator


class UnsafeDestination(Exception):
    """The address is not one webhooks may be sent to."""


class UnresolvedHost(UnsafeDestination):
    """The host name has no answer from DNS (now): not known to be public or private."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


# --- signatures ------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={int(timestamp)},{SIGNATURE_VERSION}={sign(secret, timestamp, body)}"


def verify_signature(
    *,
    secret: str,
    body: bytes,
    header: str,
    tolerance: int = SIGNATURE_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``header`` (``t=<ts>,v1=<hex>``) signs ``body`` with ``secret`` and the
    timestamp is within ``tolerance`` seconds of ``now`` (replays are refused)."""
    fields: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for v in fields.get(SIGNATURE_VERSION, []))


def body_bytes(delivery: WebhookDelivery) -> bytes:
    """The exact bytes sent: canonical JSON, the same on every attempt."""
    return json.dumps(
        delivery.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


# --- destinations ----------------------------------------------------------------------------


# IPv6 ranges that carry an IPv4 address or reach one through a translator: an address in
# them is only as public as the IPv4 address inside (or, for the deprecated and local ones,
# never). Python's is_global does not look inside them.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d, deprecated (RFC 4291)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated site-local (RFC 3879)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: mapped, NAT64, 6to4, Teredo."""
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.teredo:
        found.extend(ip.teredo)
    return [v4 for v4 in found if v4 is not None]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _IPV4_COMPATIBLE or ip in _NAT64_LOCAL or ip in _SITE_LOCAL:
            return False
        inside = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:
            return all(v4.is_global and not v4.is_multicast for v4 in inside)
        if inside and not all(v4.is_global and not v4.is_multicast for v4 in inside):
            return False
    return ip.is_global and not ip.is_multicast


def resolve_destination(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to; UnsafeDestination when it does not resolve or
    any of them is not public (and private ones are not allowed by settings)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(
            _("The host %(host)s could not be resolved.") % {"host": host}, host
        ) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnresolvedHost(_("The host %(host)s has no address.") % {"host": host}, host)
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not _is_public(address):
                raise UnsafeDestination(
                    _(
                        "%(host)s resolves to %(address)s, a loopback, private, link-local or "
                        "reserved address (or one that embeds such an IPv4 address); webhooks "
                        "are only sent to public addresses. To send them to an intranet "
                        "receiver, an operator sets %(setting)s on this server."
                    )
                    % {"host": host, "address": address, "setting": ALLOW_PRIVATE_SETTING}
                )
    return addresses


def validate_webhook_url(url: str) -> str:
    """A clean http(s) URL whose host resolves to public addresses, or ValidationError.

    With ``settings.WEBHOOK_ALLOW_PRIVATE`` any address is accepted, and so is a host DNS does
    not answer for yet (an intranet name this server cannot look up at the moment): its
    deliveries record the failure and are retried."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ValidationError(
            {
                "url": _("Enter a full http:// or https:// address, e.g. %(example)s.")
                % {"example": "https://example.com/hook"}
            }
        ) from exc
    if len(url) > 500:
        raise ValidationError(
            {"url": _("Use an address of at most %(max)s characters.") % {"max": 500}}
        )
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(
            {"url": _("Leave the user name and password out of the address: the signature "
                      "proves the request comes from us.")}
        )  # fmt: skip
    if parts.fragment:
        raise ValidationError({"url": _("Leave out the #fragment: it is never sent.")})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError({"url": _("The port number is not valid.")}) from exc
    try:
        resolve_destination(parts.hostname or "", port)
    except UnresolvedHost as exc:
        if not settings.WEBHOOK_ALLOW_PRIVATE:
            raise ValidationError(
                {
                    "url": _(
                        "The host %(host)s could not be resolved, so it cannot be checked to "
                        "be public. Check the address; for an intranet name this server cannot "
                        "look up, an operator sets %(setting)s to allow private addresses."
                    )
                    % {"host": exc.host, "setting": ALLOW_PRIVATE_SETTING}
                }
            ) from exc
        # Allowed: deliveries record the DNS error and retry; a test event shows it at once.
        logger.info("webhook host %s does not resolve now; saved (private allowed)", exc.host)
    except UnsafeDestination as exc:
        raise ValidationError({"url": str(exc)}) from exc
    return url


def _clean_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(str(e) for e in events or ()))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ValidationError(
            {
                "events": _("Unknown event “%(event)s”: choose from %(events)s.")
                % {"event": unknown[0], "events": ", ".join(EVENTS)}
            }
        )
    if not chosen:
        raise ValidationError({"events": _("Choose at least one event.")})
    return [e for e in EVENTS if e in chosen]


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# --- admin actions ---------------------------------------------------------------------------


def _locked_endpoint(membership: Membership, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(
        pk=endpoint.pk, organization=membership.organization_id
    )


@transaction.atomic
def webhook_endpoint_create(
    *,
    membership: Membership,
    url: str,
    events: Iterable[str],
    description: str = "",
    is_active: bool = True,
    meta: RequestMeta = SYSTEM,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown only this once)."""
    require(membership, "webhook.manage")
    events = _clean_events(events)
    url = validate_webhook_url(url)
    organization = membership.organization
    Organization.objects.select_for_update().only("pk").get(pk=organization.pk)
    if WebhookEndpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS_PER_ORG:
        raise ValidationError(
            ngettext(
                "An organization may have at most %(count)d webhook endpoint; remove it first.",
                "An organization may have at most %(count)d webhook endpoints; remove one first.",
                MAX_ENDPOINTS_PER_ORG,
            )
            % {"count": MAX_ENDPOINTS_PER_ORG}
        )
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        description=(description or "").strip()[:200],
        events=events,
        secret=secret,
        is_active=bool(is_active),
        created_by=membership.user,
    )
    endpoint.full_clean()
    endpoint.save()
    record_event(
        organization=organization,
        action="webhook.created",
        actor=membership.user,
        target=Target.of(endpoint, url),
        meta=meta,
        detail={"events": events, "active": endpoint.is_active},
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(
    *,
    membership: Membership,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
    meta: RequestMeta = SYSTEM,
) -> WebhookEndpoint:
    """Change what is given; the secret stays (rotate it with webhook_endpoint_rotate_secret)."""
    require(membership, "webhook.manage")
    endpoint = _locked_endpoint(membership, endpoint)
    changes: dict[str, Any] = {}
    if url is not None and url.strip() != endpoint.url:
        endpoint.url = changes["url"] = validate_webhook_url(url)
    if events is not None:
        cleaned = _clean_events(events)
        if cleaned != endpoint.events:
            endpoint.events = changes["events"] = cleaned
    if description is not None and description.strip()[:200] != endpoint.description:
        endpoint.description = changes["description"] = description.strip()[:200]
    if is_active is not None and bool(is_active) != endpoint.is_active:
        endpoint.is_active = changes["active"] = bool(is_active)
    if changes:
        endpoint.full_clean()
        endpoint.save()
        record_event(
            organization=membership.organization,
            action="webhook.updated",
            actor=membership.user,
            target=Target.of(endpoint, endpoint.url),
            meta=meta,
            detail=changes,
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, membership: Membership, endpoint: WebhookEndpoint, meta: RequestMeta = SYSTEM
) -> tuple[WebhookEndpoint, str]:
    """Replace the signing secret; returns the new one (shown only this once)."""
    require(membership, "webhook.manage")
    endpoint = _locked_endpoint(membership, endpoint)
    endpoint.secret = secret = _new_secret()
    endpoint.save(update_fields=["secret"])
    record_event(
        organization=membership.organization,
        action="webhook.secret_rotated",
        actor=membership.user,
        target=Target.of(endpoint, endpoint.url),
        meta=meta,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(
    *, membership: Membership, endpoint: WebhookEndpoint, meta: RequestMeta = SYSTEM
) -> None:
    """Remove an endpoint with its delivery records; pending retries stop."""
    require(membership, "webhook.manage")
    endpoint = _locked_endpoint(membership, endpoint)
    record_event(
        organization=membership.organization,
        action="webhook.deleted",
        actor=membership.user,
        target=Target.of(endpoint, endpoint.url),
        meta=meta,
        detail={"deliveries": endpoint.deliveries.count()},
    )
    endpoint.delete()


@transaction.atomic
def webhook_send_test(
    *, membership: Membership, endpoint: WebhookEndpoint, meta: RequestMeta = SYSTEM
) -> WebhookDelivery:
    """Queue a signed ``ping`` event to one endpoint, through the same delivery machinery as
    real events, and return its delivery record (listed with the others, so its outcome shows
    there). Sent once, without retries, also to a paused endpoint (to check a receiver before
    resuming); at most one per endpoint every ``TEST_EVENT_INTERVAL``."""
    require(membership, "webhook.manage")
    endpoint = _locked_endpoint(membership, endpoint)
    now = timezone.now()
    last = (
        endpoint.deliveries.filter(event=PING_EVENT, created_at__gt=now - TEST_EVENT_INTERVAL)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is not None:
        wait = max(1, math.ceil((last + TEST_EVENT_INTERVAL - now).total_seconds()))
        raise ValidationError(
            ngettext(
                "A test event was just sent to this webhook; wait %(seconds)d second before "
                "sending another.",
                "A test event was just sent to this webhook; wait %(seconds)d seconds before "
                "sending another.",
                wait,
            )
            % {"seconds": wait},
            code="throttled",
        )
    organization = membership.organization
    payload = {
        "message": "A test event from HeyGem Studio: answer 2xx to acknowledge it.",
        "endpoint": endpoint.pk,
        "requested_by": membership.user.email,
    }
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        organization=organization,
        event=PING_EVENT,
        payload=_envelope(organization.pk, organization.slug, PING_EVENT, payload, now),
        next_attempt_at=now,
    )
    record_event(
        organization=organization,
        action="webhook.tested",
        actor=membership.user,
        target=Target.of(endpoint, endpoint.url),
        meta=meta,
        detail={"delivery": str(delivery.key)},
    )
    queue.enqueue_on_commit(DELIVER_TASK, [delivery.pk], **_deliver_options())
    return delivery


# --- emitting and delivering -----------------------------------------------------------------


def _envelope(
    organization_id: int, slug: str, event: str, payload: dict[str, Any], now
) -> dict[str, Any]:
    """What every event's body holds: its id and type, when, whose, and the event's data."""
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event,
        "created_at": now.isoformat(),
        "organization": {"id": organization_id, "slug": slug},
        "data": json.loads(json.dumps(payload, default=str)),
    }


def webhook_emit(*, organization_id: int, event: str, payload: dict[str, Any]) -> int:
    """Record a delivery of ``event`` for every active endpoint of the organization that
    subscribed to it, and queue them after commit. Returns how many; never raises."""
    if event not in EVENTS:
        raise ValueError(f"{event!r} is not a webhook event")
    try:
        with transaction.atomic():
            endpoints = [
                e
                for e in WebhookEndpoint.objects.filter(
                    organization=organization_id, is_active=True
                ).only("pk", "events")
                if event in e.events
            ]
            if not endpoints:
                return 0
            slug = Organization.objects.values_list("slug", flat=True).get(pk=organization_id)
            now = timezone.now()
            envelope = _envelope(organization_id, slug, event, payload, now)
            ids = [
                WebhookDelivery.objects.create(
                    endpoint_id=endpoint.pk,
                    organization_id=organization_id,
                    event=event,
                    payload=envelope,
                    next_attempt_at=now,
                ).pk
                for endpoint in endpoints
            ]
            queue.enqueue_on_commit(DELIVER_TASK, ids, **_deliver_options())
    except Exception:
        logger.exception("could not queue webhook %s for organization %s", event, organization_id)
        return 0
    return len(ids)


DELIVER_TASK = "accounts.tasks.deliver_webhook"


def _deliver_options() -> dict:
    return {"name": "webhook", "timeout": int(settings.WEBHOOK_TIMEOUT_S) + 60}


def retry_delay(attempt: int) -> timedelta:
    """Backoff after failed attempt number ``attempt`` (1-based): base * 4^(attempt-1),
    at most six hours. With the defaults: 30 s, 2 min, 8 min, 32 min, 2 h 8 min."""
    base = float(getattr(settings, "WEBHOOK_RETRY_BASE_S", 30))
    return timedelta(seconds=min(base * 4 ** (attempt - 1), 6 * 3600))


def _schedule_retry(delivery_id: int, attempt: int, when) -> None:
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"webhook delivery {delivery_id} attempt {attempt + 1}",
        func="accounts.tasks.deliver_webhook",
        args=str(int(delivery_id)),
        kwargs=repr({"q_options": {"timeout": int(settings.WEBHOOK_TIMEOUT_S) + 60}}),
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule with negative repeats deletes itself after it runs
        next_run=when,
    )


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first reachable address of those checked beforehand, whatever
    DNS says now (so an answer that changed since the check cannot redirect us)."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST; returns (status code or None, error text or "")."""
    parts = urlsplit(endpoint.url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        addresses = resolve_destination(parts.hostname or "", port)
    except UnsafeDestination as exc:
        return None, str(exc)
    body = body_bytes(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-HeyGem-Event": delivery.event,
        "X-HeyGem-Delivery": str(delivery.key),
        "X-HeyGem-Timestamp": str(timestamp),
        "X-HeyGem-Signature": signature_header(endpoint.secret, timestamp, body),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_class(
        parts.hostname or "", port, addresses=addresses, timeout=settings.WEBHOOK_TIMEOUT_S
    )
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        snippet = response.read(64 * 1024)[:RESPONSE_SNIPPET].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return response.status, ""
    if 300 <= response.status < 400:
        return response.status, (
            f"HTTP {response.status}: redirects are not followed; register the final address."
        )
    return response.status, f"HTTP {response.status}: {snippet}".strip()


def webhook_deliver(*, delivery_id: int) -> str:
    """Make one attempt at a delivery that is due; returns its status afterwards (or
    "skipped" when it is not due, already final, or another worker holds it)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S + 60)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=lease)
    )
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    attempt = delivery.attempts + 1
    # A test event is sent once, paused endpoint or not: its outcome is what was asked for.
    test = delivery.event == PING_EVENT
    max_attempts = 1 if test else settings.WEBHOOK_MAX_ATTEMPTS
    sending = endpoint.is_active or test
    if sending:
        code, error = _post(endpoint, delivery)
    else:
        code, error = None, "The endpoint is disabled."
    finished = timezone.now()
    fields: dict[str, Any] = {
        "attempts": attempt,
        "last_status_code": code,
        "last_error": error,
        "last_attempt_at": finished,
    }
    if code is not None and 200 <= code < 300:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=finished)
        fields["next_attempt_at"] = None
    elif attempt >= max_attempts or not sending:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        if sending and not test:
            fields["last_error"] = f"{error} — gave up after {attempt} attempts."[:4000]
    else:
        fields["next_attempt_at"] = finished + retry_delay(attempt)
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    if fields.get("status") is None:
        logger.info("webhook delivery %s attempt %s failed: %s", delivery_id, attempt, error)
        _schedule_retry(delivery_id, attempt, fields["next_attempt_at"])
        return WebhookDelivery.Status.PENDING
    return fields["status"]


def webhook_deliver_due(*, grace_s: float = 60) -> int:
    """Queue deliveries that are due and nobody is working on (a lost task, a broker that was
    down); the one-off retry schedules normally get there first. Runs on a schedule."""
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    queue.enqueue(DELIVER_TASK, due, **_deliver_options())
    return len(due)


# Short names the brief and the callers use.
emit = webhook_emit
deliver = webhook_deliver
