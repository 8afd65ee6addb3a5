"""Text to speech (inference/tts): real espeak-ng speech in English, Mandarin and both mixed,
sentence timing, rate and pitch, the refusals, and a Piper voice model built for the test.

The Piper model is written here as ONNX protobuf bytes by hand (the ``onnx`` package is not a
dependency): it has Piper's interface (``input``, ``input_lengths``, ``scales`` -> audio) and
turns each phoneme id into ``hop * length_scale`` samples of a tone, so piper-tts runs its whole
path (espeak phonemes, ids, onnxruntime) on it.
"""

from __future__ import annotations

import itertools
import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from inference.audio import load_audio
from inference.media import probe
from inference.tts import (
    MAX_TEXT_CHARS,
    SENTENCE_PAUSE,
    TTSConfig,
    TTSError,
    available_voices,
    check_text,
    get_voice,
    split_sentences,
    synthesize,
)
from inference.tts.espeak import _BY_ID, ssml
from inference.tts.sentences import script_runs

ENGLISH = (
    "Good morning, dear partners. Dr. Lee will show you the new model at 10 a.m. on Jan. 5. "
    "It costs 3.5 percent less than last year! Do you want to know more?"
)
CHINESE = "各位经销商朋友，大家好。欢迎来到北京！今年的新车型价格降低了百分之三点五；请联系我们。"


def _samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as fh:
        assert fh.getnchannels() == 1 and fh.getsampwidth() == 2
        rate = fh.getframerate()
        data = np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768, rate


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _check_timing(result, expected_sentences: list[str]) -> None:
    """Sentences in order, monotonic, covering the file from 0 to its end, speech inside each
    span and silence in the pauses between them."""
    sentences = result.sentences
    assert [s.text for s in sentences] == expected_sentences
    assert sentences[0].start == 0.0
    assert sentences[-1].end == pytest.approx(result.duration, abs=1e-6)
    for s in sentences:
        assert s.end > s.start
    for a, b in itertools.pairwise(sentences):
        assert b.start == pytest.approx(a.end + SENTENCE_PAUSE, abs=1e-3)
    samples, rate = _samples(result.path)
    assert len(samples) / rate == pytest.approx(result.duration, abs=1e-3)
    for s in sentences:
        assert _rms(samples[int(s.start * rate) : int(s.end * rate)]) > 0.02
    for a, b in itertools.pairwise(sentences):
        assert _rms(samples[int(a.end * rate) + 10 : int(b.start * rate) - 10]) < 0.002


# --------------------------------------------------------------------------- sentences


def test_sentences_split_at_marks_but_not_inside_numbers_or_abbreviations() -> None:
    assert split_sentences(ENGLISH) == [
        "Good morning, dear partners.",
        "Dr. Lee will show you the new model at 10 a.m. on Jan. 5.",
        "It costs 3.5 percent less than last year!",
        "Do you want to know more?",
    ]
    assert split_sentences(
        "J. K. Rowling visited heygem.ai... Then she left. “Great!” he said."
    ) == [
        "J. K. Rowling visited heygem.ai...",
        "Then she left.",
        "“Great!”",
        "he said.",
    ]
    assert split_sentences(CHINESE) == [
        "各位经销商朋友，大家好。",
        "欢迎来到北京！",
        "今年的新车型价格降低了百分之三点五；",
        "请联系我们。",
    ]
    assert split_sentences("价格是3.5元。“真的吗？”\n第二行没有标点\n\n……") == [
        "价格是3.5元。",
        "“真的吗？”",
        "第二行没有标点……",
    ]


def test_long_sentences_are_cut_at_clause_marks() -> None:
    clause = "我们为全国各地的经销商准备了专属的欢迎视频"
    text = "，".join([clause] * 6) + "。"
    parts = split_sentences(text, max_width=60)
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(p.endswith(("，", "。")) for p in parts)


