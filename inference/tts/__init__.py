"""Speech synthesis: one interface over the voice engines, with per-sentence timing.

::

    from inference.tts import TTSConfig, available_voices, synthesize

    config = TTSConfig(piper_voices_dir=Path("/srv/voices"))
    voices = available_voices(config)               # [Voice(id="espeak:zh-cn", ...), ...]
    result = synthesize("你好。Welcome!", "espeak:zh-cn", out_path=wav, config=config)
    result.sentences                                # (SentenceTiming("你好。", 0.0, 0.62), ...)

Engines (:mod:`inference.tts.espeak`, the embedded default; :mod:`inference.tts.piper`, the
operator's models) speak one sentence at a time; :func:`synthesize` cuts the text into
sentences (:func:`~inference.tts.sentences.split_sentences`), trims each one's leading and
trailing silence, joins them with :data:`SENTENCE_PAUSE` of silence and records where each
sentence starts and ends, so subtitles can be timed from it
(:func:`inference.subtitles.cues_from_timings`). The WAV (16-bit mono, at the engine's rate:
22050 Hz for espeak-ng) is written atomically and its checksums taken in the same pass.

Every refusal is a :class:`TTSError` whose message a member can act on and whose ``code`` says
which kind it is. Plain library: no Django.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from inference.media.outputs import AtomicOutput
from inference.tts.base import (
    MAX_TEXT_CHARS,
    PITCH_RANGE,
    RATE_RANGE,
    SENTENCE_PAUSE,
    Engine,
    SentenceTiming,
    Synthesis,
    TTSConfig,
    TTSError,
    Voice,
    check_setting,
    trim_silence,
    wav_bytes,
)
from inference.tts.espeak import VOICE_IDS as ESPEAK_VOICE_IDS
from inference.tts.espeak import EspeakEngine, find_espeak
from inference.tts.piper import PiperEngine, piper_installed, scan_voices
from inference.tts.sentences import speakable, split_sentences

__all__ = [
    "DEFAULT_VOICE",
    "MAX_TEXT_CHARS",
    "PITCH_RANGE",
    "RATE_RANGE",
    "SENTENCE_PAUSE",
    "SentenceTiming",
    "Synthesis",
    "TTSConfig",
    "TTSError",
    "Voice",
    "available_voices",
    "check_text",
    "get_voice",
    "split_sentences",
    "synthesize",
]

#: The voice used when none is chosen: espeak-ng's Mandarin, which also reads English words.
DEFAULT_VOICE = "espeak:zh-cn"

_ENGINES: dict[str, Engine] = {"espeak": EspeakEngine(), "piper": PiperEngine()}


def available_voices(config: TTSConfig | None = None) -> list[Voice]:
    """Every voice that can speak on this server: espeak-ng's (when it is installed), then
    the Piper voices in ``config.piper_voices_dir``."""
    config = config or TTSConfig()
    return [voice for engine in _ENGINES.values() for voice in engine.voices(config)]


def get_voice(voice_id: str, config: TTSConfig | None = None) -> Voice:
    """The available voice ``voice_id``, or :class:`TTSError`: ``unknown_voice``, or
    ``engine_missing`` when the voice's engine is not installed here."""
    config = config or TTSConfig()
    engine_name, _, name = str(voice_id).partition(":")
    engine = _ENGINES.get(engine_name)
    if engine is not None:
        for voice in engine.voices(config):
            if voice.id == voice_id:
                return voice
    why = ""
    if engine_name == "espeak" and voice_id in ESPEAK_VOICE_IDS:
        find_espeak(config)  # raises engine_missing when espeak-ng is absent
        why = " (espeak-ng lacks its voice data or pypinyin is missing)"
    elif engine_name == "piper":
        if config.piper_voices_dir is None or not piper_installed():
            raise TTSError(
                "Piper voices need the piper-tts package and a configured voices folder, and "
                "this server has not both. Choose another voice.",
                code="engine_missing",
            )
        _, problems = scan_voices(Path(config.piper_voices_dir))
        why = next((f" ({p})" for p in problems if p.startswith(f"{name}.onnx:")), "")
    choices = ", ".join(v.id for v in available_voices(config)) or "none"
    raise TTSError(
        f"There is no usable voice '{voice_id}' here{why}. Choose one of: {choices}.",
        code="unknown_voice",
        params={"voice": voice_id},
    )


