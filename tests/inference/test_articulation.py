"""Articulation features from speech: real espeak-ng speech (English, Mandarin), sustained
vowels (espeak-ng's and synthetic ones with textbook formants), silence and tone bursts."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import numpy as np
import pytest
import torch

from inference.articulation import (
    CLOSED_OPEN,
    CLOSURE_MAX_S,
    CLOSURE_RELEASE_S,
    LEAD_S,
    PAUSE_RELEASE_S,
    Articulation,
    _release,
    articulation,
)
from inference.audio import load_audio
from tests.inference.conftest import SAMPLE_RATE, vowel

FPS = 25.0

ENGLISH = "Hello there. My mother made a big apple pie, and we ate it by the window."
MANDARIN = "ni3 hao3, wo3 shi4 shu4 zi4 ren2. wo3 men5 bu4 pa4 mao1."

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make test-deps)"
)


@pytest.fixture(scope="module")
def say(tmp_path_factory: pytest.TempPathFactory):
    """``say(text, voice, speed=...)``: espeak-ng's speech as 16 kHz mono float32 samples (or
    at ``rate``), made once per text in a module tmp dir."""
    folder = tmp_path_factory.mktemp("espeak")
    made: dict[tuple[str, str, int, int], np.ndarray] = {}

    def speak(text: str, voice: str = "en", *, speed: int = 150, rate: int = SAMPLE_RATE):
        key = (text, voice, speed, rate)
        if key not in made:
            wav = folder / f"speech{len(made)}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
                check=True,
                capture_output=True,
            )
            made[key] = load_audio(wav, sample_rate=rate)
        return made[key]

    return speak


def features(samples: np.ndarray, rate: int = SAMPLE_RATE, **kwargs) -> Articulation:
    n_frames = int(np.ceil(len(samples) / rate * FPS))
    return articulation(samples, rate, FPS, n_frames, **kwargs)


def voiced(art: Articulation, at_least: float = 0.05) -> np.ndarray:
    """The frames where the mouth is open at all."""
    return art.open.numpy() > at_least


def formant_vowel(
    f1: float, f2: float, f3: float, seconds: float = 1.0, pitch: float = 120.0
) -> np.ndarray:
    """A vowel from a source-filter model: harmonics of ``pitch`` falling 6 dB/octave (glottal
    source and lip radiation) shaped by three formant resonances (80, 90, 120 Hz wide)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k in range(1, int(4000 / pitch)):
        f = k * pitch
        gain = 1.0 / k
        for formant, width in ((f1, 80.0), (f2, 90.0), (f3, 120.0)):
            gain *= formant**2 / np.hypot(formant**2 - f**2, width * f)
        out += gain * np.sin(2 * np.pi * f * t + k)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def loudness_envelope(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """An independent loudness curve: RMS dB of each video frame's samples, 40 dB -> [0, 1]."""
    per = SAMPLE_RATE / FPS
    rms = np.array(
        [
            np.sqrt(np.mean(samples[int(i * per) : int((i + 1) * per)] ** 2) + 1e-12)
            for i in range(n_frames)
        ]
    )
    db = 20 * np.log10(rms)
    return np.clip((db - (db.max() - 40)) / 40, 0, 1)


def best_lag(open_: np.ndarray, envelope: np.ndarray, max_lag: int = 5) -> tuple[int, float]:
    """The shift ``k`` maximising corr(open[i], envelope[i + k]), and that correlation."""
    n = len(open_)
    scores = {}
    for k in range(-max_lag, max_lag + 1):
        a = open_[max(0, -k) : n - max(0, k)]
        b = envelope[max(0, k) : n - max(0, -k)]
        scores[k] = float(np.corrcoef(a, b)[0, 1])
    k = max(scores, key=scores.get)
    return k, scores[k]


# --------------------------------------------------------------------------- edge cases


def test_silence_and_noise_give_a_closed_neutral_mouth() -> None:
    for quiet in (
        np.zeros(2 * SAMPLE_RATE, dtype=np.float32),
        np.random.default_rng(0).normal(0, 1e-4, 2 * SAMPLE_RATE).astype(np.float32),
        np.random.default_rng(1).normal(0, 0.05, 2 * SAMPLE_RATE).astype(np.float32),  # hiss
    ):
        art = features(quiet)
        assert art.open.shape == art.round_spread.shape == (50,)
        assert float(art.open.abs().max()) == 0.0
        assert float(art.round_spread.abs().max()) == 0.0


def test_types_devices_and_odd_inputs() -> None:
    samples = np.concatenate([np.zeros(4000), vowel(0.5), np.zeros(4000)]).astype(np.float32)
    art = articulation(samples, SAMPLE_RATE, FPS, 25)
    assert isinstance(art, Articulation) and len(art) == 25
    assert art.open.dtype == art.round_spread.dtype == torch.float32
    assert art.open.device.type == "cpu" and (art.fps, art.lead_s) == (FPS, LEAD_S)
    assert float(art.open.min()) >= 0 and float(art.open.max()) <= 1
    assert float(art.round_spread.min()) >= -1 and float(art.round_spread.max()) <= 1
    # A tensor, float64 or shaped (1, n) is the same signal.
    as_tensor = articulation(torch.from_numpy(samples)[None], SAMPLE_RATE, FPS, 25, device="cpu")
    torch.testing.assert_close(as_tensor.open, art.open)
    torch.testing.assert_close(
        articulation(samples.astype(np.float64), SAMPLE_RATE, FPS, 25).open, art.open
    )
    # Frames past the end of the audio are closed; no frames, no audio: nothing to do.
    longer = articulation(samples, SAMPLE_RATE, FPS, 40)
    torch.testing.assert_close(longer.open[:20], art.open[:20])
    assert float(longer.open[30:].abs().max()) == 0.0
    assert articulation(samples, SAMPLE_RATE, FPS, 0).open.shape == (0,)
    assert float(articulation(np.zeros(0), SAMPLE_RATE, FPS, 5).open.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="one channel"):
        articulation(np.stack([samples, samples]), SAMPLE_RATE, FPS, 25)
    with pytest.raises(ValueError, match="sample_rate"):
        articulation(samples, 4000, FPS, 25)


def test_very_short_and_broken_audio() -> None:
    for n in (1, 100, 600):  # one sample, 6 ms, 37 ms (shorter than one analysis window)
        art = articulation(vowel(0.1)[-n:], SAMPLE_RATE, FPS, 3)
        assert art.open.shape == (3,) and bool(torch.isfinite(art.open).all())
        assert bool(torch.isfinite(art.round_spread).all())
    # 40 ms of sound between silences is one frame's worth of opening.
    burst = np.concatenate([np.zeros(4000), vowel(0.04), np.zeros(4000)]).astype(np.float32)
    open_ = articulation(burst, SAMPLE_RATE, FPS, 14, lead_s=0.0).open.numpy()
    assert open_[:5].max() == 0.0 and open_[6:8].max() > 0.4
    burst[100] = np.nan  # a decoder glitch must not poison the whole curve
    broken = articulation(burst, SAMPLE_RATE, FPS, 14, lead_s=0.0).open.numpy()
    np.testing.assert_allclose(broken, open_, atol=1e-6)


def test_release_filter_matches_the_sequential_definition() -> None:
    """The cummax form equals y[i] = max(x[i], y[i-1] * exp(-hop / tau[i])), where tau is the
    short CLOSURE_RELEASE_S inside short quiet stretches between sounds."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.3, 1, 600)
    x[100:160] = 0  # a 600 ms pause: slow release
    x[300:310] = 0.05  # a 100 ms closure: fast
    x[400:450:7] = 0  # single-frame dips: fast too
    hop = 0.01
    quiet = x < CLOSED_OPEN
    tau = np.full_like(x, PAUSE_RELEASE_S)
    start = 0
    for i in range(1, len(x) + 1):
        if i == len(x) or quiet[i] != quiet[start]:
            if quiet[start] and start > 0 and i < len(x) and (i - start) * hop <= CLOSURE_MAX_S:
                tau[start:i] = CLOSURE_RELEASE_S
            start = i
    y = np.zeros_like(x)
    for i, v in enumerate(x):
        y[i] = max(v, (y[i - 1] if i else 0.0) * np.exp(-hop / tau[i]))
    assert (tau[300:310] == CLOSURE_RELEASE_S).all() and (tau[100:160] == PAUSE_RELEASE_S).all()
    np.testing.assert_allclose(_release(torch.from_numpy(x), hop).numpy(), y, rtol=1e-9)


# --------------------------------------------------------------------------- timing


def test_opens_within_a_frame_and_closes_over_several() -> None:
    """1 s silence, 0.6 s of a vowel, 1 s silence, no lead: frames 25..39 hold the vowel."""
    samples = np.concatenate([np.zeros(SAMPLE_RATE), vowel(0.6), np.zeros(SAMPLE_RATE)])
    art = articulation(samples.astype(np.float32), SAMPLE_RATE, FPS, 65, lead_s=0.0)
    open_ = art.open.numpy()
    plateau = open_[27:38].mean()
    assert plateau > 0.8
    assert open_[:24].max() == 0.0  # shut until the sound (the analysis window reaches 16 ms)
    assert open_[25] > 0.8 * plateau  # the first frame of the sound is already open
    # After the sound (frame 40 on) the mouth closes over several frames, steadily.
    tail = open_[40:52]
    assert tail[0] > 0.3 * plateau and tail[1] > 0.1 * plateau
    assert (np.diff(tail) <= 1e-6).all()
    assert tail[-1] < 0.02 and open_[55:].max() == 0.0


def test_lead_moves_the_mouth_before_the_sound() -> None:
    samples = np.concatenate([np.zeros(SAMPLE_RATE), vowel(0.6), np.zeros(SAMPLE_RATE)])
    samples = samples.astype(np.float32)
    on_time = articulation(samples, SAMPLE_RATE, FPS, 65, lead_s=0.0).open.numpy()
    early = articulation(samples, SAMPLE_RATE, FPS, 65).open.numpy()  # LEAD_S = 40 ms = 1 frame
    later = articulation(samples, SAMPLE_RATE, FPS, 65, lead_s=0.08).open.numpy()
    np.testing.assert_allclose(early[:-1], on_time[1:], atol=1e-5)
    np.testing.assert_allclose(later[:-2], on_time[2:], atol=1e-5)
    assert early[24] > 0.5 and on_time[24] < 0.2


def test_short_gaps_close_fast_long_pauses_slowly() -> None:
    """A stop closure (60 ms of silence between two vowels) shuts the mouth; a pause of the
    same loudness contour but 400 ms long lets it close slowly."""
    a = vowel(0.4)
    gap = np.concatenate([a, np.zeros(960), a]).astype(np.float32)
    pause = np.concatenate([a, np.zeros(6400), a]).astype(np.float32)
    rate = 100.0  # one video frame per analysis frame, to see inside the gap
    art_gap = articulation(gap, SAMPLE_RATE, rate, 86, lead_s=0.0).open.numpy()
    art_pause = articulation(pause, SAMPLE_RATE, rate, 120, lead_s=0.0).open.numpy()
    assert art_gap[20:38].min() > 0.7 and art_pause[20:38].min() > 0.7
    # The sound stops at 0.4 s (analysis frame 40): the closure shuts the mouth within 50 ms
    # (the 32 ms analysis window blurs the edge), the pause more than twice as slowly.
    to_shut_gap = int(np.argmax(art_gap[40:] < 0.1))
    to_shut_pause = int(np.argmax(art_pause[40:] < 0.1))
    assert 0 < to_shut_gap <= 5 and art_gap[40:47].min() < 0.06
    assert to_shut_pause >= 2 * to_shut_gap and to_shut_pause >= 8
    assert art_pause[70:78].max() < 0.02  # and it is shut in the middle of the pause


# --------------------------------------------------------------------------- vowels


@pytest.mark.parametrize(
    ("f1", "f2", "f3", "opening", "shape"),
    [
        (730, 1090, 2440, (0.8, 1.0), (-0.15, 0.15)),  # /a/ "father": open, neutral
        (270, 2290, 3010, (0.3, 0.55), (0.6, 1.01)),  # /i/ "beet": close, spread
        (300, 870, 2240, (0.3, 0.55), (-1.0, -0.5)),  # /u/ "boot": close, rounded
        (570, 840, 2410, (0.55, 0.85), (-0.6, -0.15)),  # /o/ "bought": half open, rounded
        (530, 1840, 2480, (0.55, 0.85), (0.2, 0.6)),  # /e/ "bet": half open, a little spread
    ],
)
def test_textbook_vowels(f1, f2, f3, opening, shape) -> None:
    """Peterson & Barney's average male formants give the expected jaw and lip shapes."""
    silence = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    samples = np.concatenate([silence, formant_vowel(f1, f2, f3), silence])
    art = articulation(samples, SAMPLE_RATE, FPS, 50, lead_s=0.0)
    middle = slice(17, 32)
    assert opening[0] < float(art.open[middle].mean()) < opening[1]
    assert shape[0] < float(art.round_spread[middle].mean()) < shape[1]


@needs_espeak
def test_spoken_vowels(say) -> None:
    """espeak-ng's sustained "aah", "eee", "ooo" and a hummed "mmm" (phoneme input)."""
    results = {}
    for name, text in (("aah", "aah"), ("eee", "eee"), ("ooo", "ooo"), ("mmm", "[[m'm:m:m:]]")):
        art = features(say(text, "en-us", speed=80))
        mask = voiced(art)
        assert mask.sum() >= 12  # about a second of sound
        results[name] = (float(art.open[mask].mean()), float(art.round_spread[mask].mean()))
    opening = {name: value[0] for name, value in results.items()}
    shape = {name: value[1] for name, value in results.items()}
    assert opening["aah"] > 1.8 * opening["eee"] and opening["aah"] > 1.8 * opening["mmm"]
    assert opening["aah"] > 1.3 * opening["ooo"]
    assert shape["eee"] > 0.5 and shape["ooo"] < -0.15 and abs(shape["aah"]) < 0.1


# --------------------------------------------------------------------------- sentences


@needs_espeak
def test_english_sentence_follows_loudness_with_a_lead(say) -> None:
    samples = say(ENGLISH)
    art = features(samples)
    open_ = art.open.numpy()
    envelope = loudness_envelope(samples, len(open_))
    lag, r = best_lag(open_, envelope)
    assert lag == round(LEAD_S * FPS) == 1 and r > 0.6  # open[i] goes with sound[i + 1]
    lag0, r0 = best_lag(features(samples, lead_s=0.0).open.numpy(), envelope)
    assert lag0 == 0 and r0 > 0.6
    assert best_lag(features(samples, lead_s=0.08).open.numpy(), envelope)[0] == 2


def pauses(samples: np.ndarray, n_frames: int, seconds: float = 0.15) -> list[slice]:
    """The video frames of each stretch of digital silence at least ``seconds`` long inside
    the recording (not at its ends)."""
    per = SAMPLE_RATE / FPS
    quiet = [
        np.abs(samples[int(i * per) : int((i + 1) * per)]).max(initial=0) < 1e-3
        for i in range(n_frames)
    ]
    found, start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= seconds * FPS and start > 0 and i < n_frames:
                found.append(slice(start, i))
            start = None
    return found


@needs_espeak
@pytest.mark.parametrize(
    ("text", "voice", "rounded_and_spread"),
    [(ENGLISH, "en", False), (MANDARIN, "cmn-latn-pinyin", True)],
)
def test_sentences_move_the_mouth(say, text, voice, rounded_and_spread) -> None:
    samples = say(text, voice)
    art = features(samples)
    open_, shape = art.open.numpy(), art.round_spread.numpy()
    assert open_.std() > 0.2 and open_.max() > 0.9
    # Syllables: the mouth opens and closes again many times.
    crossings = np.count_nonzero(np.diff((open_ > 0.3).astype(int)) == 1)
    assert crossings >= 8
    gaps = pauses(samples, len(open_))
    assert gaps, "the sentence has pauses"
    for frames in gaps:  # the mouth closes in each pause, to a neutral shape
        assert open_[frames].min() < 0.05
        assert np.abs(shape[frames]).min() < 0.05
    assert shape.std() > 0.15
    if rounded_and_spread:  # ni3 /i/ is spread, wo3 shu4 /u o/ are rounded
        assert shape.max() > 0.7 and shape.min() < -0.7


@needs_espeak
def test_level_clipping_and_sample_rate_do_not_matter(say) -> None:
    samples = say(ENGLISH)
    reference = features(samples).open.numpy()
    quiet = features(samples * 0.1).open.numpy()
    clipped = features(np.clip(samples * 30, -1, 1)).open.numpy()
    assert np.abs(quiet - reference).max() < 0.02
    assert np.corrcoef(clipped, reference)[0, 1] > 0.9
    for rate in (8000, 44100):
        other = features(say(ENGLISH, rate=rate), rate)
        n = min(len(other), len(reference))
        assert np.corrcoef(other.open.numpy()[:n], reference[:n])[0, 1] > 0.9
        assert np.abs(other.open.numpy()[:n] - reference[:n]).mean() < 0.06


@needs_espeak
def test_bilabial_closures_dip(say) -> None:
    """ "a baba mama papa": each /b m p/ between two /a/ shuts the mouth nearly."""
    art = features(say("a baba mama papa", "en", speed=120))
    open_ = art.open.numpy()
    peaks = [i for i in range(1, len(open_) - 1) if open_[i] >= max(open_[i - 1], open_[i + 1])]
    peaks = [i for i in peaks if open_[i] > 0.6]
    assert len(peaks) >= 6
    dips = [open_[a:b].min() for a, b in itertools.pairwise(peaks)]
    assert sum(d < 0.3 for d in dips) >= 5
