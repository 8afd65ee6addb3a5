"""A person's language and time zone: which one a request speaks, the switch, the profile.

The language of a request: the person's saved choice (``User.language``), else the cookie the
switch sets (signed-out pages, or a person who has not chosen), else the browser's
``Accept-Language``, else English. The API asks the same of the token's owner when the call
sends no ``Accept-Language`` (``activate_for_api``).

The time zone: the person's ``User.time_zone``, preset from the browser (``Intl``) on the first
login and changeable on the profile page; ``settings.TIME_ZONE`` (UTC) until then. Storage stays
UTC; pages, e-mails and CSV files show times in the zone and say which.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

LANGUAGE_CODES = frozenset(code for code, _name in settings.LANGUAGES)


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name this Python knows, sorted (``Asia/Shanghai``, ``UTC`` …)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_time_zone(name: str) -> bool:
    return bool(name) and name in time_zone_names()


def valid_language(code: str) -> bool:
    return code in LANGUAGE_CODES


def zone_of(user: Any) -> zoneinfo.ZoneInfo:
    """The zone a person sees times in (theirs, else the installation's)."""
    name = getattr(user, "time_zone", "") or ""
    if valid_time_zone(name):
        return zoneinfo.ZoneInfo(name)
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def language_of(user: Any) -> str:
    """The language to write to a person in (e-mails): theirs, else the installation's."""
    code = getattr(user, "language", "") or ""
    return code if valid_language(code) else settings.LANGUAGE_CODE


def zone_label(zone: dt.tzinfo | None = None, when: dt.datetime | None = None) -> str:
    """``Asia/Shanghai (UTC+08:00)``: the zone's name and its offset at ``when`` (now)."""
    zone = zone or timezone.get_current_timezone()
    when = when or timezone.now()
    offset = when.astimezone(zone).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{zone} (UTC{sign}{hours:02d}:{mins:02d})"


def local_iso(value: dt.datetime, zone: dt.tzinfo) -> str:
    """An aware time as ISO 8601 in ``zone`` with its offset: ``2026-12-07T22:36:00+08:00``.
    For CSV files: the offset labels the zone and spreadsheets parse it."""
    return value.astimezone(zone).replace(microsecond=0).isoformat()


class UserPreferencesMiddleware:
    """Activates the request's language and time zone (after the authentication middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        language = user.language if signed_in and valid_language(user.language) else None
        if language is None:
            language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        if signed_in and valid_time_zone(user.time_zone):
            timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
        else:
            timezone.deactivate()
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        translation.deactivate()
        return response


def activate_for_api(request: Any) -> None:
    """After the API has authenticated a call: the token owner's language when the call did
    not ask for one (``Accept-Language``), so error messages are in the owner's language."""
    if request.META.get("HTTP_ACCEPT_LANGUAGE"):
        return
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and valid_language(user.language):
        translation.activate(user.language)
        # DRF's request wraps Django's, whose LANGUAGE_CODE the middleware answers with
        # (Content-Language).
        for each in (request, getattr(request, "_request", None)):
            if each is not None:
                each.LANGUAGE_CODE = user.language


def time_zone_error(name: str) -> str | None:
    """Why ``name`` cannot be a person's zone, or None when it can."""
    if not name:
        return _("Choose a time zone.")
    if not valid_time_zone(name):
        return _("“%(zone)s” is not a time zone this server knows (e.g. Asia/Shanghai).") % {
            "zone": name[:64]
        }
    return None