def test_mixed_text_goes_to_the_voice_of_its_script() -> None:
    assert script_runs("价格是3.5元，iPhone 15很好") == [
        (True, "价格是3.5元，"),
        (False, "iPhone 15"),
        (True, "很好"),
    ]
    markup = ssml("欢迎使用HeyGem平台 & <更多>", _BY_ID["espeak:zh-cn"])
    assert '<voice name="cmn-latn-pinyin">huan1 ying2 shi3 yong4</voice>' in markup
    assert '<voice name="en-us">HeyGem</voice>' in markup
    assert "&amp;" in markup and "<更" not in markup  # escaped for SSML


# --------------------------------------------------------------------------- espeak-ng


def test_voices_are_listed_with_language_and_settings() -> None:
    voices = {v.id: v for v in available_voices()}
    assert {"espeak:en-us", "espeak:zh-cn"} <= set(voices)
    assert voices["espeak:zh-cn"].language == "zh-CN"
    assert voices["espeak:en-us"].language == "en-US"
    assert all(
        v.supports_rate and v.supports_pitch for v in voices.values() if v.engine == "espeak"
    )


def test_english_speech_with_sentence_timing(tmp_path: Path) -> None:
    out = tmp_path / "en.wav"
    result = synthesize(ENGLISH, "espeak:en-us", out_path=out)
    assert result.path == out and out.stat().st_size == result.bytes
    info = probe(out)
    assert info.has_audio and info.channels == 1 and info.sample_rate == result.sample_rate
    assert info.duration == pytest.approx(result.duration, abs=0.01)
    words = len(ENGLISH.split())
    assert words / 5 < result.duration < words / 1.2  # 1.2 to 5 words a second
    _check_timing(result, split_sentences(ENGLISH))
    # The renderer reads it (16 kHz mono through ffmpeg).
    assert len(load_audio(out)) / 16000 == pytest.approx(result.duration, abs=0.01)


def test_mandarin_speech_with_sentence_timing(tmp_path: Path) -> None:
    result = synthesize(CHINESE, "espeak:zh-cn", out_path=tmp_path / "zh.wav")
    chars = sum(1 for ch in CHINESE if "\u4e00" <= ch <= "\u9fff")
    assert chars / 8 < result.duration < chars / 2  # 2 to 8 characters a second
    _check_timing(result, split_sentences(CHINESE))


def test_mixed_chinese_and_english(tmp_path: Path) -> None:
    text = "欢迎使用HeyGem Studio平台。We make fifty videos for our dealers，每个都不一样。"
    result = synthesize(text, "espeak:zh-cn", out_path=tmp_path / "mixed.wav")
    _check_timing(result, split_sentences(text))
    # English words are spoken (in English), not dropped: the Mandarin voice reads an English
    # sentence about as long as the English voice does.
    english = "We make fifty videos for our dealers."
    by_zh = synthesize(english, "espeak:zh-cn", out_path=tmp_path / "a.wav").duration
    by_en = synthesize(english, "espeak:en-us", out_path=tmp_path / "b.wav").duration
    assert 0.8 < by_zh / by_en < 1.25
    # ... and the English voice reads Chinese characters (in Mandarin) instead of skipping them.
    short = synthesize("Welcome.", "espeak:en-us", out_path=tmp_path / "c.wav").duration
    longer = synthesize("Welcome to 北京欢迎你。", "espeak:en-us", out_path=tmp_path / "d.wav")
    assert longer.duration > short + 1.0


def _median_f0(path: Path) -> float:
    """Median pitch of the voiced 40 ms frames, by autocorrelation (60-400 Hz)."""
    x, rate = _samples(path)
    size, f0s = int(0.04 * rate), []
    for start in range(0, len(x) - size, size):
        frame = x[start : start + size]
        if _rms(frame) < 0.05:
            continue
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[size - 1 :]
        lo, hi = rate // 400, rate // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            f0s.append(rate / lag)
    assert len(f0s) > 5
    return float(np.median(f0s))


