"""Scripts: the voices an organization may choose, a script checked before anything is made,
and its synthesis on the render queue into an audio asset (once per script, however many jobs
speak it) that keeps its text, its voice and the timing of each sentence.

Synthesis is ``inference.tts`` (espeak-ng, or the operator's Piper models); this module hands
it the installation's settings and words its refusals in the person's language.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.audit import Target, record_event
from accounts.models import Organization
from core.names import without_invisible
from core.storage import media as storage
from jobs.models import Asset, Script
from jobs.reasons import inference_error_text

if TYPE_CHECKING:
    from inference.tts import TTSConfig, Voice

logger = logging.getLogger(__name__)

#: How often a worker waiting for another one's synthesis looks again, seconds.
POLL_S = 0.5

# espeak-ng's voices as the person reads them (Piper voices keep their model's name).
_VOICE_NAMES = {
    "espeak:zh-cn": gettext_lazy("Mandarin Chinese, male (espeak-ng)"),
    "espeak:zh-cn-f": gettext_lazy("Mandarin Chinese, female (espeak-ng)"),
    "espeak:en-us": gettext_lazy("English (US), male (espeak-ng)"),
    "espeak:en-us-f": gettext_lazy("English (US), female (espeak-ng)"),
    "espeak:en-gb": gettext_lazy("English (UK), male (espeak-ng)"),
}


def tts_config() -> TTSConfig:
    """Where this installation's voice engines are (settings ``TTS_*``)."""
    from inference.tts import TTSConfig

    folder = settings.TTS_PIPER_VOICES_DIR
    return TTSConfig(
        espeak_binary=settings.TTS_ESPEAK_BINARY or None,
        piper_voices_dir=Path(folder) if folder else None,
        max_chars=settings.TTS_MAX_CHARS,
    )


def default_voice() -> str:
    from inference.tts import DEFAULT_VOICE

    return DEFAULT_VOICE


@dataclass(frozen=True)
class VoiceChoice:
    """A voice a member may choose: its stable id (what a script stores), its language (BCP 47)
    and its name in the active language."""

    id: str
    engine: str
    language: str
    name: str
    supports_rate: bool
    supports_pitch: bool
    default: bool


def _choice(voice: Voice) -> VoiceChoice:
    name = _VOICE_NAMES.get(voice.id)
    return VoiceChoice(
        id=voice.id,
        engine=voice.engine,
        language=voice.language,
        name=str(name) if name is not None else voice.name,
        supports_rate=voice.supports_rate,
        supports_pitch=voice.supports_pitch,
        default=voice.id == default_voice(),
    )


def voices_for(organization: Organization | None = None) -> list[VoiceChoice]:
    """The voices that can speak on this installation, the default first. Every organization
    sees the same ones today; ``organization`` is where a per-organization choice would go."""
    from inference.tts import available_voices

    voices = [_choice(v) for v in available_voices(tts_config())]
    return sorted(voices, key=lambda v: not v.default)


def find_voice(text: str, choices: list[VoiceChoice]) -> VoiceChoice | None:
    """The voice a person wrote (a sheet's voice cell): its id (``espeak:zh-cn``), its id
    without the engine (``zh-cn``) or its name, in any case; None when nothing fits."""
    wanted = " ".join(text.split()).lower()
    for match in (
        lambda v: v.id.lower() == wanted,
        lambda v: v.id.partition(":")[2].lower() == wanted,
        lambda v: v.name.lower() == wanted,
    ):
        found = [v for v in choices if match(v)]
        if len(found) == 1:
            return found[0]
    return None


@dataclass(frozen=True)
class ScriptSpec:
    """A script as submitted: the words, the voice (blank: the default voice), and the rate
    and pitch as multiples of the voice's normal ones."""

    text: str
    voice: str = ""
    rate: float = 1.0
    pitch: float = 1.0

    @property
    def key(self) -> tuple[str, str, float, float]:
        """Scripts with the same key are spoken once and shared by their jobs."""
        return (self.text, self.voice, self.rate, self.pitch)


def script_check(spec: ScriptSpec) -> ScriptSpec:
    """The script made ready to store (text trimmed, the voice named), or ValidationError
    whose message dict says which of ``script``, ``voice``, ``rate``, ``pitch`` is wrong and
    why, in the active language. Cheap: nothing is spoken."""
    from inference.tts import PITCH_RANGE, RATE_RANGE, TTSError, check_text, get_voice
    from inference.tts.base import check_setting

    config = tts_config()
    errors: dict[str, str] = {}
    text = spec.text.strip() if isinstance(spec.text, str) else ""
    try:
        check_text(text, config)
    except TTSError as exc:
        errors["script"] = inference_error_text(exc)
    voice_id = (spec.voice or "").strip() or default_voice()
    voice = None
    try:
        voice = get_voice(voice_id, config)
    except TTSError as exc:
        message = inference_error_text(exc)
        if exc.code == "unknown_voice":
            choices = ", ".join(v.id for v in voices_for()) or "—"
            message = _("%(problem)s Choose one of: %(choices)s.") % {
                "problem": message,
                "choices": choices,
            }
        errors["voice"] = message
    rate, pitch = spec.rate, spec.pitch
    for name, bounds in (("rate", RATE_RANGE), ("pitch", PITCH_RANGE)):
        value = rate if name == "rate" else pitch
        try:
            value = check_setting(name, value, bounds)
        except TTSError as exc:
            errors[name] = inference_error_text(exc)
            continue
        supported = voice is None or (
            voice.supports_rate if name == "rate" else voice.supports_pitch
        )
        if value != 1.0 and not supported:
            errors[name] = _("The voice %(voice)s has no %(setting)s setting; leave it at 1.") % {
                "voice": voice_id,
                "setting": _("speaking rate") if name == "rate" else _("pitch"),
            }
        if name == "rate":
            rate = value
        else:
            pitch = value
    if errors:
        raise ValidationError(errors)
    return ScriptSpec(text=text, voice=voice_id, rate=rate, pitch=pitch)


