"""What every voice engine shares: the descriptions, the error, the limits, PCM helpers."""

from __future__ import annotations

import dataclasses
import io
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from inference.errors import InferenceError

#: Longest script accepted, in characters (about 20 minutes of Chinese speech, 5 of English).
MAX_TEXT_CHARS = 5000
#: Speaking rate: a multiple of the voice's normal speed.
RATE_RANGE = (0.5, 2.0)
#: Pitch: a multiple of the voice's normal pitch (approximately: espeak-ng's 0-99 scale).
PITCH_RANGE = (0.5, 1.5)
#: Silence between two sentences, seconds.
SENTENCE_PAUSE = 0.3


class TTSError(InferenceError):
    """A script cannot be spoken; the message says why and what to do.

    ``code`` names the kind of problem for callers that translate or count them:
    ``empty_text``, ``text_too_long``, ``unknown_voice``, ``bad_setting``,
    ``engine_missing`` (the engine or its binary is not installed), ``synthesis_failed``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        detail: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        #: The values the message names (limits, the voice), for a translated message.
        self.params = dict(params or {})
        #: The engine's own words, for logs.
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Voice:
    """A voice members can choose for a script.

    ``id`` is stable (``"espeak:zh-cn"``, ``"piper:en_US-lessac-medium"``) and is what a job
    stores; ``language`` is a BCP 47 tag (``"zh-CN"``, ``"en-US"``); ``name`` is for people.
    """

    id: str
    engine: str
    language: str
    name: str
    supports_rate: bool = True
    supports_pitch: bool = False


@dataclasses.dataclass(frozen=True)
class TTSConfig:
    """Where the engines are: the espeak-ng binary (default: ``espeak-ng`` on ``PATH``) and
    the folder of the operator's Piper voices (``*.onnx`` with ``*.onnx.json``; None: no Piper
    voices)."""

    espeak_binary: str | None = None
    piper_voices_dir: Path | None = None
    max_chars: int = MAX_TEXT_CHARS


@dataclasses.dataclass(frozen=True)
class SentenceTiming:
    """Where one sentence is spoken in the synthesised audio (seconds from its start)."""

    text: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """A finished synthesis: the WAV file, its checksums and the timing of each sentence."""

    path: Path
    voice: Voice
    text: str
    sentences: tuple[SentenceTiming, ...]
    duration: float
    sample_rate: int
    bytes: int
    sha256: str
    crc32: int
    rate: float = 1.0
    pitch: float = 1.0


@dataclasses.dataclass
class Speech:
    """One sentence as an engine spoke it: int16 mono samples at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int


class Engine(Protocol):
    """What :mod:`inference.tts` asks of an engine."""

    name: str

    def voices(self, config: TTSConfig) -> list[Voice]:
        """The voices this engine can speak with here (none when it is not installed)."""
        ...

    def speak_all(
        self, sentences: list[str], voice: Voice, config: TTSConfig, rate: float, pitch: float
    ) -> list[Speech]:
        """Each sentence spoken, in order, or :class:`TTSError`."""
        ...


def check_setting(name: str, value: float, bounds: tuple[float, float]) -> float:
    """``value`` as a float inside ``bounds``, or :class:`TTSError` (code ``bad_setting``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    low, high = bounds
    if not math.isfinite(number) or not low <= number <= high:
        raise TTSError(
            f"The {name} must be between {low:g} and {high:g} (1 is the voice's normal "
            f"{name}); got {value!r}.",
            code="bad_setting",
            params={"setting": name, "low": low, "high": high},
        )
    return number


def pcm_from_wav(data: bytes) -> Speech:
    """Samples of a 16-bit PCM WAV, also one written to a pipe (whose header sizes are
    placeholders, as espeak-ng's ``--stdout`` writes them): the data runs to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TTSError("The voice engine returned no audio.", code="synthesis_failed")
    pos, rate, channels, bits = 12, 0, 0, 0
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if kind == b"fmt ":
            _fmt, channels, rate, _brate, _align, bits = struct.unpack(
                "<HHIIHH", data[body : body + 16]
            )
        elif kind == b"data":
            end = min(len(data), body + size)
            raw = data[body:end]
            break
        pos = body + size + (size & 1)
    else:
        raise TTSError("The voice engine returned no audio.", code="synthesis_failed")
    if bits != 16 or channels < 1 or rate <= 0:
        raise TTSError(
            f"The voice engine returned audio in an unexpected format ({bits}-bit, "
            f"{channels} channels, {rate} Hz).",
            code="synthesis_failed",
        )
    samples = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return Speech(samples.astype(np.int16), rate)


def trim_silence(samples: np.ndarray, sample_rate: int, *, keep: float = 0.02) -> np.ndarray:
    """``samples`` without the silence before the first sound and after the last one
    (``keep`` seconds of it are left at each end, so words are not clipped)."""
    if samples.size == 0:
        return samples
    magnitude = np.abs(samples.astype(np.int32))
    threshold = max(200, int(magnitude.max()) // 100)  # -44 dBFS, or 1% of the peak
    loud = np.flatnonzero(magnitude > threshold)
    if loud.size == 0:
        return samples[:0]
    margin = int(keep * sample_rate)
    return samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit mono PCM WAV file holding ``samples`` (int16)."""
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(sample_rate)
        fh.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()
