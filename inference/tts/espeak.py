"""The ``espeak`` engine: Debian's espeak-ng binary, English and Mandarin, rate and pitch.

Mandarin is spoken by espeak-ng's ``cmn-latn-pinyin`` voice from tone-numbered pinyin
(``ni3 hao3``) made by pypinyin, which picks readings from words (重庆 ``chong2 qing4``,
银行 ``yin2 hang2``). espeak-ng 1.51's ``cmn`` voice reads the tone digits aloud, so it is not
used. A sentence mixing scripts is cut into runs (:func:`~inference.tts.sentences.script_runs`)
and each run is wrapped in an SSML ``<voice>`` of its language, so one espeak-ng run speaks the
whole sentence: English words in a Chinese script are read in English, Chinese characters in an
English script in Mandarin. Digits go with the run they stand in (``3.5元`` is read in Chinese).

Each sentence is one espeak-ng process (a few tens of milliseconds); sentences are spoken two at
a time, and the text goes through stdin (never the command line, where a script starting
with ``-`` would be taken for an option).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import shutil
import subprocess
import unicodedata
from xml.sax.saxutils import escape

from inference.tts.base import Speech, TTSConfig, TTSError, Voice, pcm_from_wav
from inference.tts.sentences import is_han, script_runs

#: espeak-ng's normal speed, words per minute (``-s``), and its pitch scale (``-p`` 0-99).
NORMAL_WPM = 175
NORMAL_PITCH = 50
#: Longest one sentence may take to speak before espeak-ng is presumed stuck.
SENTENCE_TIMEOUT = 120
_WORKERS = 2


@dataclasses.dataclass(frozen=True)
class _Spec:
    id: str
    language: str
    name: str
    latin: str  # espeak-ng voice for runs in Latin script
    han: str  # espeak-ng voice for Chinese characters (as pinyin)
    chinese: bool  # the voice's own language is Mandarin


_SPECS = (
    _Spec("espeak:zh-cn", "zh-CN", "Mandarin Chinese (espeak-ng, male)", "en-us",
          "cmn-latn-pinyin", chinese=True),
    _Spec("espeak:zh-cn-f", "zh-CN", "Mandarin Chinese (espeak-ng, female)", "en-us+f3",
          "cmn-latn-pinyin+f3", chinese=True),
    _Spec("espeak:en-us", "en-US", "English, American (espeak-ng, male)", "en-us",
          "cmn-latn-pinyin", chinese=False),
    _Spec("espeak:en-us-f", "en-US", "English, American (espeak-ng, female)", "en-us+f3",
          "cmn-latn-pinyin+f3", chinese=False),
    _Spec("espeak:en-gb", "en-GB", "English, British (espeak-ng, male)", "en-gb",
          "cmn-latn-pinyin", chinese=False),
)  # fmt: skip
_BY_ID = {spec.id: spec for spec in _SPECS}
#: Ids of the espeak voices (listed only where espeak-ng and its data are installed).
VOICE_IDS = frozenset(_BY_ID)

# Chinese punctuation as espeak-ng knows it, so pauses fall where the text has them.
_PUNCTUATION = str.maketrans(
    {"。": ". ", "，": ", ", "、": ", ", "；": "; ", "：": ": ", "！": "! ", "？": "? ",
     "“": " ", "”": " ", "‘": " ", "’": " ", "《": " ", "》": " ", "「": " ", "」": " ",
     "『": " ", "』": " ", "（": ", ", "）": ", ", "【": " ", "】": " ", "…": ". ", "—": ", ",
     "·": " ", "～": " "}
)  # fmt: skip


def find_espeak(config: TTSConfig) -> str:
    """The espeak-ng executable, or :class:`TTSError` (``engine_missing``) saying how to
    install it."""
    configured = config.espeak_binary
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise TTSError(
            f"The espeak-ng program configured for speech ({configured}) is not an executable "
            "file. Install espeak-ng (apt-get install espeak-ng) or correct the setting.",
            code="engine_missing",
        )
    found = shutil.which("espeak-ng")
    if not found:
        raise TTSError(
            "Speech synthesis needs the espeak-ng program, which is not installed on this "
            "server. Install it (apt-get install espeak-ng; `make setup` does).",
            code="engine_missing",
        )
    return found


@functools.lru_cache(maxsize=4)
def _installed_voices(binary: str) -> frozenset[str]:
    """Names of the voices (and variants) this espeak-ng has."""
    try:
        proc = subprocess.run(
            [binary, "--voices"], capture_output=True, timeout=30, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    names = set()
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            names.add(parts[1].lower())
    return frozenset(names)


def _pypinyin_ready() -> bool:
    try:
        import pypinyin  # noqa: F401
    except ImportError:
        return False
    return True


def to_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin for ``cmn-latn-pinyin`` (neutral tone 5, ``ü`` as
    ``v``), Chinese punctuation made ASCII; anything else (digits) is left as it is."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    return " ".join(s.translate(_PUNCTUATION).strip() for s in syllables if s.strip())


def ssml(sentence: str, spec: _Spec) -> str:
    """The SSML espeak-ng speaks for ``sentence``: one ``<voice>`` element per script run."""
    parts = []
    for chinese, run in script_runs(unicodedata.normalize("NFKC", sentence)):
        if chinese:
            text, voice = to_pinyin(run), spec.han
        else:
            text, voice = run.translate(_PUNCTUATION), spec.latin
        text = " ".join(text.split())
        if text:
            parts.append(f'<voice name="{voice}">{escape(text)}</voice>')
    return "<speak>" + " ".join(parts) + "</speak>"


class EspeakEngine:
    """Speech from the espeak-ng program (see the module docstring)."""

    name = "espeak"

    def voices(self, config: TTSConfig) -> list[Voice]:
        """The espeak voices, when espeak-ng (and, for Mandarin, pypinyin) is installed."""
        try:
            binary = find_espeak(config)
        except TTSError:
            return []
        installed = _installed_voices(binary)
        has_mandarin = "cmn-latn-pinyin" in installed and _pypinyin_ready()
        out = []
        for spec in _SPECS:
            if (spec.chinese and not has_mandarin) or spec.latin.split("+")[0] not in installed:
                continue
            out.append(Voice(spec.id, self.name, spec.language, spec.name, True, True))
        return out

    def speak_all(
        self, sentences: list[str], voice: Voice, config: TTSConfig, rate: float, pitch: float
    ) -> list[Speech]:
        """Each sentence through its own espeak-ng run, two runs at a time."""
        binary = find_espeak(config)
        spec = _BY_ID[voice.id]
        if not _pypinyin_ready() and any(is_han(ch) for s in sentences for ch in s):
            raise TTSError(
                "Speaking Chinese needs the pypinyin package, which is not installed.",
                code="engine_missing",
            )
        wpm = round(NORMAL_WPM * rate)
        pitch_arg = max(0, min(99, round(NORMAL_PITCH * pitch)))
        cmd = [binary, "-m", "-z", "-s", str(wpm), "-p", str(pitch_arg), "-v", spec.latin]
        cmd += ["--stdout", "--stdin"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            return list(pool.map(lambda s: _run(cmd, ssml(s, spec)), sentences))


def _run(cmd: list[str], markup: str) -> Speech:
    try:
        proc = subprocess.run(
            cmd,
            input=markup.encode("utf-8"),
            capture_output=True,
            timeout=SENTENCE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TTSError(
            "espeak-ng took too long to speak a sentence.", code="synthesis_failed"
        ) from exc
    except OSError as exc:
        raise TTSError(
            f"espeak-ng could not be started ({exc.strerror}). Reinstall it "
            "(apt-get install espeak-ng).",
            code="engine_missing",
        ) from exc
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or "voice does not exist" in stderr:
        raise TTSError(
            "espeak-ng could not speak the text: "
            + (stderr.splitlines()[-1] if stderr else f"exit status {proc.returncode}")
            + ". Reinstall espeak-ng (apt-get install espeak-ng espeak-ng-data).",
            code="synthesis_failed",
            detail=stderr,
        )
    return pcm_from_wav(proc.stdout)
