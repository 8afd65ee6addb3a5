"""An audit event's ``detail`` as people read it: labelled ``key: value`` lines in the active
language and time zone, instead of the JSON (or a Python dict print) it is stored as.

The stored detail stays as it is (it is part of the hash chain, the CSV and the API); this is
only how the audit page words it. Known keys get a translated label and their values a
readable form (roles and kinds by their names, sizes in KB/MB, times in the reader's zone);
an unknown key shows its code, and its value as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext, pgettext_lazy

from accounts.audit import target_type_labels
from accounts.models import AuditEvent, WebhookEndpoint
from accounts.permissions import Role

MAX_SHOWN = 48  # longer values are cut, the whole value in the cell's title


# Every key the services record (a key missing here shows as its code).
DETAIL_LABELS = {
    "active": pgettext_lazy("audit detail", "Enabled"),
    "audios": pgettext_lazy("audit detail", "Audio files"),
    "avatars": pgettext_lazy("audit detail", "Avatars"),
    "burn_subtitles": pgettext_lazy("audit detail", "Burned-in subtitles"),
    "bytes": pgettext_lazy("audit detail", "Size"),
    "characters": pgettext_lazy("audit detail", "Characters"),
    "corner": pgettext_lazy("audit detail", "Watermark corner"),
    "cues": pgettext_lazy("audit detail", "Subtitle lines"),
    "deliveries": pgettext_lazy("audit detail", "Delivery records"),
    "delivery": pgettext_lazy("audit detail", "Delivery ID"),
    "description": pgettext_lazy("audit detail", "Description"),
    "duration": pgettext_lazy("audit detail", "Duration (s)"),
    "engine": pgettext_lazy("audit detail", "Engine"),
    "events": pgettext_lazy("audit detail", "Events"),
    "expires_at": pgettext_lazy("audit detail", "Expires"),
    "file": pgettext_lazy("audit detail", "File"),
    "filename": pgettext_lazy("audit detail", "File name"),
    "files": pgettext_lazy("audit detail", "Files"),
    "from": pgettext_lazy("audit detail", "From"),
    "invitation": pgettext_lazy("audit detail", "Invitation"),
    "inviter": pgettext_lazy("audit detail", "Invited by"),
    "kind": pgettext_lazy("audit detail", "Kind"),
    "opacity": pgettext_lazy("audit detail", "Opacity"),
    "output": pgettext_lazy("audit detail", "Output options"),
    "owner": pgettext_lazy("audit detail", "Token owner"),
    "project": pgettext_lazy("audit detail", "Project"),
    "quality": pgettext_lazy("audit detail", "Quality"),
    "range": pgettext_lazy("audit detail", "Byte range"),
    "reason": pgettext_lazy("audit detail", "Reason"),
    "replaced": pgettext_lazy("audit detail", "Replaced"),
    "requested_by": pgettext_lazy("audit detail", "Requested by"),
    "resolution": pgettext_lazy("audit detail", "Resolution"),
    "role": pgettext_lazy("audit detail", "Role"),
    "rows": pgettext_lazy("audit detail", "Rows"),
    "scope": pgettext_lazy("audit detail", "Scope"),
    "script": pgettext_lazy("audit detail", "Script"),
    "scripts": pgettext_lazy("audit detail", "Scripts"),
    "seconds": pgettext_lazy("audit detail", "Time taken (s)"),
    "sentences": pgettext_lazy("audit detail", "Sentences"),
    "sha256": pgettext_lazy("audit detail", "SHA-256"),
    "slug": pgettext_lazy("audit detail", "Address"),
    "storage": pgettext_lazy("audit detail", "Storage"),
    "tags": pgettext_lazy("audit detail", "Tags"),
    "to": pgettext_lazy("audit detail", "To"),
    "tokens_revoked": pgettext_lazy("audit detail", "API tokens revoked"),
    "url": pgettext_lazy("audit detail", "URL"),
    "voice": pgettext_lazy("audit detail", "Voice"),
    "watermark": pgettext_lazy("audit detail", "Watermark"),
    "zip_bytes": pgettext_lazy("audit detail", "ZIP size"),
}
_ROLE_KEYS = {"role"}
_ROLE_CHANGE_KEYS = {"from", "to"}  # of member.role_changed (org.renamed has names there)
_INVITER_NOW = re.compile(r"^inviter now (\w+)$")


@dataclass(frozen=True)
class DetailLine:
    key: str
    label: str
    value: str
    full: str  # the whole value when ``value`` was cut, else ""


@lru_cache(maxsize=256)
def _field_choices(target_type: str, key: str) -> dict[str, Any]:
    """The choices of the target model's field named ``key`` (an asset's kind), if any."""
    for model in apps.get_models():
        if model._meta.model_name == target_type:
            try:
                field = model._meta.get_field(key)
            except FieldDoesNotExist:
                return {}
            return dict(getattr(field, "choices", None) or ())
    return {}


def _role(value: Any) -> str:
    return str(Role(value).label) if value in Role.values else str(value)


def _scope(value: str) -> str:
    """``batch:12`` → "Batch 12"; ``project:3;tags:a,b`` → "Project 3, Tags a,b"."""
    types = target_type_labels()
    parts = []
    for part in value.split(";"):
        kind, colon, rest = part.partition(":")
        if not colon:
            parts.append(part)
        elif kind == "tags":
            parts.append(f"{DETAIL_LABELS['tags']} {rest}")
        else:
            parts.append(f"{str(types.get(kind, kind)).capitalize()} {rest}")
    return ", ".join(parts)


def _reason(value: str) -> str:
    if value == "inviter removed":
        return _("the person who sent it was removed")
    found = _INVITER_NOW.match(value)
    if found:
        return _("the person who sent it is now %(role)s") % {"role": _role(found[1])}
    return value


def _moment(value: str) -> str | None:
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None or timezone.is_naive(moment):
        return None
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _text(event: AuditEvent, key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return pgettext("audit detail", "yes") if value else pgettext("audit detail", "no")
    if key in _ROLE_KEYS or (key in _ROLE_CHANGE_KEYS and event.action == "member.role_changed"):
        return _role(value)
    if key == "events" and isinstance(value, list):
        return ", ".join(str(WebhookEndpoint.EVENT_NAMES.get(e, e)) for e in value)
    if isinstance(value, dict):
        return ", ".join(
            f"{DETAIL_LABELS.get(k, k)}: {_text(event, k, v)}"
            for k, v in sorted(value.items(), key=lambda kv: (_KEY_ORDER.get(kv[0], 999), kv[0]))
        )
    if isinstance(value, list):
        return ", ".join(_text(event, key, v) for v in value)
    if isinstance(value, int) and (key == "bytes" or key.endswith("_bytes")):
        return str(filesizeformat(value)).replace("\xa0", " ")
    if isinstance(value, str):
        if key.endswith("_at"):
            return _moment(value) or value
        if key == "scope":
            return _scope(value)
        if key == "reason":
            return _reason(value)
        choices = _field_choices(event.target_type, key) if event.target_type else {}
        if value in choices:
            return str(choices[value])
    return str(value)


_KEY_ORDER = {key: n for n, key in enumerate(DETAIL_LABELS)}


def detail_lines(event: AuditEvent) -> list[DetailLine]:
    """``event.detail`` as labelled lines: the known keys in the label table's order, then the
    others by name (PostgreSQL's jsonb keeps no key order, so the recorded one is lost)."""
    detail = event.detail if isinstance(event.detail, dict) else {"": event.detail}
    lines = []
    ordered = sorted(detail.items(), key=lambda kv: (_KEY_ORDER.get(kv[0], len(_KEY_ORDER)), kv[0]))
    for key, value in ordered:
        text = _text(event, key, value)
        cut = len(text) > MAX_SHOWN
        lines.append(
            DetailLine(
                key=key,
                label=str(DETAIL_LABELS.get(key, key)),
                value=text[: MAX_SHOWN - 1] + "…" if cut else text,
                full=text if cut else "",
            )
        )
    return lines