def test_rate_and_pitch(tmp_path: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    normal = synthesize(text, "espeak:en-us", out_path=tmp_path / "n.wav")
    fast = synthesize(text, "espeak:en-us", rate=2.0, out_path=tmp_path / "f.wav")
    slow = synthesize(text, "espeak:en-us", rate=0.5, out_path=tmp_path / "s.wav")
    assert fast.duration < 0.7 * normal.duration < 0.7 * 0.7 * slow.duration
    low = synthesize(text, "espeak:en-us", pitch=0.6, out_path=tmp_path / "lo.wav")
    high = synthesize(text, "espeak:en-us", pitch=1.4, out_path=tmp_path / "hi.wav")
    assert _median_f0(high.path) > 1.2 * _median_f0(low.path)
    assert (high.rate, high.pitch) == (1.0, 1.4)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("text", ["", "   \n ", "。。。！", "... --- !!!"])
def test_empty_text_is_refused(tmp_path: Path, text: str) -> None:
    out = tmp_path / "x.wav"
    with pytest.raises(TTSError, match="empty") as info:
        synthesize(text, "espeak:en-us", out_path=out)
    assert info.value.code == "empty_text"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_text_over_the_limit_is_refused(tmp_path: Path) -> None:
    text = "好" * (MAX_TEXT_CHARS + 1)
    with pytest.raises(TTSError, match=f"at most {MAX_TEXT_CHARS}") as info:
        synthesize(text, "espeak:zh-cn", out_path=tmp_path / "x.wav")
    assert info.value.code == "text_too_long"
    assert info.value.params == {"chars": MAX_TEXT_CHARS + 1, "limit": MAX_TEXT_CHARS}
    assert check_text("好" * MAX_TEXT_CHARS)  # the limit itself is allowed
    with pytest.raises(TTSError, match="at most 10"):
        check_text("Hello there, friends.", TTSConfig(max_chars=10))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("voice_id", ["espeak:klingon", "robot", "piper:nobody", ""])
def test_unknown_voice_is_refused(tmp_path: Path, voice_id: str) -> None:
    config = TTSConfig(piper_voices_dir=tmp_path)
    with pytest.raises(TTSError, match="Choose one of: espeak:zh-cn") as info:
        synthesize("Hello.", voice_id, out_path=tmp_path / "x.wav", config=config)
    assert info.value.code == "unknown_voice"
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(("setting", "value"), [("rate", 3.0), ("rate", 0.1), ("pitch", 2.0)])
def test_settings_out_of_range_are_refused(tmp_path: Path, setting: str, value: float) -> None:
    with pytest.raises(TTSError, match=f"The {setting} must be between") as info:
        synthesize("Hello.", "espeak:en-us", out_path=tmp_path / "x.wav", **{setting: value})
    assert info.value.code == "bad_setting"


def test_missing_espeak_binary_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TTSConfig(espeak_binary=str(tmp_path / "no" / "espeak-ng"))
    with pytest.raises(TTSError, match="apt-get install espeak-ng") as info:
        synthesize("Hello.", "espeak:en-us", out_path=tmp_path / "x.wav", config=config)
    assert info.value.code == "engine_missing"
    assert not [v for v in available_voices(config) if v.engine == "espeak"]
    # Not on PATH either: the same refusal, and no espeak voice is offered.
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not [v for v in available_voices() if v.engine == "espeak"]
    with pytest.raises(TTSError, match="espeak-ng program, which is not installed") as info:
        get_voice("espeak:zh-cn")
    assert info.value.code == "engine_missing"


# --------------------------------------------------------------------------- Piper


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    """One protobuf field: an int as a varint, bytes/str length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


_FLOAT, _INT64 = 1, 7  # onnx.TensorProto.DataType


def _tensor(name: str, array: np.ndarray) -> bytes:
    kind = _FLOAT if array.dtype == np.float32 else _INT64
    raw = array.astype("<f4" if kind == _FLOAT else "<i8").tobytes()
    dims = b"".join(_field(1, d) for d in array.shape)
    return dims + _field(2, kind) + _field(8, name) + _field(9, raw)


def _node(op: str, inputs: list[str], outputs: list[str], **ints: int) -> bytes:
    body = b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs)
    body += _field(4, op)
    for name, value in ints.items():  # AttributeProto: name, i, type=INT
        body += _field(5, _field(1, name) + _field(3, value) + _field(20, 2))
    return body


def _value_info(name: str, kind: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, kind) + _field(2, shape)))


def tiny_piper_onnx(num_symbols: int = 256, sample_rate: int = 22050, hop: int = 512) -> bytes:
    """An ONNX model with Piper's inputs and output: every phoneme id becomes
    ``hop * length_scale`` samples of a tone whose pitch depends on the id."""
    rng = np.random.default_rng(0)
    i64 = np.int64
    initializers = [
        _tensor("pitch_table", (110 + 120 * rng.random(num_symbols)).astype(np.float32)),
        _tensor("hop", np.array(hop, dtype=np.float32)),
        _tensor("one", np.array(1, dtype=i64)),
        _tensor("axes0", np.array([0], dtype=i64)),
        _tensor("axes_last", np.array([-1], dtype=i64)),
        _tensor("shape_head", np.array([1, 1], dtype=i64)),
        _tensor("flat", np.array([-1], dtype=i64)),
        _tensor("axis0", np.array(0, dtype=i64)),
        _tensor("radians", np.array(2 * np.pi / sample_rate, dtype=np.float32)),
        _tensor("amplitude", np.array(0.5, dtype=np.float32)),
        _tensor("out_shape", np.array([1, 1, -1], dtype=i64)),
    ]
    nodes = [
        _node("Gather", ["scales", "one"], ["length_scale"], axis=0),
        _node("Mul", ["hop", "length_scale"], ["per_id_f"]),
        _node("Floor", ["per_id_f"], ["per_id_floor"]),
        _node("Cast", ["per_id_floor"], ["per_id"], to=_INT64),
        _node("Unsqueeze", ["per_id", "axes0"], ["per_id_1d"]),
        _node("Gather", ["pitch_table", "input"], ["pitches"], axis=0),
        _node("Unsqueeze", ["pitches", "axes_last"], ["pitches3"]),
        _node("Concat", ["shape_head", "per_id_1d"], ["expand_to"], axis=0),
        _node("Expand", ["pitches3", "expand_to"], ["per_sample"]),
        _node("Reshape", ["per_sample", "flat"], ["freq"]),
        _node("CumSum", ["freq", "axis0"], ["cycles"]),
        _node("Mul", ["cycles", "radians"], ["phase"]),
        _node("Sin", ["phase"], ["wave"]),
        _node("Mul", ["wave", "amplitude"], ["audio"]),
        _node("Reshape", ["audio", "out_shape"], ["output"]),
    ]
    graph = b"".join(_field(1, n) for n in nodes) + _field(2, "tiny_piper")
    graph += b"".join(_field(5, t) for t in initializers)
    graph += _field(11, _value_info("input", _INT64, [1, "phonemes"]))
    graph += _field(11, _value_info("input_lengths", _INT64, [1]))
    graph += _field(11, _value_info("scales", _FLOAT, [3]))
    graph += _field(12, _value_info("output", _FLOAT, [1, 1, "time"]))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(2, "heygem-tests") + _field(7, graph) + _field(8, opset)


def _piper_config(**overrides: object) -> dict[str, object]:
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    config: dict[str, object] = {
        "audio": {"sample_rate": 22050, "quality": "x_low"},
        "espeak": {"voice": "en-us"},
        "language": {"code": "en_US"},
        "dataset": "tiny-test",
        "num_symbols": 256,
        "num_speakers": 1,
        "phoneme_type": "espeak",
        "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
    }
    config.update(overrides)
    return config


@pytest.fixture
def piper_voices(tmp_path: Path) -> Path:
    """A voices folder: one working model, a damaged one, one needing a download, a model
    without its json."""
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "en_US-tiny-test.onnx").write_bytes(tiny_piper_onnx())
    (folder / "en_US-tiny-test.onnx.json").write_text(json.dumps(_piper_config()))
    (folder / "en_GB-broken.onnx").write_bytes(b"\x08\x08" + struct.pack("<I", 7) * 40)
    (folder / "en_GB-broken.onnx.json").write_text(
        json.dumps(_piper_config(language={"code": "en_GB"}))
    )
    (folder / "zh_CN-pinyin.onnx").write_bytes(tiny_piper_onnx())
    (folder / "zh_CN-pinyin.onnx.json").write_text(json.dumps(_piper_config(phoneme_type="pinyin")))
    (folder / "lonely.onnx").write_bytes(tiny_piper_onnx())
    return folder


def test_piper_voices_are_listed_with_their_language(piper_voices: Path) -> None:
    voices = {v.id: v for v in available_voices(TTSConfig(piper_voices_dir=piper_voices))}
    assert voices["piper:en_US-tiny-test"].language == "en-US"
    assert voices["piper:en_GB-broken"].language == "en-GB"
    assert "piper:zh_CN-pinyin" not in voices  # would need g2pW downloaded
    assert "piper:lonely" not in voices  # no configuration
    tiny = voices["piper:en_US-tiny-test"]
    assert tiny.engine == "piper" and tiny.supports_rate and not tiny.supports_pitch
    assert "tiny-test" in tiny.name
    # Without a folder there are no Piper voices (espeak's remain).
    assert not [v for v in available_voices() if v.engine == "piper"]


def test_piper_synthesis_through_a_real_model(tmp_path: Path, piper_voices: Path) -> None:
    config = TTSConfig(piper_voices_dir=piper_voices)
    text = "Hello there. This is a tiny Piper voice! It speaks every sentence."
    result = synthesize(text, "piper:en_US-tiny-test", out_path=tmp_path / "p.wav", config=config)
    assert result.sample_rate == 22050 and result.voice.engine == "piper"
    _check_timing(result, split_sentences(text))
    fast = synthesize(
        text, "piper:en_US-tiny-test", rate=2.0, out_path=tmp_path / "f.wav", config=config
    )
    speech = result.duration - 2 * SENTENCE_PAUSE
    assert fast.duration - 2 * SENTENCE_PAUSE == pytest.approx(speech / 2, rel=0.1)
    with pytest.raises(TTSError, match="has no pitch setting") as info:
        synthesize(
            text, "piper:en_US-tiny-test", pitch=1.2, out_path=tmp_path / "x.wav", config=config
        )
    assert info.value.code == "bad_setting"


def test_piper_refuses_a_damaged_model_and_unusable_voices(
    tmp_path: Path, piper_voices: Path
) -> None:
    config = TTSConfig(piper_voices_dir=piper_voices)
    out = tmp_path / "x.wav"
    with pytest.raises(TTSError, match=r"en_GB-broken\.onnx could not be loaded") as info:
        synthesize("Hello.", "piper:en_GB-broken", out_path=out, config=config)
    assert info.value.code == "engine_missing"
    with pytest.raises(TTSError, match="phonemizer needs a model Piper would download") as info:
        synthesize("你好。", "piper:zh_CN-pinyin", out_path=out, config=config)
    assert info.value.code == "unknown_voice"
    with pytest.raises(TTSError, match=r"lonely\.onnx\.json is missing"):
        synthesize("Hello.", "piper:lonely", out_path=out, config=config)
    with pytest.raises(TTSError, match="piper-tts package and a configured voices folder") as info:
        synthesize("Hello.", "piper:en_US-tiny-test", out_path=out)
    assert info.value.code == "engine_missing"
    assert not out.exists()
