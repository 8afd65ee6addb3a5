"""Subtitles: an SRT a member attaches to an uploaded audio track (checked against its length,
every problem reported with its line number), the cues a video's subtitles come from, and
the WebVTT the player reads, made from a video's stored SRT when asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.services import require
from core.storage import media as storage
from jobs.models import Asset, Output
from jobs.reasons import subtitle_problem_text
from jobs.services.assets import display_name

if TYPE_CHECKING:
    from inference.subtitles import Cue

#: Problems of one subtitle file listed before the rest are counted.
MAX_LISTED_PROBLEMS = 20


def _refusal(name: str, errors: list[tuple[int, str]]) -> ValidationError:
    lines = [subtitle_problem_text(line, problem) for line, problem in errors]
    more = len(lines) - MAX_LISTED_PROBLEMS
    lines = lines[:MAX_LISTED_PROBLEMS]
    if more > 0:
        lines.append(
            ngettext("… and %(num)d more problem.", "… and %(num)d more problems.", more)
            % {"num": more}
        )
    head = _("“%(name)s” cannot be used as subtitles:") % {"name": name}
    return ValidationError({"file": [head, *lines]}, code="subtitles_invalid")


def read_subtitle_file(data: bytes, *, name: str, duration: float | None) -> list[Cue]:
    """The cues of an uploaded SRT (or WebVTT) file, or ValidationError listing every problem
    with its line number, in the active language."""
    from inference.subtitles import SubtitleError, parse_srt, parse_vtt

    try:
        if data.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
            return parse_vtt(data, duration=duration)
        return parse_srt(data, duration=duration)
    except SubtitleError as exc:
        raise _refusal(name, exc.errors) from exc


def asset_attach_subtitles(
    *,
    membership: Membership,
    asset: Asset,
    data: bytes,
    filename: str = "",
    meta: RequestMeta = SYSTEM,
) -> Asset:
    """Attach an SRT file to an audio track of the library: every video of it then gets these
    subtitles (beside it in bundles, burned in when asked). A cue that starts after the audio
    ends, or any other problem, refuses the file with its line number; nothing changes then.
    Replaces subtitles attached before."""
    from inference.subtitles import format_srt

    require(membership, "asset.upload")
    if asset.organization_id != membership.organization_id:
        raise Asset.DoesNotExist(_("No such asset."))
    if asset.kind != Asset.Kind.AUDIO:
        raise ValidationError(
            _("Subtitles can be attached to audio tracks only; “%(name)s” is an avatar video.")
            % {"name": asset.original_name},
            code="wrong_kind",
        )
    name = display_name(filename, "subtitles.srt")
    cues = read_subtitle_file(data, name=name, duration=asset.duration)
    with transaction.atomic():
        asset = Asset.objects.select_for_update().get(pk=asset.pk)
        replaced = bool(asset.subtitles)
        asset.subtitles = format_srt(cues)
        asset.subtitles_name = name
        asset.save(update_fields=["subtitles", "subtitles_name"])
        record_event(
            organization=membership.organization,
            action="asset.subtitles_attached",
            actor=membership.user,
            target=Target.of(asset),
            meta=meta,
            file_count=1,
            total_bytes=len(data),
            detail={"file": name, "cues": len(cues), "replaced": replaced},
        )
    return asset


def asset_detach_subtitles(
    *, membership: Membership, asset: Asset, meta: RequestMeta = SYSTEM
) -> Asset:
    """Remove the SRT attached to an audio track (videos rendered since keep theirs)."""
    require(membership, "asset.upload")
    if asset.organization_id != membership.organization_id:
        raise Asset.DoesNotExist(_("No such asset."))
    with transaction.atomic():
        asset = Asset.objects.select_for_update().get(pk=asset.pk)
        if not asset.subtitles:
            raise ValidationError(
                _("“%(name)s” has no attached subtitles.") % {"name": asset.original_name},
                code="no_subtitles",
            )
        name = asset.subtitles_name
        asset.subtitles, asset.subtitles_name = "", ""
        asset.save(update_fields=["subtitles", "subtitles_name"])
        record_event(
            organization=membership.organization,
            action="asset.subtitles_removed",
            actor=membership.user,
            target=Target.of(asset),
            meta=meta,
            detail={"file": name},
        )
    return asset


def subtitle_cues(asset: Asset | None) -> list[Cue]:
    """The cues of a video speaking ``asset``: its attached SRT when it has one, else the
    sentences of the script it was made from (cut to two lines per cue); none otherwise."""
    from inference.subtitles import cues_from_timings, parse_srt
    from inference.tts import SentenceTiming

    if asset is None:
        return []
    if asset.subtitles:
        return parse_srt(asset.subtitles)
    if asset.cues:
        timings = [
            SentenceTiming(c["text"], float(c["start"]), float(c["end"])) for c in asset.cues
        ]
        return cues_from_timings(timings)
    return []


def output_subtitles(output: Output, fmt: str = "srt") -> str:
    """A video's subtitles as SRT (the stored file) or WebVTT (made from it, for players).
    FileNotFoundError when the video has none."""
    from inference.subtitles import format_vtt, parse_srt

    if not output.subtitles:
        raise FileNotFoundError(output.name)
    text = storage.read_bytes(output.subtitles.name).decode("utf-8")
    return format_vtt(parse_srt(text)) if fmt == "vtt" else text
