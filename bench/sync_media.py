"""The measures of ``bench/sync.py``, on plain arrays (numpy and OpenCV only, no engine, no model).

- :func:`frame_loudness`: the voice's loudness per video frame (RMS in dB over each frame's
  window, floored at the noise level);
- :func:`pearson`, :func:`lagged_r`, :func:`best_lag`: how the lip opening follows it;
- :func:`modified_region`, :func:`seam_ratio`: where an engine changed a frame, and whether the
  border of that region shows as an edge (a hard paste) or not (a feathered or warped one);
- :func:`mean_abs_change`: how much a box of the frame changed.

Images are grey ``(h, w)`` uint8 (the Y plane of a yuv420p frame).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: Loudness never reads below this (dBFS; a full-scale sine is -3 dBFS): digital silence
#: would otherwise be -inf and weigh on the correlation like a very loud pause.
MIN_DB = -60.0
#: Percentile of a clip's frame loudness taken as its noise level (the pauses).
NOISE_PERCENTILE = 5.0


def frame_loudness(
    samples: np.ndarray,
    sample_rate: int,
    fps: float,
    n_frames: int,
    *,
    min_db: float = MIN_DB,
) -> tuple[np.ndarray, float]:
    """Loudness of each of ``n_frames`` video frames and the floor it was clipped to.

    Frame ``i`` shows the time ``[i / fps, (i + 1) / fps)``; its loudness is the RMS of the
    samples in that window in dB of full scale. The floor is the clip's noise level (the
    :data:`NOISE_PERCENTILE`-th percentile of the frames, i.e. its pauses), but not below
    ``min_db``; quieter frames (and frames past the end of the audio) read as the floor.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    edges = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    edges = np.clip(edges, 0, x.size)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    counts = edges[1:] - edges[:-1]
    power = (csum[edges[1:]] - csum[edges[:-1]]) / np.maximum(counts, 1)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(np.maximum(power, 0.0))
    db[counts == 0] = -np.inf
    db = np.maximum(db, min_db)
    floor = float(np.percentile(db, NOISE_PERCENTILE)) if db.size else min_db
    return np.maximum(db, floor), floor


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r over the positions where both are finite (NaN if either is constant there
    or fewer than 3 positions are left)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    norm = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / norm if norm > 1e-12 else math.nan


def lagged_r(mouth: np.ndarray, loudness: np.ndarray, max_lag: int = 8) -> dict[int, float]:
    """Pearson's r of ``mouth[t + lag]`` against ``loudness[t]`` for lag in ``-max_lag ..
    max_lag``: a positive lag means the mouth moves ``lag`` frames after the voice."""
    mouth, loudness = np.asarray(mouth, np.float64), np.asarray(loudness, np.float64)
    n = min(mouth.size, loudness.size)
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            out[lag] = pearson(mouth[lag:n], loudness[: n - lag])
        else:
            out[lag] = pearson(mouth[: n + lag], loudness[-lag:n])
    return out


def best_lag(rs: dict[int, float]) -> tuple[int, float]:
    """The lag with the highest r (the smallest such lag on ties; ``(0, nan)`` if all are NaN)."""
    finite = [(r, -abs(lag), lag) for lag, r in rs.items() if math.isfinite(r)]
    if not finite:
        return 0, math.nan
    r, _, lag = max(finite)
    return lag, r


def modified_region(
    out: np.ndarray,
    src: np.ndarray,
    *,
    threshold: int = 8,
    min_area: int = 64,
) -> np.ndarray | None:
    """The region an engine changed: pixels of ``out`` that differ from ``src`` by more than
    ``threshold`` grey levels, cleaned of coding noise (specks removed, nearby parts joined,
    holes filled, the largest part kept). None when nothing of ``min_area`` pixels changed."""
    diff = cv2.absdiff(np.ascontiguousarray(out), np.ascontiguousarray(src))
    mask = (diff > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    )
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < min_area:
        return None
    region = (labels == largest).astype(np.uint8)
    # Fill holes: what the outside cannot reach belongs to the region.
    padded = np.pad(region, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    return flood[1:-1, 1:-1] != 2


def seam_ratio(
    image: np.ndarray,
    region: np.ndarray,
    *,
    gap: float = 2.0,
    width: float = 4.0,
    eps: float = 0.5,
) -> float:
    """How strong an edge the border of ``region`` makes in ``image``: the mean gradient
    across the border (the component along the border's normal, grey levels per pixel) on the
    two pixel rows that straddle it, over the mean of the same on bands ``gap`` to ``gap +
    width`` pixels inside and outside it. About 1 for a seamless change (the border is no
    different from the picture around it); well above 1 for a hard paste. NaN when a band is
    empty (a region touching the whole window). ``eps`` keeps flat pictures from dividing by 0.
    """
    img = np.asarray(image, dtype=np.float32)
    inside = np.ascontiguousarray(region, dtype=np.uint8)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    signed = d_out - d_in  # > 0 outside, < 0 inside; +-1 on the pixels either side of the border
    ny, nx = np.gradient(cv2.GaussianBlur(signed, (0, 0), 1.5))
    norm = np.hypot(nx, ny) + 1e-6
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8
    across = np.abs(gx * nx + gy * ny) / norm
    border = np.abs(signed) <= 1.0
    inner = (signed <= -gap) & (signed > -(gap + width))
    outer = (signed >= gap) & (signed < gap + width)
    if not (border.any() and inner.any() and outer.any()):
        return math.nan
    around = 0.5 * (float(across[inner].mean()) + float(across[outer].mean()))
    return float(across[border].mean()) / (around + eps)


def mean_abs_change(out: np.ndarray, src: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean absolute grey-level difference of ``out`` and ``src`` in ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    a = out[y0:y1, x0:x1].astype(np.int16)
    b = src[y0:y1, x0:x1].astype(np.int16)
    return float(np.abs(a - b).mean()) if a.size else math.nan


def spread_pick(order: np.ndarray, count: int, *, apart: int = 3) -> list[int]:
    """The first ``count`` indices of ``order`` that are at least ``apart`` from those picked
    before (so six loud frames are six syllables, not one vowel six times)."""
    picked: list[int] = []
    for i in order:
        if all(abs(int(i) - p) >= apart for p in picked):
            picked.append(int(i))
            if len(picked) == count:
                break
    return picked
