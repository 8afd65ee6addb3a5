"""Per-person budgets for asking for bundles and downloading them, shared by the pages and the
API (counted by ``core.throttles`` in the shared cache)."""

from __future__ import annotations

from django.http import HttpRequest

from core import throttles

#: scope -> (setting with the rate, what a person is told they did too often)
BUDGETS = {
    "export-request": ("EXPORT_REQUEST_RATE", "asked for bundles"),
    "export-download": ("EXPORT_DOWNLOAD_RATE", "downloaded bundles"),
}


def wait_seconds(request: HttpRequest, scope: str) -> int | None:
    """Count this request against ``scope``; None when allowed, else the seconds to wait."""
    setting, _ = BUDGETS[scope]
    return throttles.wait_seconds(request, scope=scope, setting=setting)


def message(scope: str, wait: int) -> str:
    _, did = BUDGETS[scope]
    return f"You have {did} too often for now. Try again in {wait} s."