def check_text(text: str, config: TTSConfig | None = None) -> list[str]:
    """The sentences ``text`` will be spoken as, or :class:`TTSError` when it is empty
    (nothing to say) or longer than ``config.max_chars``. Cheap: for validating a form or a
    sheet before anything is queued."""
    config = config or TTSConfig()
    if not isinstance(text, str):
        raise TTSError("The script must be text.", code="empty_text")
    stripped = text.strip()
    if not speakable(stripped):
        raise TTSError(
            "The script is empty: write the words the presenter should say.", code="empty_text"
        )
    if len(stripped) > config.max_chars:
        raise TTSError(
            f"The script has {len(stripped)} characters; at most {config.max_chars} can be "
            "spoken in one video. Shorten it or split it into several videos.",
            code="text_too_long",
            params={"chars": len(stripped), "limit": config.max_chars},
        )
    return split_sentences(stripped)


def synthesize(
    text: str,
    voice_id: str = DEFAULT_VOICE,
    *,
    rate: float = 1.0,
    pitch: float = 1.0,
    out_path: str | os.PathLike[str],
    config: TTSConfig | None = None,
) -> Synthesis:
    """Speak ``text`` with ``voice_id`` into the WAV file ``out_path`` and time its sentences.

    ``rate`` and ``pitch`` are multiples of the voice's normal speed and pitch
    (:data:`RATE_RANGE`, :data:`PITCH_RANGE`); a voice without a pitch setting refuses any
    pitch but 1. The file appears only when complete. Raises :class:`TTSError` for empty or
    too long text, an unknown voice, a bad setting, a missing engine or a failed synthesis.
    """
    config = config or TTSConfig()
    sentences = check_text(text, config)
    voice = get_voice(voice_id, config)
    rate = check_setting("rate", rate, RATE_RANGE)
    pitch = check_setting("pitch", pitch, PITCH_RANGE)
    if pitch != 1.0 and not voice.supports_pitch:
        raise TTSError(
            f"The voice {voice.name} has no pitch setting; leave the pitch at 1.",
            code="bad_setting",
        )
    if rate != 1.0 and not voice.supports_rate:
        raise TTSError(
            f"The voice {voice.name} has no rate setting; leave the rate at 1.",
            code="bad_setting",
        )
    speeches = _ENGINES[voice.engine].speak_all(sentences, voice, config, rate, pitch)
    sample_rate = speeches[0].sample_rate
    pause = np.zeros(round(SENTENCE_PAUSE * sample_rate), dtype=np.int16)
    pieces: list[np.ndarray] = []
    timings: list[SentenceTiming] = []
    at = 0
    for sentence, speech in zip(sentences, speeches, strict=True):
        if speech.sample_rate != sample_rate:
            raise TTSError("The voice changed its sample rate mid-text.", code="synthesis_failed")
        samples = trim_silence(speech.samples, sample_rate)
        if samples.size == 0:
            continue  # nothing audible (e.g. a lone symbol): no pause, no subtitle
        if pieces:
            pieces.append(pause)
            at += pause.size
        timings.append(
            SentenceTiming(sentence, at / sample_rate, (at + samples.size) / sample_rate)
        )
        pieces.append(samples)
        at += samples.size
    if not pieces:
        raise TTSError(
            f"The voice {voice.name} produced no sound for this text (is it in a language the "
            "voice speaks?).",
            code="synthesis_failed",
        )
    out = Path(out_path)
    with AtomicOutput(out) as target:
        target.path.write_bytes(wav_bytes(np.concatenate(pieces), sample_rate))
        digest = target.commit()
    return Synthesis(
        path=out,
        voice=voice,
        text=text.strip(),
        sentences=tuple(timings),
        duration=at / sample_rate,
        sample_rate=sample_rate,
        bytes=digest.bytes,
        sha256=digest.sha256,
        crc32=digest.crc32,
        rate=rate,
        pitch=pitch,
    )
