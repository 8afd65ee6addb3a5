"""Per-person budgets for asking for bundles and downloading them, shared by the pages and the
API (counted by ``core.throttles`` in the shared cache)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import ngettext_lazy

from core import throttles

#: scope -> (setting with the rate, what a person is told: %(num)d is the seconds to wait)
BUDGETS = {
    "export-request": (
        "EXPORT_REQUEST_RATE",
        ngettext_lazy(
            "You have asked for bundles too often for now. Try again in %(num)d second.",
            "You have asked for bundles too often for now. Try again in %(num)d seconds.",
            "num",
        ),
    ),
    "export-download": (
        "EXPORT_DOWNLOAD_RATE",
        ngettext_lazy(
            "You have downloaded bundles too often for now. Try again in %(num)d second.",
            "You have downloaded bundles too often for now. Try again in %(num)d seconds.",
            "num",
        ),
    ),
}


def wait_seconds(request: HttpRequest, scope: str) -> int | None:
    """Count this request against ``scope``; None when allowed, else the seconds to wait."""
    setting, _ = BUDGETS[scope]
    return throttles.wait_seconds(request, scope=scope, setting=setting)


def message(scope: str, wait: int) -> str:
    """What the person is told, in the active language."""
    _, text = BUDGETS[scope]
    return text % {"num": wait}
