"""Articulation features: how the voice shapes the mouth, per video frame.

:func:`articulation` turns a speech track into two per-frame curves for the ``warp`` engine.
Everything is measured on 10 ms analysis frames of one ``torch.stft`` over the whole track
(32 ms Hann windows, levels in dB relative to a full-scale sine: dBFS), then averaged over each
video frame's time span, taken ``lead_s`` (``LEAD_S``, 40 ms) later in the audio: the mouth
moves a frame or so before the sound is heard.

``open`` - jaw / lip opening in [0, 1], the product of three factors:

* **loudness**: the 80-4000 Hz level, 0 at a gate ``GATE_DB`` above the recording's noise floor
  (its ``NOISE_PERCENTILE`` level, never under ``ABS_FLOOR_DBFS``) and 1 at its loud level (the
  ``LOUD_PERCENTILE`` of the frames above the gate), linear in dB in between; so the loudness
  of the file, clipping included, does not matter and pauses and breaths stay closed;
* **syllable contrast**: 1 up to ``DIP_OPEN_DB`` under the loudest frame within
  ``CONTRAST_WINDOW_S``, 0 at ``DIP_CLOSED_DB`` under it: consonants between vowels (the
  closures of /m b p/, their voice bars and nasal murmurs, most fricatives) are 10-25 dB
  quieter than their vowels, so the mouth dips (a spectral cue for nasals would not hold up:
  an /i/ can have as little energy above 500 Hz as an /m/);
* **jaw height** from the first formant (F1): open vowels have a high F1. F1 is the peak of the
  spectral envelope (the power spectrum averaged over ``FORMANT_SMOOTH_HZ`` so that the voice's
  harmonics merge) in ``F1_BAND``, 250-1000 Hz; ``F1_CLOSE_HZ`` (/i u/) gives
  ``CLOSE_VOWEL_OPEN`` and ``F1_OPEN_HZ`` (/a/) gives 1.

Then the mouth opens as fast as the sound starts (an instant attack at the 10 ms analysis step,
so within one video frame) and closes with the time constant ``PAUSE_RELEASE_S`` into pauses
but ``CLOSURE_RELEASE_S`` into short gaps between sounds (at most ``CLOSURE_MAX_S``): the lips
shut quickly for a /p/, and relax slowly at the end of a phrase.

``round_spread`` - lip shape in [-1, 1]: negative rounded / pursed (/u o/), positive spread
(/i e/), 0 neutral. From the second formant F2, the envelope's strongest local peak from
``F2_GAP_HZ`` above F1 up to ``F2_TOP_HZ``: linear around ``F2_NEUTRAL_HZ`` (a schwa's F2),
``F2_SCALE_HZ`` per unit. Pursed lips need a nearly closed jaw, so the rounded side is scaled
by ``1 - jaw height`` (/a/ has a low F2 but is not rounded). It is the mean over
``SHAPE_SMOOTH_S`` weighted by how much voice each analysis frame has (loudness x contrast),
faded towards 0 where that weight is under ``SHAPE_FULL_WEIGHT``: silence and consonants are
neutral.

No Python loop over frames: the bands and the envelope are one matrix product with the power
spectrogram, the formant peaks are ``argmax`` over masked rows, and the attack / release filter
is a running maximum in the log domain (``torch.cummax``), exact for an instant attack. The
analysis works at the track's own sample rate (bands are in Hz, windows in seconds), so nothing
is resampled. A 10-minute 16 kHz track takes 0.3-0.6 s on one CPU core (48 kHz: ~1 s).

The thresholds were set on espeak-ng's voices (English, Mandarin) and on textbook formant
values (Peterson & Barney); the tests in ``tests/inference/test_articulation.py`` pin them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

# ----------------------------------------------------------------------------- analysis frames

#: Analysis hop and window (s): 100 analysis frames per second, 32 ms windows (~31 Hz bins).
HOP_S = 0.010
WINDOW_S = 0.032
#: Lowest sample rate accepted: the bands reach 4 kHz.
MIN_SAMPLE_RATE = 8000

# ----------------------------------------------------------------------------- bands (Hz)

#: Band whose level is the loudness (voice fundamental to the upper formants).
SPEECH_BAND = (80.0, 4000.0)
#: First-formant band: where the jaw height is read.
F1_BAND = (250.0, 1000.0)
#: Width (Hz) over which the spectrum is smoothed before its formant peaks are picked.
FORMANT_SMOOTH_HZ = 250.0
#: The second formant is searched from this far above the F1 estimate up to F2_TOP_HZ (back
#: vowels have F2 only 250-350 Hz above F1).
F2_GAP_HZ = 150.0
F2_TOP_HZ = 3000.0

# ----------------------------------------------------------------------------- loudness

#: Levels are dB relative to a full-scale sine. Quieter than this is silence, whatever the file.
ABS_FLOOR_DBFS = -90.0
#: Percentile (of all analysis frames) taken as the recording's noise floor.
NOISE_PERCENTILE = 0.05
#: Speech starts this far above the noise floor: pauses, breaths and room noise stay closed
#: (and so does a track whose level never varies that much: steady noise, or one long tone).
GATE_DB = 12.0
#: Percentile of the frames above the gate taken as the loud level (open = 1).
LOUD_PERCENTILE = 0.95
#: At most this many dB between the gate and the loud level: softer sounds still move the mouth.
MAX_RANGE_DB = 36.0

#: A frame this many dB under the loudest within CONTRAST_WINDOW_S around it is still fully
#: open; DIP_CLOSED_DB under it, closed (consonants sit 10-25 dB under their vowels).
CONTRAST_WINDOW_S = 0.16
DIP_OPEN_DB = 4.0
DIP_CLOSED_DB = 16.0

# ----------------------------------------------------------------------------- vowel shape

#: F1 estimates mapped to jaw height 0 (close vowels /i/ /u/, ~300 Hz) and 1 (/a/, ~750 Hz).
F1_CLOSE_HZ = 300.0
F1_OPEN_HZ = 750.0
#: Opening of a loud close vowel relative to a loud /a/.
CLOSE_VOWEL_OPEN = 0.4
#: F2 of a neutral vowel (schwa) and the distance that makes a fully spread / rounded shape.
F2_NEUTRAL_HZ = 1500.0
F2_SCALE_HZ = 700.0
#: Lip shape is a weighted mean over this span (s), and fades out where the weight is under
#: SHAPE_FULL_WEIGHT (quiet or murmured sound).
SHAPE_SMOOTH_S = 0.08
SHAPE_FULL_WEIGHT = 0.4

# ----------------------------------------------------------------------------- timing

#: Closing time constants (s): into pauses, and into short gaps (stop and nasal closures).
PAUSE_RELEASE_S = 0.06
CLOSURE_RELEASE_S = 0.015
#: A stretch under CLOSED_OPEN lasting at most CLOSURE_MAX_S between two sounds is a closure.
CLOSURE_MAX_S = 0.15
CLOSED_OPEN = 0.15
#: How much earlier than the sound the mouth moves (s).
LEAD_S = 0.04
#: Openings under this are reported as exactly 0 (the tail of the release filter).
OPEN_EPSILON = 1e-3


@dataclass(frozen=True)
class Articulation:
    """Per-video-frame mouth shape: float32 tensors of shape ``(n_frames,)`` on one device.

    ``open`` is in [0, 1] (0 closed, 1 the recording's loud open vowel); ``round_spread`` is in
    [-1, 1] (negative rounded, positive spread, 0 neutral). Tensors rather than arrays because
    the engine warps its batches on the device; ``.cpu().numpy()`` where numpy is wanted.
    ``fps`` and ``lead_s`` are the frame rate and visual lead they were computed for.
    """

    open: torch.Tensor
    round_spread: torch.Tensor
    fps: float
    lead_s: float

    def __len__(self) -> int:
        return int(self.open.numel())


def articulation(
    samples: torch.Tensor | np.ndarray,
    sample_rate: int,
    fps: float,
    n_frames: int,
    *,
    device: torch.device | str | None = None,
    lead_s: float = LEAD_S,
) -> Articulation:
    """Mouth opening and lip rounding / spreading for ``n_frames`` video frames at ``fps``.

    ``samples`` are one channel (mix stereo down first) of floats in [-1, 1] at
    ``sample_rate`` Hz (at least ``MIN_SAMPLE_RATE``; louder or clipped audio is fine: levels
    are relative to the recording's own). Frame ``i`` covers ``[i / fps, (i + 1) / fps)`` of
    the video and shows the sound ``lead_s`` seconds later; frames past the end of the audio
    are closed and neutral. The model and its constants are described in the module's
    docstring. Returns tensors on ``device`` (default: the samples' device, else the CPU).
    """
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate {sample_rate} Hz is under {MIN_SAMPLE_RATE} Hz.")
    if not fps > 0:
        raise ValueError(f"fps must be positive, not {fps!r}.")
    if device is None:
        device = samples.device if isinstance(samples, torch.Tensor) else "cpu"
    device = torch.device(device)
    x = torch.as_tensor(samples).to(device=device, dtype=torch.float32)
    if sum(size > 1 for size in x.shape) > 1:
        raise ValueError(f"samples must be one channel (mix it down), not {tuple(x.shape)}.")
    x = x.reshape(-1)
    n_frames = max(0, int(n_frames))
    zeros = torch.zeros(n_frames, device=device)
    if n_frames == 0 or x.numel() == 0:
        return Articulation(zeros, zeros.clone(), float(fps), float(lead_s))
    x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)

    hop = max(1, round(HOP_S * sample_rate))
    hop_s = hop / sample_rate
    features = _analysis_features(x, sample_rate, hop)
    if features is None:  # nothing above the gate: silence or noise only
        return Articulation(zeros, zeros.clone(), float(fps), float(lead_s))
    open_raw, shape_raw, weight = features

    open_held = _release(open_raw, hop_s)
    # Lip shape: weighted mean over SHAPE_SMOOTH_S, carried by the weight ("how much vowel").
    width = max(1, round(SHAPE_SMOOTH_S / hop_s))
    shape_sum = _triangle(shape_raw * weight, width)
    weight_sum = _triangle(weight, width)

    per_frame = _frame_means(
        torch.stack([open_held, shape_sum, weight_sum]), hop_s, fps, n_frames, lead_s
    )
    open_ = per_frame[0].clamp(0, 1)
    open_ = torch.where(open_ < OPEN_EPSILON, torch.zeros_like(open_), open_)
    round_spread = (per_frame[1] / per_frame[2].clamp(min=SHAPE_FULL_WEIGHT)).clamp(-1, 1)
    return Articulation(open_.float(), round_spread.float().contiguous(), float(fps), float(lead_s))


@functools.lru_cache(maxsize=8)
def _analysis_matrix(sample_rate: int, n_fft: int, device: str) -> tuple[torch.Tensor, ...]:
    """The fixed linear maps applied to each power spectrum (bins up to SPEECH_BAND's top).

    Returns ``(matrix, peak_hz)``: ``matrix`` has a row summing the speech band, then one row
    per candidate formant frequency ``peak_hz`` (every bin from F1_BAND's bottom to F2_TOP_HZ)
    averaging the spectrum around it with a triangle FORMANT_SMOOTH_HZ wide (so the voice's
    harmonics merge into the envelope whose peaks are the formants).
    """
    n_bins = math.floor(SPEECH_BAND[1] * n_fft / sample_rate) + 1
    freqs = torch.arange(n_bins, dtype=torch.float64) * (sample_rate / n_fft)

    def band(lo: float, hi: float) -> torch.Tensor:
        return ((freqs >= lo) & (freqs < hi)).double()

    peak_hz = freqs[(freqs >= F1_BAND[0]) & (freqs < F2_TOP_HZ)]
    half = max(FORMANT_SMOOTH_HZ / 2, sample_rate / n_fft)
    smooth = (1 - (freqs[None, :] - peak_hz[:, None]).abs() / half).clamp(min=0)
    smooth = smooth / smooth.sum(dim=1, keepdim=True)
    matrix = torch.cat([band(*SPEECH_BAND)[None], smooth])
    return matrix.float().to(device), peak_hz.to(device)


def _quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile (nearest rank) of a 1-D tensor of any length."""
    ordered = x.sort().values
    return ordered[round(q * (ordered.numel() - 1))]


def _analysis_features(
    x: torch.Tensor, sample_rate: int, hop: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Per analysis frame (every ``hop`` samples): raw opening, raw lip shape and the weight of
    the lip shape (float64, shape ``(T,)``); None when no frame is above the gate."""
    device = x.device
    n_fft = max(16, round(WINDOW_S * sample_rate))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    window = torch.hann_window(n_fft, device=device)
    spec = torch.stft(
        x, n_fft, hop_length=hop, window=window, center=True, pad_mode="constant",
        return_complex=True,
    )  # fmt: skip
    matrix, peak_hz = _analysis_matrix(sample_rate, n_fft, str(device))
    spec = torch.view_as_real(spec[: matrix.shape[1]])
    power = spec.square().sum(-1)  # (bins, T)
    rows = matrix @ power  # (1 + peaks, T): one product for every band of every frame
    # Scale so a full-scale sine inside a band reads 0 dB (one-sided Parseval, Hann window).
    scale = 4.0 / (n_fft * float(window.square().sum()))
    e_speech = rows[0].double() * scale
    envelope = rows[1:]

    tiny = 1e-12
    level_db = 10 * torch.log10(e_speech + tiny)
    # Noise floor, gate and loud level of this recording.
    gate = _quantile(level_db, NOISE_PERCENTILE).clamp(min=ABS_FLOOR_DBFS) + GATE_DB
    voiced = level_db > gate
    if not bool(voiced.any()):
        return None
    loud = _quantile(level_db[voiced], LOUD_PERCENTILE)
    gate = torch.maximum(gate, loud - MAX_RANGE_DB)
    loudness = ((level_db - gate) / (loud - gate).clamp(min=3.0)).clamp(0, 1)

    # Syllable contrast: a consonant is much quieter than the vowels around it.
    reach = max(1, round(CONTRAST_WINDOW_S / 2 * sample_rate / hop))
    local_db = torch.nn.functional.max_pool1d(
        level_db.view(1, 1, -1), 2 * reach + 1, stride=1, padding=reach
    ).view(-1)
    contrast = 1 - (local_db - level_db - DIP_OPEN_DB) / (DIP_CLOSED_DB - DIP_OPEN_DB)
    voice = loudness * contrast.clamp(0, 1)

    # Formants: F1 is the envelope's maximum in F1_BAND, F2 its highest local peak from
    # F1 + F2_GAP_HZ up (a peak, so that the skirt of a strong low F1 does not count: an /i/'s
    # F2 is 20-30 dB under its F1).
    in_f1 = (peak_hz < F1_BAND[1])[:, None]
    f1_hz = peak_hz[envelope.masked_fill(~in_f1, -1.0).argmax(0)]
    local_peak = torch.zeros_like(envelope, dtype=torch.bool)
    local_peak[1:-1] = (envelope[1:-1] >= envelope[:-2]) & (envelope[1:-1] > envelope[2:])
    in_f2 = (peak_hz[:, None] >= f1_hz[None, :] + F2_GAP_HZ) & local_peak
    f2_hz = peak_hz[envelope.masked_fill(~in_f2, -1.0).argmax(0)]
    height = ((f1_hz - F1_CLOSE_HZ) / (F1_OPEN_HZ - F1_CLOSE_HZ)).clamp(0, 1)
    open_raw = voice * (CLOSE_VOWEL_OPEN + (1 - CLOSE_VOWEL_OPEN) * height)
    spread = ((f2_hz - F2_NEUTRAL_HZ) / F2_SCALE_HZ).clamp(-1, 1)
    # Pursed lips need a nearly closed jaw: /a/ has a low F2 but is not rounded.
    shape = torch.where(spread < 0, spread * (1 - height), spread)
    return open_raw, shape, voice


def _release(x: torch.Tensor, hop_s: float) -> torch.Tensor:
    """Instant attack, exponential release: ``y[i] = max(x[i], y[i-1] * exp(-hop / tau[i]))``.

    ``tau`` is CLOSURE_RELEASE_S inside short gaps between sounds and PAUSE_RELEASE_S
    elsewhere. Written as ``log y = cummax(log x + C) - C`` with ``C`` the running sum of the
    decay exponents, so it runs as a few tensor operations however long the track is.
    """
    quiet = x < CLOSED_OPEN
    change = torch.ones_like(quiet)
    change[1:] = quiet[1:] != quiet[:-1]
    run = torch.cumsum(change.long(), 0) - 1
    run_len = torch.bincount(run)[run]
    inner = (run != run[0]) & (run != run[-1])  # a gap has sound on both sides
    closure = quiet & inner & (run_len * hop_s <= CLOSURE_MAX_S + 1e-9)
    rate = torch.where(
        closure,
        torch.full_like(x, hop_s / CLOSURE_RELEASE_S),
        torch.full_like(x, hop_s / PAUSE_RELEASE_S),
    )
    decay = torch.cumsum(rate, 0)
    held = torch.cummax(torch.log(x) + decay, 0).values - decay
    return torch.exp(held)


def _triangle(x: torch.Tensor, width: int) -> torch.Tensor:
    """Centered triangular moving sum-normalised average over about ``width`` samples (zeros
    outside the track, so the ends fade)."""
    half = width // 2
    if half < 1:
        return x
    k = torch.cat(
        [torch.arange(1, half + 2, dtype=x.dtype), torch.arange(half, 0, -1, dtype=x.dtype)]
    ).to(x.device)
    k = k / k.sum()
    return torch.nn.functional.conv1d(x.view(1, 1, -1), k.view(1, 1, -1), padding=half).view(-1)


def _frame_means(
    values: torch.Tensor, hop_s: float, fps: float, n_frames: int, lead_s: float
) -> torch.Tensor:
    """Mean of each row of ``values`` ``(C, T)`` (analysis frame ``j`` holding the time span
    ``[(j - 1/2) hop, (j + 1/2) hop)``) over each video frame's span, moved ``lead_s`` later;
    time outside the track counts as 0. Exact box averages via the running integral."""
    n_rows, total = values.shape
    device = values.device
    values = values.double()
    integral = torch.cat(
        [torch.zeros(n_rows, 1, device=device, dtype=values.dtype), values.cumsum(1)], dim=1
    )
    frame_hops = 1.0 / (fps * hop_s)
    edges = torch.arange(n_frames + 1, device=device, dtype=torch.float64) * frame_hops
    edges = (edges + lead_s / hop_s + 0.5).clamp(0, total)
    k = edges.floor().long().clamp(max=total - 1)
    frac = edges - k
    at_edges = integral[:, k] + frac * values[:, k]
    return (at_edges[:, 1:] - at_edges[:, :-1]) / frame_hops
