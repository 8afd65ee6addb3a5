"""The ``piper`` engine: Piper voices (PyPI ``piper-tts``) that the operator puts in a folder.

A voice is a model ``<name>.onnx`` with its configuration ``<name>.onnx.json`` (or
``<name>.json``), as published for Piper; its id is ``piper:<name>`` and its language comes from
the configuration (``language.code``, else the espeak voice it phonemizes with). Piper reads
the text through the espeak-ng data bundled in its wheel and runs the model with onnxruntime on
the CPU. Rate changes the model's ``length_scale``; Piper has no pitch setting.

Voices whose phonemes need something Piper downloads at run time (the ``pinyin`` phonemizer's
g2pW model, for one) are not listed: this server never fetches models.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from inference.tts.base import Speech, TTSConfig, TTSError, Voice

log = logging.getLogger(__name__)

# Phonemizers that work offline with the piper-tts wheel alone.
_OFFLINE_PHONEMES = frozenset({"espeak", "text"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,120}$")
_lock = threading.Lock()


def piper_installed() -> bool:
    """Whether the piper-tts package can be imported here."""
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def _config_path(model: Path) -> Path | None:
    for candidate in (model.with_name(model.name + ".json"), model.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def _language(config: dict[str, Any]) -> str:
    code = str((config.get("language") or {}).get("code") or "")
    if not code:
        code = str((config.get("espeak") or {}).get("voice") or "")
    code = code.replace("_", "-")
    if code.lower() in ("cmn", "zh", "zh-cmn"):
        return "zh-CN"
    lang, _, region = code.partition("-")
    return f"{lang.lower()}-{region.upper()}" if region else lang.lower()


def _describe(model: Path) -> tuple[Voice | None, str]:
    """The voice a model file offers, or None and why not."""
    stem = model.name[: -len(".onnx")]
    if not _NAME.match(stem):
        return None, "its name may only hold letters, digits and . _ + -"
    config_file = _config_path(model)
    if config_file is None:
        return None, f"its configuration {model.name}.json is missing"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        phonemes = str(config.get("phoneme_type", "espeak"))
        rate = int(config["audio"]["sample_rate"])
        if not isinstance(config.get("phoneme_id_map"), dict):
            raise KeyError("phoneme_id_map")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"its configuration cannot be read ({exc.__class__.__name__}: {exc})"
    if phonemes not in _OFFLINE_PHONEMES:
        return None, f"its '{phonemes}' phonemizer needs a model Piper would download"
    if rate <= 0:
        return None, "its configuration has no valid sample rate"
    quality = str((config.get("audio") or {}).get("quality") or "")
    dataset = str(config.get("dataset") or stem)
    language = _language(config)
    name = f"{dataset} ({language}, Piper{', ' + quality if quality else ''})"
    return Voice(f"piper:{stem}", "piper", language, name, True, False), ""


def scan_voices(folder: Path) -> tuple[list[Voice], list[str]]:
    """The usable voices in ``folder``, and a sentence for each model file that is not."""
    voices: list[Voice] = []
    problems: list[str] = []
    if not folder.is_dir():
        return voices, [f"the Piper voices folder {folder} does not exist"]
    for model in sorted(folder.glob("*.onnx")):
        voice, why = _describe(model)
        if voice is None:
            problems.append(f"{model.name}: {why}")
        else:
            voices.append(voice)
    return voices, problems


@functools.lru_cache(maxsize=4)
def _load(model: str, config: str, _stamp: tuple[int, int]) -> Any:
    """A loaded PiperVoice (cached while the files are unchanged: ``_stamp``)."""
    from piper import PiperVoice

    return PiperVoice.load(model, config_path=config)


class PiperEngine:
    """Speech from Piper voice models (see the module docstring)."""

    name = "piper"

    def voices(self, config: TTSConfig) -> list[Voice]:
        """The Piper voices in the configured folder (none without piper-tts or a folder)."""
        if config.piper_voices_dir is None or not piper_installed():
            return []
        voices, problems = scan_voices(Path(config.piper_voices_dir))
        for problem in problems:
            log.warning("Piper voice not offered: %s", problem)
        return voices

    def load(self, voice: Voice, config: TTSConfig) -> Any:
        """The Piper model behind ``voice``, loaded (or :class:`TTSError` saying why not)."""
        if not piper_installed():
            raise TTSError(
                "Piper voices need the piper-tts package, which is not installed "
                "(pip install piper-tts).",
                code="engine_missing",
            )
        if config.piper_voices_dir is None:
            raise TTSError("No folder of Piper voices is configured.", code="engine_missing")
        stem = voice.id.split(":", 1)[1]
        model = Path(config.piper_voices_dir) / f"{stem}.onnx"
        config_file = _config_path(model)
        if not model.is_file() or config_file is None:
            raise TTSError(
                f"The Piper voice {stem} is no longer installed ({model.name} or its .json is "
                "missing). Choose another voice.",
                code="unknown_voice",
            )
        stat = model.stat()
        try:
            with _lock:
                return _load(str(model), str(config_file), (stat.st_mtime_ns, stat.st_size))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TTSError(
                f"The Piper voice model {model.name} could not be loaded: it is damaged or not "
                "a Piper voice (an .onnx file exported for Piper, with its .onnx.json). "
                f"Replace it. ({exc.__class__.__name__}: {str(exc)[:200]})",
                code="engine_missing",
                detail=str(exc),
            ) from exc

    def speak_all(
        self, sentences: list[str], voice: Voice, config: TTSConfig, rate: float, pitch: float
    ) -> list[Speech]:
        """Each sentence through the model in turn (onnxruntime uses every core itself)."""
        from piper import SynthesisConfig

        piper_voice = self.load(voice, config)
        settings = SynthesisConfig(length_scale=piper_voice.config.length_scale / rate, volume=0.9)
        out = []
        for sentence in sentences:
            try:
                chunks = list(piper_voice.synthesize(sentence, syn_config=settings))
            except Exception as exc:  # a broken model fails inside onnxruntime
                raise TTSError(
                    f"The Piper voice {voice.id} failed to speak: {str(exc)[:200]}",
                    code="synthesis_failed",
                    detail=str(exc),
                ) from exc
            rate_hz = piper_voice.config.sample_rate
            parts = [chunk.audio_int16_array for chunk in chunks]
            samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
            out.append(Speech(samples.astype(np.int16), rate_hz))
        return out
