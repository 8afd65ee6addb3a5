"""The message catalogues: ``manage.py messages extract | check | compile``.

Django's ``makemessages`` reads Django's template language, not the Jinja2 of our pages, so the
messages are extracted with Babel (Jinja2's own extractor for ``templates/``, Babel's for Python
and JavaScript) into Django's layout: one catalogue per area, ``<area>/locale/zh_Hans/
LC_MESSAGES/django.po`` (Python, templates) and ``djangojs.po`` (the pages' scripts), compiled to
the ``.mo`` files Django reads (committed, so every way of running the platform has them).

- ``extract`` brings every catalogue in line with the code: new messages added (untranslated),
  gone ones dropped, source locations refreshed.
- ``check`` changes nothing and fails (exit 1) when a catalogue is not in line with the code, a
  message is untranslated or fuzzy, a translation drops or adds a placeholder, or a ``.mo`` is
  not the compiled ``.po``. ``make test`` runs it.
- ``compile`` writes the ``.mo`` files.

The glossary the translations follow: docs/i18n.md.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

TRANSLATED = ("zh_Hans",)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}
JINJA = "jinja2.ext:babel_extract"
# %(name)s, %s, %d … (Python) and {name} is not used; a translation must keep the same set.
PLACEHOLDER = re.compile(r"%(?:\([a-z_0-9]+\))?[sdif]|%%")


@dataclass(frozen=True)
class Area:
    """A catalogue and the files its messages come from (globs relative to the project)."""

    name: str
    locale: str
    python: tuple[str, ...]
    templates: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    exclude: tuple[str, ...] = field(default=("*/migrations/*", "*/tests/*"))
    # The gettext domain of the Python and template messages ("django" for Django's catalogue;
    # the command-line client, which runs without Django, reads its own).
    domain: str = "django"


AREAS = (
    Area(
        "site",
        "locale",
        python=("heygem_site/**/*.py", "core/**/*.py"),
        templates=("templates/*.html",),
    ),
    Area(
        "accounts",
        "accounts/locale",
        python=("accounts/**/*.py",),
        templates=(
            "templates/accounts/*.html",
            "templates/registration/*.html",
            "templates/emails/*.html",
            "templates/emails/*.txt",
        ),
        scripts=("static/js/app.js", "static/js/notifications.js"),
    ),
    Area(
        "jobs",
        "jobs/locale",
        python=("jobs/**/*.py",),
        templates=("templates/jobs/*.html",),
        scripts=("static/js/batch.js", "static/js/player.js", "static/js/uploader.js"),
    ),
    Area(
        "exports",
        "exports/locale",
        python=("exports/**/*.py",),
        templates=("templates/exports/*.html",),
        scripts=("static/js/export.js",),
    ),
    # The command-line client runs without Django: its own domain, read by heygem_client/i18n.py.
    Area(
        "client", "heygem_client/locale", python=("heygem_client/**/*.py",), domain="heygem_client"
    ),
)


def _files(base: Path, patterns: tuple[str, ...], exclude: tuple[str, ...]) -> list[Path]:
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in base.glob(pattern) if p.is_file())
    return sorted(p for p in found if not any(p.relative_to(base).match(x) for x in exclude))


def extract(base: Path, area: Area, domain: str) -> Catalog:
    """The template catalogue (every message the area's files ask for) of one domain."""
    template = Catalog(project="HeyGem Studio", fuzzy=False)
    if domain != "djangojs":
        sources = [(p, "python") for p in _files(base, area.python, area.exclude)]
        sources += [(p, JINJA) for p in _files(base, area.templates, ())]
    else:
        sources = [(p, "javascript") for p in _files(base, area.scripts, ())]
    for path, method in sources:
        options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
        for lineno, message, comments, context in extract_from_file(
            method, str(path), keywords=KEYWORDS, options=options, strip_comment_tags=True
        ):
            template.add(
                message,
                None,
                [(path.relative_to(base).as_posix(), lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def domains(area: Area) -> tuple[str, ...]:
    return (area.domain, "djangojs") if area.scripts else (area.domain,)


def po_path(base: Path, area: Area, language: str, domain: str) -> Path:
    return base / area.locale / language / "LC_MESSAGES" / f"{domain}.po"


def _read(path: Path, language: str) -> Catalog:
    if path.exists():
        with path.open("rb") as fh:
            return read_po(fh, locale=language)
    return Catalog(locale=language, project="HeyGem Studio", fuzzy=False)


def _po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, omit_header=False, ignore_obsolete=True, sort_output=True)
    return out.getvalue()


def _mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _without_dates(data: bytes) -> bytes:
    return re.sub(rb'"(POT-Creation-Date|PO-Revision-Date): [^"]*"\n', b"", data)


def merged(base: Path, area: Area, language: str, domain: str) -> tuple[Catalog, Catalog]:
    """(the catalogue on disk, the same brought in line with the code)."""
    current = _read(po_path(base, area, language, domain), language)
    updated = _read(po_path(base, area, language, domain), language)
    template = extract(base, area, domain)
    updated.update(template, no_fuzzy_matching=True, update_creation_date=False)
    updated.obsolete.clear()
    updated.fuzzy = False
    _header(updated)
    return current, updated


def _header(catalog: Catalog) -> None:
    catalog.project, catalog.version = "HeyGem Studio", "1"
    catalog.copyright_holder = "the HeyGem Studio authors"
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "HeyGem Studio team"
    catalog.language_team = "Simplified Chinese (docs/i18n.md)"
    catalog.header_comment = (
        "# HeyGem Studio, Simplified Chinese. The glossary these follow: docs/i18n.md.\n"
        "# Made by `manage.py messages extract`; translate msgstr, then `messages compile`."
    )


def _absent(catalog: Catalog, message) -> bool:
    """``message`` (its id in its context: ``pgettext``) is not in ``catalog``."""
    return catalog.get(message.id, message.context) is None


def problems_of(catalog: Catalog) -> list[str]:
    """Untranslated, fuzzy and placeholder-changing messages of a catalogue."""
    found = []
    for message in catalog:
        if not message.id:
            continue
        where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        label = f"{singular!r} ({where})"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            found.append(f"fuzzy: {label}")
        if not all(strings):
            found.append(f"untranslated: {label}")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for text in strings:
            have = set(PLACEHOLDER.findall(text))
            # A plural's one form may drop the number ("一个文件"); names must stay.
            named = {p for p in wanted if p.startswith("%(")}
            if have - wanted or not named <= have:
                found.append(f"placeholders differ: {label} → {text!r}")
    return found


def conflicts(base: Path, language: str) -> list[str]:
    """The same message (id and context) translated differently in two catalogues of one
    domain. Django merges an installation's catalogues into one, so only one of the two would
    ever be shown: give one of them a context (``pgettext``) or make the translations agree."""
    seen: dict[tuple[str, object, object], tuple[object, Path]] = {}
    found = []
    for area in AREAS:
        for domain in domains(area):
            path = po_path(base, area, language, domain)
            if not path.exists():
                continue
            for message in _read(path, language):
                if not message.id:
                    continue
                key = (domain, message.id, message.context)
                earlier = seen.setdefault(key, (message.string, path))
                if earlier[0] != message.string:
                    found.append(
                        f"{path.relative_to(base)} and {earlier[1].relative_to(base)} translate "
                        f"{message.id!r} differently: {message.string!r} / {earlier[0]!r}"
                    )
    return found


class Command(BaseCommand):
    help = "Extract, check or compile the message catalogues (English source, zh-hans)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("extract", "check", "compile"))
        parser.add_argument(
            "--area", action="append", choices=[a.name for a in AREAS], help="only these"
        )

    def handle(self, action: str, area: list[str] | None = None, **options) -> None:
        base = Path(settings.BASE_DIR)
        chosen = [a for a in AREAS if not area or a.name in area]
        failures: list[str] = []
        for each in chosen:
            for language in TRANSLATED:
                for domain in domains(each):
                    failures += self._one(base, each, language, domain, action)
        if action == "check" and not area:
            for language in TRANSLATED:
                failures += conflicts(base, language)
        if failures:
            for line in failures:
                self.stderr.write(line)
            raise CommandError(
                f"{len(failures)} catalogue problem(s). Run `manage.py messages extract`, "
                "translate what it added (docs/i18n.md), then `manage.py messages compile`."
            )
        self.stdout.write(f"messages {action}: {len(chosen)} area(s) in order")

    def _one(self, base: Path, area: Area, language: str, domain: str, action: str) -> list[str]:
        path = po_path(base, area, language, domain)
        mo_path = path.with_suffix(".mo")
        rel = path.relative_to(base)
        current, updated = merged(base, area, language, domain)
        if action == "extract":
            new = _po_bytes(updated)
            old = path.read_bytes() if path.exists() else b""
            if _without_dates(new) != _without_dates(old):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(new)
                added = len([m for m in updated if m.id and _absent(current, m)])
                self.stdout.write(f"{rel}: {added} new message(s), {len(updated)} in all")
            return []
        if action == "compile":
            mo = _mo_bytes(current)
            if not mo_path.exists() or mo_path.read_bytes() != mo:
                mo_path.parent.mkdir(parents=True, exist_ok=True)
                mo_path.write_bytes(mo)
                self.stdout.write(f"{mo_path.relative_to(base)}: compiled")
            return []
        found = []
        if not path.exists():
            return [f"{rel}: missing"]
        missing = [m.id for m in updated if m.id and _absent(current, m)]
        gone = [m.id for m in current if m.id and _absent(updated, m)]
        found += [f"{rel}: not in the catalogue: {mid!r}" for mid in missing]
        found += [f"{rel}: no longer in the code: {mid!r}" for mid in gone]
        found += [f"{rel}: {p}" for p in problems_of(current)]
        if not mo_path.exists() or mo_path.read_bytes() != _mo_bytes(current):
            found.append(f"{mo_path.relative_to(base)}: not the compiled {path.name}")
        return found
