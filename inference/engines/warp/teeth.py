"""Where the avatar's mouth opens: under its upper teeth, found on the frame's own pixels.

The face mesh's inner lip contours bound the lip gap, but not what is in it: in a smile the
lower inner contour runs a few pixels into the lower lip, and towards the corners it may cut
through the teeth or the dark beside them. A split line put at a fixed fraction of the gap
then tears the ends of the upper teeth down with the jaw, or lifts a sliver of the lower lip
with the upper teeth: pale streaks across the opened mouth. So the split line is read from the
pixels where the frame shows teeth: each column of the gap is sampled from the upper inner
contour down, and the mouth opens where the first run of teeth (the upper row) ends; a second
run under it (lower teeth the frame shows) drops with the jaw. Teeth are told from lip by colour
(less red: :data:`~.interior.RED`) where they are not dark: towards the corners they are in
shadow, darker than the lip. Columns without teeth take the split of their neighbours, as a
fraction of their gap; frames without any (a closed mouth), and the part of a half-open one
that does not show its inside (``shown``), keep :func:`~.geometry.split_prior`.

One vectorised numpy pass per batch (``(m, KNOTS, SAMPLES)`` pixel reads), before the field is
evaluated on the device.
"""

from __future__ import annotations

import numpy as np

from inference.engines.warp.geometry import INNER_LOWER, INNER_UPPER, KNOTS, SPLIT_LINE, MouthFrames
from inference.engines.warp.interior import RED

#: Samples down each column of the lip gap.
SAMPLES = 24
#: A sample is teeth when it is this far between RED[0] and RED[1] (the interior's soft ramp
#: from lip to teeth) and at least LIT of the lip's brightness above black (teeth towards the
#: corners are in shadow, darker than the lip: their colour tells them from it).
PALE = 0.75
LIT = 0.8
#: A column holds teeth when this many of its samples are.
MIN_RUN = 3
#: Teeth in fewer columns than this share of the mouth are noise: the prior split is kept.
MIN_TEETH_SHARE = 0.15
#: The split line is smoothed along the mouth over this many knots (median, then mean).
SMOOTH_KNOTS = 5
#: The mouth opens this far (in samples) from where the run of teeth ends: half a sample up,
#: so that the biting edge's softest pixels go to the cavity rather than fall with the jaw.
EDGE_MARGIN = -0.5


def find_split(
    geom: MouthFrames,
    y_pl: np.ndarray,
    u_pl: np.ndarray,
    v_pl: np.ndarray,
    rows: np.ndarray,
    lip: np.ndarray,
) -> None:
    """Set ``geom.tables[:, SPLIT_LINE]`` from the pixels of frames ``rows`` of the planes
    (``lip``: each frame's lower-lip Y, U, V, ``(m, 3)``), where the frames show teeth."""
    m = len(geom)
    if m == 0:
        return
    up = geom.tables[:, INNER_UPPER].astype(np.float64)
    gap = np.maximum(geom.tables[:, INNER_LOWER] - up, 0.0)
    knots = geom.knots_start[:, None] + geom.knots_step[:, None] * np.arange(KNOTS)
    frac = (np.arange(SAMPLES) + 0.5) / SAMPLES
    u = np.broadcast_to(knots[:, :, None], (m, KNOTS, SAMPLES))
    v = up[:, :, None] + gap[:, :, None] * frac
    xy = geom.to_frame(u, v)  # (m, KNOTS, SAMPLES, 2)
    h, w = y_pl.shape[1:]
    xs = np.clip(np.rint(xy[..., 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.rint(xy[..., 1]).astype(np.int64), 0, h - 1)
    frame = np.asarray(rows)[:, None, None]
    luma = y_pl[frame, ys, xs].astype(np.float32)
    red = v_pl[frame, ys // 2, xs // 2].astype(np.float32)
    above = np.maximum(lip[:, 0] - 16, 20)[:, None, None]
    bright = luma >= 16 + LIT * above
    pale = lip[:, 2][:, None, None] - red >= RED[0] + PALE * (RED[1] - RED[0])
    teeth = bright & pale
    # One odd sample (a shadow, a highlight) neither ends nor starts a run.
    teeth[..., 1:-1] |= teeth[..., :-2] & teeth[..., 2:]
    teeth[..., 1:-1] &= teeth[..., :-2] | teeth[..., 2:]
    has = teeth.sum(axis=2) >= MIN_RUN
    ended = ~teeth & (np.cumsum(teeth, axis=2) > 0)
    end = np.where(ended.any(axis=2), np.argmax(ended, axis=2), SAMPLES)
    split_frac = np.clip((end + EDGE_MARGIN) / SAMPLES, 0.0, 1.0)
    use = (geom.shown > 0) & (has.mean(axis=1) >= MIN_TEETH_SHARE) & (gap.max(axis=1) >= 2)
    if not use.any():
        return
    filled = _smoothed(_filled(split_frac[use], has[use]))
    found = up[use] + filled * gap[use]
    # A mouth half open (``shown``) blends the found line with the prior.
    prior = geom.tables[use, SPLIT_LINE]
    shown = geom.shown[use, None]
    geom.tables[use, SPLIT_LINE] = (prior + (found - prior) * shown).astype(np.float32)


def _filled(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` ``(m, n)`` where ``known``; elsewhere interpolated linearly between the known
    neighbours of the row, or the nearest known one past the ends (each row knows one)."""
    n = values.shape[1]
    idx = np.arange(n)
    left = np.maximum.accumulate(np.where(known, idx, -1), axis=1)
    right = np.minimum.accumulate(np.where(known, idx, n)[:, ::-1], axis=1)[:, ::-1]
    left_ok, right_ok = left >= 0, right < n
    left, right = np.where(left_ok, left, right), np.where(right_ok, right, left)
    a = np.take_along_axis(values, left, axis=1)
    b = np.take_along_axis(values, right, axis=1)
    span = np.maximum(right - left, 1)
    return a + (b - a) * (idx - left) / span


def _smoothed(lines: np.ndarray) -> np.ndarray:
    """Each row: a running median over SMOOTH_KNOTS samples, then a mean over 3 (ends
    repeated)."""
    half = SMOOTH_KNOTS // 2
    padded = np.pad(lines, ((0, 0), (half, half)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, SMOOTH_KNOTS, axis=1)
    median = np.pad(np.median(windows, axis=2), ((0, 0), (1, 1)), mode="edge")
    return (median[:, :-2] + median[:, 1:-1] + median[:, 2:]) / 3
