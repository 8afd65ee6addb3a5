"""Batch sheets: each row of a sheet (``jobs.sheets.read_sheet``) checked against the
organization's library and voices — a verdict per row — and the batch submitted only when
every row is good. One bad row refuses the whole sheet with every row's errors, and nothing
is made."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta
from accounts.models import Membership
from accounts.services import require
from core.names import without_invisible
from jobs.models import Asset, Batch, Project
from jobs.services.batches import parse_tags
from jobs.services.output_options import OutputSettings
from jobs.services.scripts import ScriptSpec, VoiceChoice, find_voice, script_check, voices_for
from jobs.services.submission import JobSpec, batch_submit
from jobs.sheets import NO, YES, SheetError, SheetRow, read_sheet

#: Longest output name kept, in characters (before ``.mp4``).
OUTPUT_NAME_MAX = 120
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}  # fmt: skip
_BY_ID = re.compile(r"^#(\d{1,18})$")


@dataclass
class RowVerdict:
    """What one row of a sheet will make, or why it cannot: the avatar and audio found in the
    library (or the script and its voice), the output name as it will be used, the tags and
    whether subtitles are burned in; ``errors`` in the active language."""

    row: SheetRow
    avatar: Asset | None = None
    audio: Asset | None = None
    script: ScriptSpec | None = None
    voice: VoiceChoice | None = None
    output_name: str = ""
    tags: list[str] = field(default_factory=list)
    subtitles: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.row.number

    @property
    def ok(self) -> bool:
        return not self.errors

    def job(self) -> JobSpec:
        assert self.ok and self.avatar is not None
        return JobSpec(
            avatar=self.avatar,
            audio=self.audio,
            script=self.script,
            output_name=self.output_name,
            burn_subtitles=self.subtitles,
            row=self.number,
        )


class SheetRefused(ValidationError):
    """The sheet has bad rows: every error, by row (``row_<number>``); nothing was made."""

    def __init__(self, verdicts: Sequence[RowVerdict]) -> None:
        self.verdicts = list(verdicts)
        bad = [v for v in self.verdicts if not v.ok]
        super().__init__({f"row_{v.number}": v.errors for v in bad}, code="sheet_invalid")
        self.summary = ngettext(
            "%(num)d row of the sheet has errors; nothing was submitted. Correct it and "
            "upload the sheet again.",
            "%(num)d rows of the sheet have errors; nothing was submitted. Correct them and "
            "upload the sheet again.",
            len(bad),
        ) % {"num": len(bad)}

    def row_messages(self) -> list[str]:
        """Every error as one line that names its row."""
        return [
            _("Row %(number)s: %(problem)s") % {"number": v.number, "problem": problem}
            for v in self.verdicts
            for problem in v.errors
        ]


def sheet_read(*, filename: str, data: bytes) -> list[SheetRow]:
    """The rows of an uploaded sheet (CSV or .xlsx), or ValidationError (``file``) saying why
    the file as a whole cannot be read."""
    try:
        return read_sheet(filename, data)
    except SheetError as exc:
        raise ValidationError({"file": str(exc)}, code="sheet_unreadable") from exc


def output_stem(raw: str) -> str:
    """A video name a person wrote, made safe as a file name everywhere (Windows, macOS,
    Linux, ZIP): no folders, no reserved characters (replaced by ``_``), no invisible ones,
    no ``.mp4`` of its own; Chinese and other letters are kept (``经销商_北京``)."""
    text = unicodedata.normalize("NFC", raw or "")
    text = without_invisible(_UNSAFE.sub("_", text))
    text = re.sub(r"\s+", " ", text).strip()
    if text.lower().endswith(".mp4"):
        text = text[:-4]
    text = text.strip(" .")[:OUTPUT_NAME_MAX].rstrip(" .")
    if PurePosixPath(text).stem.lower() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


class _Library:
    """The organization's assets of one kind, found by the names a sheet gives them."""

    def __init__(self, organization_id: int, kind: str, wanted: Iterable[str]) -> None:
        self.kind = kind
        wanted = {w for w in wanted if w}
        self.names: list[tuple[int, str]] = []
        if wanted:
            self.names = list(
                Asset.objects.in_library()
                .filter(organization_id=organization_id, kind=kind)
                .order_by("id")
                .values_list("id", "original_name")
            )
        self.organization_id = organization_id
        self.rows: dict[int, Asset] = {}

    def load(self, ids: set[int]) -> None:
        if ids:
            self.rows = (
                Asset.objects.in_library()
                .filter(organization_id=self.organization_id, kind=self.kind, pk__in=ids)
                .in_bulk()
            )

    def match(self, raw: str) -> tuple[list[int], bool]:
        """Ids of the assets ``raw`` names (``#12`` names one by its id), and whether it
        named an id."""
        by_id = _BY_ID.match(raw)
        if by_id:
            pk = int(by_id[1])
            return [i for i, _name in self.names if i == pk], True
        wanted = unicodedata.normalize("NFC", " ".join(raw.split()))
        for same in (
            lambda name: name == wanted,
            lambda name: name.casefold() == wanted.casefold(),
            lambda name: PurePosixPath(name).stem.casefold() == wanted.casefold(),
        ):
            found = [i for i, name in self.names if same(name)]
            if found:
                return found, False
        return [], False


