"""Request budgets in the shared cache, per person, token or client address.

The counting is DRF's sliding window (SimpleRateThrottle) in the shared cache — Redis on the
scale-out stack, the database cache on the embedded one — so every web process and host sees
the same budget. A rate comes from a setting at call time ("30/hour"; empty turns it off).
"""

from __future__ import annotations

import math
from typing import ClassVar

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from core.http import client_ip


class SettingRateThrottle(SimpleRateThrottle):
    """A rate read from the setting named ``setting`` at request time (empty: no limit)."""

    setting: ClassVar[str]

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting, None) or None


class IPRateThrottle(SettingRateThrottle):
    """API requests per client address (API_THROTTLE_IP), counted before authentication so
    that guessing tokens is throttled too."""

    scope = "ip"
    setting = "API_THROTTLE_IP"

    def get_cache_key(self, request, view):
        ip = client_ip(request) or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ip}


class ActionThrottle(SettingRateThrottle):
    """A per-person budget for one costly action (per address when nobody is logged in)."""

    cache_format = "heygem-throttle:%(scope)s:%(ident)s"

    def __init__(self, scope: str, setting: str) -> None:
        self.scope, self.setting = scope, setting
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = f"u{user.pk}" if user is not None and user.is_authenticated else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def wait_seconds(request: HttpRequest, *, scope: str, setting: str) -> int | None:
    """Count this request against the budget ``scope`` (its rate in ``setting``); None when
    allowed, else the seconds to wait."""
    throttle = ActionThrottle(scope, setting)
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))
