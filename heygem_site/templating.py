"""The Jinja2 environment of the dashboard's pages (``templates/``).

Jinja2 compiles a template to Python code once; Django's template language walks a node tree
and resolves every variable through its lookup rules on every render, which made rendering
most of a list page's time (a page of 50 rows: ~70 % of ~20 ms on the 2-core VM). The pages
read the same as before: the helpers below are the few Django tags and filters they use, with
Django's semantics where they differ from Jinja2's (``default`` takes over any false value,
dates are shown in the current time zone). Variables that do not exist are empty, attributes
of them too (``ChainableUndefined``), as in Django's templates; forms and their widgets still
render with Django's form renderer.

Templates call methods explicitly (``m.get_role_display()``), and write
``{{ csrf_input }}``, ``{{ url('name', arg) }}``, ``{{ url_for('name', arg, pk) }}`` and
``{{ static('css/app.css') }}`` where Django's language has tags.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template import defaultfilters
from django.template.backends.utils import csrf_input
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import SimpleLazyObject
from jinja2 import ChainableUndefined, Environment, select_autoescape
from markupsafe import Markup

from accounts.permissions import role_allows
from accounts.preferences import zone_label
from accounts.urlcache import url_for

_ISO = {
    "Y-m-d": "{0.year:04d}-{0.month:02d}-{0.day:02d}",
    "Y-m-d H:i": "{0.year:04d}-{0.month:02d}-{0.day:02d} {0.hour:02d}:{0.minute:02d}",
    "Y-m-d H:i:s": (
        "{0.year:04d}-{0.month:02d}-{0.day:02d} {0.hour:02d}:{0.minute:02d}:{0.second:02d}"
    ),
}


def _local(value: Any) -> Any:
    """An aware datetime in the current time zone, as Django's templates show it."""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return timezone.localtime(value)
    return value


def _labelled(value: dt.datetime, shown: str) -> Markup:
    """A shown time in a ``<time>`` element: the machine-readable UTC instant and, on hover,
    the zone it is shown in (the page's footer names it too)."""
    utc = value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    zone = timezone.get_current_timezone_name()
    return Markup('<time datetime="%s" title="%s">%s</time>') % (utc, zone, shown)


def isodate(value: Any, fmt: str = "Y-m-d H:i") -> str:
    """Django's ``date`` filter, built directly for the three numeric formats the list pages
    use (``date`` parses its format and consults the locale on every call, ~15 µs)."""
    pattern = _ISO.get(fmt)
    if pattern is None or type(value) is not dt.datetime:
        return date(value, fmt)
    if timezone.is_aware(value):
        return _labelled(value, pattern.format(timezone.localtime(value)))
    return pattern.format(value)


def date(value: Any, fmt: str | None = None) -> str:
    """Django's ``date`` filter, in the current time zone (and labelled with it)."""
    shown = defaultfilters.date(_local(value), fmt)
    if isinstance(value, dt.datetime) and timezone.is_aware(value) and shown:
        return _labelled(value, shown)
    return shown


def current_zone_label() -> str:
    """``Asia/Shanghai (UTC+08:00)``: the zone the page shows its times in."""
    return zone_label()


def languages() -> list[tuple[str, str]]:
    """The languages of the switch: (code, name in its own language)."""
    return list(settings.LANGUAGES)


def default(value: Any, fallback: Any = "") -> Any:
    """Django's ``default``: the fallback for any false value, not only a missing one."""
    return value or fallback


def default_if_none(value: Any, fallback: Any = "") -> Any:
    return fallback if value is None else value


def can(membership: Any, action: str) -> bool:
    """``membership|can("member.invite")`` — reads the one permission table."""
    return bool(membership) and role_allows(membership.role, action)


def url(viewname: str, *args: Any, **kwargs: Any) -> str:
    return reverse(viewname, args=args or None, kwargs=kwargs or None)


def notification_poll_ms() -> int:
    """How often (ms) the badge asks for the unread count: the NOTIFICATION_POLL_MS setting."""
    return max(250, int(settings.NOTIFICATION_POLL_MS))


def csrf(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``csrf_input`` built once per page. Django's Jinja2 backend builds
    it again (a newly masked token, 32 system-random draws) each time a form writes it: a
    members page with a form per row spent a quarter of its time there. Django's own
    language also masks once per page."""
    return {"csrf_input": SimpleLazyObject(partial(csrf_input, request))}


def environment(**options: Any) -> Environment:
    # Django's backend asks for autoescape everywhere; the e-mails' .txt bodies are not HTML.
    options.pop("autoescape", None)
    options["undefined"] = ChainableUndefined
    extensions = [*options.pop("extensions", []), "jinja2.ext.i18n"]
    env = Environment(
        autoescape=select_autoescape(("html",), default=False), extensions=extensions, **options
    )
    # Django's catalogues and active language (``{{ _("Projects") }}``, ``{% trans %}``,
    # ``ngettext``); new-style: placeholders are filled by the call and escaped.
    env.install_gettext_callables(
        translation.gettext,
        translation.ngettext,
        newstyle=True,
        pgettext=translation.pgettext,
        npgettext=translation.npgettext,
    )
    env.globals.update(
        get_language=translation.get_language,
        get_language_bidi=translation.get_language_bidi,
        languages=languages,
        current_zone_label=current_zone_label,
        url=url,
        url_for=url_for,
        static=static,
        notification_poll_ms=notification_poll_ms,
    )
    env.filters.update(
        can=can,
        date=date,
        default=default,
        default_if_none=default_if_none,
        filesizeformat=defaultfilters.filesizeformat,
        floatformat=defaultfilters.floatformat,
        isodate=isodate,
        pluralize=defaultfilters.pluralize,
        truncatechars=defaultfilters.truncatechars,
        urlencode=defaultfilters.urlencode,
    )
    return env
