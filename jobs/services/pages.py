"""Small helpers the pages share with nobody else: subtitle files chosen beside audio
uploads, attached to the audio track of the same name."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.audit import SYSTEM, RequestMeta
from accounts.models import Membership
from jobs.models import Asset
from jobs.services.subtitles import asset_attach_subtitles

#: What a file chosen with the audio tracks is taken for subtitles by.
SUBTITLE_SUFFIXES = (".srt", ".vtt")


def is_subtitle_file(name: str) -> bool:
    return PurePosixPath(name or "").suffix.lower() in SUBTITLE_SUFFIXES


def _stem(name: str) -> str:
    return unicodedata.normalize("NFC", PurePosixPath(name or "").stem).casefold()


@dataclass(frozen=True)
class SubtitleVerdict:
    """One subtitle file: the audio it was attached to, or why not (``error``)."""

    name: str
    audio: Asset | None = None
    error: str = ""


def attach_subtitles_by_name(
    *,
    membership: Membership,
    audios: Sequence[Asset],
    files: Iterable[tuple[str, bytes]],
    meta: RequestMeta = SYSTEM,
) -> list[SubtitleVerdict]:
    """Attach each subtitle file (name, content) to the audio track among ``audios`` whose
    name has the same stem (``intro.srt`` → ``intro.wav``), in any case. A file with no such
    track, or with problems, gets its reason; the others are attached."""
    by_stem: dict[str, Asset] = {}
    for audio in audios:
        by_stem.setdefault(_stem(audio.original_name), audio)
    verdicts = []
    for name, data in files:
        audio = by_stem.get(_stem(name))
        if audio is None:
            verdicts.append(
                SubtitleVerdict(
                    name,
                    error=_(
                        "“%(name)s” matches no chosen audio track: give it the name of its "
                        "audio file, e.g. %(example)s for %(audio)s."
                    )
                    % {
                        "name": name,
                        "example": "intro.srt",
                        "audio": "intro.wav",
                    },
                )
            )
            continue
        try:
            audio = asset_attach_subtitles(
                membership=membership, asset=audio, data=data, filename=name, meta=meta
            )
        except ValidationError as exc:
            verdicts.append(SubtitleVerdict(name, error=" ".join(exc.messages)))
        else:
            by_stem[_stem(audio.original_name)] = audio
            verdicts.append(SubtitleVerdict(name, audio=audio))
    return verdicts