def _find(library: _Library, raw: str, errors: list[str]) -> int | None:
    found, by_id = library.match(raw)
    avatar = library.kind == Asset.Kind.AVATAR
    if not found:
        if by_id:
            text = (
                _("There is no avatar video %(name)s in the library.")
                if avatar
                else _("There is no audio file %(name)s in the library.")
            )
        else:
            text = (
                _("There is no avatar video called “%(name)s” in the library.")
                if avatar
                else _("There is no audio file called “%(name)s” in the library.")
            )
        errors.append(text % {"name": raw})
        return None
    if len(found) > 1:
        ids = ", ".join(f"#{i}" for i in found[:5])
        text = (
            _(
                "Several avatar videos in the library are called “%(name)s” (%(ids)s): write "
                "the one you mean as its number, for example %(first)s."
            )
            if avatar
            else _(
                "Several audio files in the library are called “%(name)s” (%(ids)s): write the "
                "one you mean as its number, for example %(first)s."
            )
        )
        errors.append(text % {"name": raw, "ids": ids, "first": f"#{found[0]}"})
        return None
    return found[0]


def sheet_check(*, membership: Membership, rows: Sequence[SheetRow]) -> list[RowVerdict]:
    """A verdict for each row: avatar found by its name in the library (or ``#id``; a name
    several files share is an error that lists them), an audio file found the same way or a
    script whose text and voice can be spoken, the output name made safe, tags, subtitles
    yes or no (yes needs subtitles: a script's, or an SRT attached to the audio). Reads only;
    a page shows the verdicts before the sheet is submitted."""
    require(membership, "batch.submit")
    org_id = membership.organization_id
    avatars = _Library(org_id, Asset.Kind.AVATAR, (r.avatar for r in rows))
    audios = _Library(org_id, Asset.Kind.AUDIO, (r.audio for r in rows))
    voices = voices_for(membership.organization) if any(r.script for r in rows) else []
    verdicts = [RowVerdict(row=row, errors=list(row.errors)) for row in rows]
    found: dict[int, tuple[int | None, int | None]] = {}
    for verdict in verdicts:
        row, errors = verdict.row, verdict.errors
        avatar_id = audio_id = None
        if not row.avatar:
            errors.append(_("The avatar is missing: write the name of an avatar video."))
        else:
            avatar_id = _find(avatars, row.avatar, errors)
        if row.audio and row.script:
            errors.append(_("Give an audio file or a script, not both."))
        elif row.audio:
            audio_id = _find(audios, row.audio, errors)
        elif row.script:
            verdict.script = _script(row, voices, verdict)
        else:
            errors.append(_("Give an audio file or a script: the row has neither."))
        found[row.number] = (avatar_id, audio_id)
        if row.output_name:
            verdict.output_name = output_stem(row.output_name)
            if not verdict.output_name:
                errors.append(
                    _("The output name “%(name)s” has no characters a file name can use.")
                    % {"name": row.output_name}
                )
        try:
            verdict.tags = parse_tags(row.tags)
        except ValidationError as exc:
            errors.extend(exc.messages)
        value = row.subtitles.strip().lower()
        if value in YES:
            verdict.subtitles = True
        elif value not in NO:
            errors.append(
                _("Write yes or no in the subtitles column, not “%(value)s”.")
                % {"value": row.subtitles}
            )
    avatars.load({a for a, _b in found.values() if a})
    audios.load({b for _a, b in found.values() if b})
    for verdict in verdicts:
        avatar_id, audio_id = found[verdict.number]
        verdict.avatar = avatars.rows.get(avatar_id) if avatar_id else None
        verdict.audio = audios.rows.get(audio_id) if audio_id else None
        if verdict.subtitles and verdict.audio is not None and not verdict.audio.has_subtitles:
            verdict.errors.append(
                _(
                    "“%(name)s” has no subtitles to burn in: attach an SRT file to it first, "
                    "or write no in the subtitles column."
                )
                % {"name": verdict.audio.original_name}
            )
    return verdicts


