"""Checking webhook deliveries in a receiver (standard library only).

HeyGem Studio signs every delivery::

    X-HeyGem-Timestamp: 1767225600
    X-HeyGem-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, b"1767225600." + raw body)>

``verify(secret, headers, body)`` is True when the signature matches and the timestamp is
recent (a replayed old delivery is refused). Hash the raw body bytes, before any JSON parsing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256
    ).hexdigest()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``body`` was signed by HeyGem Studio with ``secret`` in the last
    ``tolerance`` seconds. ``headers`` may be any mapping; names are matched without case."""
    lowered = {k.lower(): v for k, v in headers.items()}
    fields: dict[str, list[str]] = {}
    for item in lowered.get("x-heygem-signature", "").split(","):
        name, _, value = item.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields.get("t", [lowered.get("x-heygem-timestamp", "")])[0])
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, value) for value in fields.get("v1", []))
