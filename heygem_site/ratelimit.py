"""Per-user budgets for costly actions (asking for bundles, downloading them), shared by the
pages and the API.

The counting is DRF's sliding window (SimpleRateThrottle) in the shared cache — Redis on the
scale-out stack, the database cache on the embedded one — so every web process and host sees
the same budget. The rate comes from a setting at call time ("30/hour"; empty turns it off).
"""

from __future__ import annotations

import math
from typing import ClassVar

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from accounts.audit import client_ip


class SettingRateThrottle(SimpleRateThrottle):
    """A rate read from the setting named ``setting`` at request time (empty: no limit)."""

    setting: ClassVar[str]

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting, None) or None


class ActionThrottle(SettingRateThrottle):
    cache_format = "heygem-throttle:%(scope)s:%(ident)s"

    def __init__(self, scope: str, setting: str) -> None:
        self.scope, self.setting = scope, setting
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = f"u{user.pk}" if user is not None and user.is_authenticated else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


#: scope -> (setting, what a person is told they did too often)
ACTIONS = {
    "export-request": ("EXPORT_REQUEST_RATE", "asked for bundles"),
    "export-download": ("EXPORT_DOWNLOAD_RATE", "downloaded bundles"),
}


def wait_seconds(request: HttpRequest, scope: str) -> int | None:
    """Count this request against ``scope``; None when allowed, else the seconds to wait."""
    setting, _ = ACTIONS[scope]
    throttle = ActionThrottle(scope, setting)
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def message(scope: str, wait: int) -> str:
    _, did = ACTIONS[scope]
    return f"You have {did} too often for now. Try again in {wait} s."