# --- synthesis, on the render queue ----------------------------------------------------------


def _lock_key(script_id: int) -> str:
    return f"heygem:script-synthesis:{script_id}"


def script_audio(*, script_id: int, scratch: Path, should_cancel: Callable[[], bool]) -> Asset:
    """The script's audio asset: the one already made, else synthesised now by this worker
    (or by the one already doing it, which this one waits for). One synthesis per script: a
    lock in the shared cache elects the worker, the row lock on the script decides for good.

    Raises ``inference.tts.TTSError`` when the script cannot be spoken, and
    ``RenderCanceled`` when the job is canceled while waiting.
    """
    from inference.errors import RenderCanceled

    lease = int(settings.RENDER_LEASE_S)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        script = Script.objects.select_related("audio", "organization").get(pk=script_id)
        if script.audio is not None:
            return script.audio
        if cache.add(_lock_key(script_id), holder, timeout=lease):
            try:
                return _synthesize(script, scratch)
            finally:
                cache.delete(_lock_key(script_id))
        # Another worker speaks it: wait for its audio (or for its lock to lapse).
        while cache.get(_lock_key(script_id)) is not None:
            if should_cancel():
                raise RenderCanceled()
            time.sleep(POLL_S)
            if Script.objects.filter(pk=script_id, audio__isnull=False).exists():
                break


def script_audio_name(text: str) -> str:
    """The display name of a script's audio: its first words, safe as a file name."""
    words = unicodedata.normalize("NFC", " ".join(text.split()))
    words = re.sub(r'[<>:"/\\|?*]', "_", without_invisible(words)).strip(" .")
    return f"{words[:40].rstrip(' .') or 'script'}.wav"


def _same_audio(organization_id: int, sha256: str) -> Asset | None:
    return (
        Asset.objects.in_library()
        .filter(organization_id=organization_id, kind=Asset.Kind.AUDIO, sha256=sha256)
        .first()
    )


def _synthesize(script: Script, scratch: Path) -> Asset:
    from inference.tts import synthesize

    started = time.monotonic()
    result = synthesize(
        script.text,
        script.voice,
        rate=script.rate,
        pitch=script.pitch,
        out_path=scratch / f"script-{script.pk}.wav",
        config=tts_config(),
    )
    name = f"assets/{script.organization_id}/{uuid.uuid4().hex}.wav"
    storage.save_file(result.path, name, sha256=result.sha256, move=True)
    try:
        with transaction.atomic():
            locked = (
                Script.objects.select_for_update(of=("self",))
                .select_related("audio")
                .get(pk=script.pk)
            )
            if locked.audio is not None:  # another worker finished first (its lock lapsed)
                storage.delete(name)
                return locked.audio
            same = _same_audio(script.organization_id, result.sha256)
            if same is not None:
                # Another script with these words and this voice made these very bytes: the
                # library keeps one entry per content.
                storage.delete(name)
                locked.audio = same
                locked.save(update_fields=["audio"])
                return same
            asset = Asset.objects.create(
                organization_id=script.organization_id,
                kind=Asset.Kind.AUDIO,
                file=name,
                original_name=script_audio_name(result.text),
                container="wav",
                duration=result.duration,
                audio_codec="pcm_s16le",
                sample_rate=result.sample_rate,
                bytes=result.bytes,
                sha256=result.sha256,
                text=result.text,
                voice=result.voice.id,
                cues=[
                    {"text": s.text, "start": round(s.start, 3), "end": round(s.end, 3)}
                    for s in result.sentences
                ],
                created_by_id=script.created_by_id,
            )
            locked.audio = asset
            locked.save(update_fields=["audio"])
            record_event(
                organization=script.organization,
                action="asset.synthesized",
                target=Target.of(asset),
                file_count=1,
                total_bytes=result.bytes,
                detail={
                    "script": script.pk,
                    "voice": result.voice.id,
                    "characters": len(result.text),
                    "sentences": len(result.sentences),
                    "duration": round(result.duration, 3),
                    "sha256": result.sha256,
                },
            )
    except BaseException:
        storage.delete(name)
        raise
    logger.info(
        "script %s spoken by %s: %d sentences, %.1f s of audio in %.1f s",
        script.pk,
        result.voice.id,
        len(result.sentences),
        result.duration,
        time.monotonic() - started,
    )
    return asset
