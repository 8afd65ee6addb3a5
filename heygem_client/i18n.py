"""The client's language: Simplified Chinese when the locale asks for it, else English.

The locale is read as POSIX programs read it for messages: ``LC_ALL``, else ``LC_MESSAGES``,
else ``LANG`` (the first one set). A value starting with ``zh_CN``, ``zh_SG``, ``zh_Hans`` or
``zh-Hans`` (``zh_CN.UTF-8`` …) means Chinese. The messages come from the client's own
catalogue, ``heygem_client/locale/zh_Hans/LC_MESSAGES/heygem_client.mo`` (Python's gettext;
no Django), made with ``manage.py messages extract|compile --area client``.

argparse words its own parts (``usage:``, ``options``, "the following arguments are required")
through the stdlib's gettext in the process-wide domain; :func:`argparse_speaks` hands those
to this catalogue while the command line is parsed.
"""

from __future__ import annotations

import argparse
import contextlib
import gettext as _gettext
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

DOMAIN = "heygem_client"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CHINESE = ("zh_CN", "zh_SG", "zh_Hans", "zh-Hans", "zh-CN")


def language(environ: Mapping[str, str] | None = None) -> str:
    """``zh_Hans`` or ``en``, from the environment's locale variables."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh_Hans" if value.startswith(CHINESE) else "en"
    return "en"


def accept_language() -> str:
    """The ``Accept-Language`` of API calls: the server's errors come in the client's language."""
    return "zh-Hans" if language() == "zh_Hans" else "en"


@lru_cache(maxsize=4)
def _catalogue(lang: str) -> _gettext.NullTranslations:
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def translations() -> _gettext.NullTranslations:
    """The catalogue of the current locale (English: the messages as written)."""
    return _catalogue(language())


def _(message: str) -> str:
    return translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations().ngettext(singular, plural, n)


def gettext_noop(message: str) -> str:
    """Marks a message for the catalogue without translating it here."""
    return message


@contextlib.contextmanager
def argparse_speaks() -> Iterator[None]:
    """argparse's own words from this catalogue while a command line is built and parsed."""
    catalogue = translations()
    saved = argparse._, argparse.ngettext
    argparse._, argparse.ngettext = catalogue.gettext, catalogue.ngettext
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved


# The argparse messages a person can meet with this client's command line (argparse's own
# msgids, so the catalogue translates them; placeholders as argparse fills them).
ARGPARSE_MESSAGES = (
    gettext_noop("usage: "),
    gettext_noop("positional arguments"),
    gettext_noop("options"),
    gettext_noop("show this help message and exit"),
    gettext_noop("show program's version number and exit"),
    gettext_noop("%(prog)s: error: %(message)s\n"),
    gettext_noop("the following arguments are required: %s"),
    gettext_noop("unrecognized arguments: %s"),
    gettext_noop("argument %(argument_name)s: %(message)s"),
    gettext_noop("invalid choice: %(value)r (choose from %(choices)s)"),
    gettext_noop("invalid %(type)s value: %(value)r"),
    gettext_noop("expected one argument"),
    gettext_noop("ambiguous option: %(option)s could match %(matches)s"),
)