def _script(row: SheetRow, voices: list[VoiceChoice], verdict: RowVerdict) -> ScriptSpec | None:
    voice = None
    if row.voice:
        voice = find_voice(row.voice, voices)
        if voice is None:
            verdict.errors.append(
                _("There is no voice “%(voice)s”. Choose one of: %(choices)s.")
                % {"voice": row.voice, "choices": ", ".join(v.id for v in voices) or "—"}
            )
            return None
    else:
        voice = next((v for v in voices if v.default), None)
    verdict.voice = voice
    try:
        return script_check(ScriptSpec(text=row.script, voice=voice.id if voice else ""))
    except ValidationError as exc:
        verdict.errors.extend(exc.messages)
        return None


def sheet_submit(
    *,
    membership: Membership,
    project: Project,
    rows: Sequence[SheetRow],
    engine: str = "warp",
    name: str = "",
    tags: str | Iterable[str] = (),
    output: OutputSettings | None = None,
    filename: str = "",
    meta: RequestMeta = SYSTEM,
) -> Batch:
    """One batch with a job per row, when every row is good (:func:`sheet_check`). Any bad
    row refuses the sheet with :class:`SheetRefused` (every error, by row) and nothing is made.
    The batch's tags are ``tags`` and those of every row."""
    require(membership, "batch.submit")
    if not rows:
        raise ValidationError({"file": _("The sheet has no rows.")}, code="sheet_empty")
    if len(rows) > settings.BATCH_MAX_JOBS:
        raise ValidationError(
            ngettext(
                "The sheet has %(num)d row; one batch may hold at most %(max)d videos. Split "
                "it into several sheets.",
                "The sheet has %(num)d rows; one batch may hold at most %(max)d videos. Split "
                "it into several sheets.",
                len(rows),
            )
            % {"num": len(rows), "max": settings.BATCH_MAX_JOBS},
            code="too_many_jobs",
        )
    verdicts = sheet_check(membership=membership, rows=rows)
    if any(not v.ok for v in verdicts):
        raise SheetRefused(verdicts)
    all_tags = list(dict.fromkeys([*parse_tags(tags), *(t for v in verdicts for t in v.tags)]))
    detail = {"sheet": {"file": filename[:200], "rows": len(rows)}}
    return batch_submit(
        membership=membership,
        project=project,
        jobs=[v.job() for v in verdicts],
        tags=all_tags,
        engine=engine,
        name=name,
        output=output,
        audit_detail=detail,
        meta=meta,
    )
