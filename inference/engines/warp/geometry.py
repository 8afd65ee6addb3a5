"""The mouth of each frame, measured from its face mesh: axes, contours, edges, region.

Everything the warp needs from the 468 landmarks is put in a *mouth frame*: origin between the
outer mouth corners, ``u`` along the line from the subject's right corner to the left one
(image left to right on a frontal face), ``v`` across it, pointing down the face. Each lip
contour (and the jaw line under the mouth) is then a function ``v(u)``, sampled on ``KNOTS``
evenly spaced ``u`` values so that the field on the device can read it with one gather.

All arrays are numpy float32 with one row per frame; :mod:`inference.engines.warp.field` turns
them into tensors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from inference.face import landmarks as lm

#: Samples per contour table.
KNOTS = 48
#: Table rows: the contours, in this order (top to bottom of the mouth, then the jaw line), and
#: the split line, where the mouth opens (between the inner contours: :func:`split_prior`, or
#: found on the pixels by :func:`inference.engines.warp.teeth.find_split`).
OUTER_UPPER, INNER_UPPER, INNER_LOWER, OUTER_LOWER, JAW_LINE, SPLIT_LINE = range(6)
#: Where the mouth opens without a look at the pixels, as a fraction of the lip gap down from
#: the upper inner contour: in a closed mouth near that contour (where the lips meet: the mesh
#: puts the lower inner contour on the lip), in one that shows its teeth low (the mesh puts the
#: lower inner contour a little into the lower lip), so that they ride with the upper lip.
SPLIT_CLOSED = 0.1
SPLIT_OPEN = 0.85
_CONTOURS = (lm.OUTER_LIP_UPPER, lm.INNER_LIP_UPPER, lm.INNER_LIP_LOWER, lm.OUTER_LIP_LOWER)
#: The inner mouth corners (where the inner contours meet).
INNER_RIGHT, INNER_LEFT = 78, 308
#: Where the face edge is looked for when the jaw line does not cross the mouth's level, in
#: mouth half-widths from its centre.
FALLBACK_EDGE = 1.8
#: Pairs (inner, outer) of lower-lip points whose midpoints sample the lip's own colour.
_LOWER_LIP_PAIRS = tuple(zip(lm.INNER_LIP_LOWER[3:8], lm.OUTER_LIP_LOWER[3:8], strict=True))


@dataclass
class MouthFrames:
    """Per-frame mouth geometry of ``m`` frames (see the module docstring). Lengths in px."""

    center: np.ndarray  # (m, 2) origin, frame px
    axis: np.ndarray  # (m, 2) unit u direction (cos, sin)
    half_width: np.ndarray  # (m,) half the distance between the outer corners
    inner_half: np.ndarray  # (m,) half the distance between the inner corners
    edges: np.ndarray  # (m, 2) face edge at the mouth's level: u < 0 side, u > 0 side
    nose: np.ndarray  # (m,) v of the nose base
    knots_start: np.ndarray  # (m,) u of the first table sample
    knots_step: np.ndarray  # (m,) u between samples
    tables: np.ndarray  # (m, 6, KNOTS) v of each contour and of the split line
    shown: np.ndarray  # (m,) how much the mouth shows its inside already (inside_shown)

    def __len__(self) -> int:
        return len(self.center)

    def at_center(self, row: int) -> np.ndarray:
        """Contour values ``(6,)`` at ``u = 0`` (the middle of the mouth)."""
        k = float(-self.knots_start[row] / self.knots_step[row])
        i = int(np.clip(np.floor(k), 0, KNOTS - 2))
        f = np.clip(k - i, 0.0, 1.0)
        return (1 - f) * self.tables[row, :, i] + f * self.tables[row, :, i + 1]

    def to_frame(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Frame coordinates ``(m, ..., 2)`` of mouth coordinates ``u``, ``v`` ``(m, ...)``."""
        c, s = self.axis[:, 0], self.axis[:, 1]
        shape = (-1,) + (1,) * (u.ndim - 1)
        x = self.center[:, 0].reshape(shape) + u * c.reshape(shape) - v * s.reshape(shape)
        y = self.center[:, 1].reshape(shape) + u * s.reshape(shape) + v * c.reshape(shape)
        return np.stack([x, y], axis=-1)


def _to_mouth(points: np.ndarray, center: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """``(m, k, 2)`` frame points -> ``(m, k, 2)`` (u, v)."""
    d = points - center[:, None, :]
    c, s = axis[:, None, 0], axis[:, None, 1]
    return np.stack([d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c], axis=-1)


def _table(uv: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``v(u)`` of one polyline ``(k, 2)`` at ``knots`` (constant past its ends)."""
    order = np.argsort(uv[:, 0], kind="stable")
    return np.interp(knots, uv[order, 0], uv[order, 1])


def _edge(side: np.ndarray, default: float) -> float:
    """``u`` where a jaw polyline ``(k, 2)`` (from the face edge at eye level down towards the
    chin) crosses the mouth's level ``v = 0``; ``default`` when it does not."""
    for (u0, v0), (u1, v1) in itertools.pairwise(side):
        if v0 <= 0 < v1:
            return float(u0 + (u1 - u0) * (0 - v0) / (v1 - v0))
    return default


def mouth_frames(points: np.ndarray) -> MouthFrames:
    """Measure the mouths of ``m`` faces, landmarks ``(m, 468, 2)`` in frame px."""
    pts = np.asarray(points, dtype=np.float64)[..., :2]
    right, left = pts[:, lm.MOUTH_RIGHT], pts[:, lm.MOUTH_LEFT]
    center = (right + left) / 2
    span = left - right
    half_width = np.maximum(np.hypot(span[:, 0], span[:, 1]) / 2, 1.0)
    axis = span / (2 * half_width[:, None])
    inner = pts[:, INNER_LEFT] - pts[:, INNER_RIGHT]
    inner_half = np.clip(np.hypot(inner[:, 0], inner[:, 1]) / 2, 0.5, None)
    inner_half = np.minimum(inner_half, half_width)

    m = len(pts)
    jaw = _to_mouth(pts[:, list(lm.JAW)], center, axis)
    middle = len(lm.JAW) // 2  # the chin
    edges = np.empty((m, 2))
    for k in range(m):
        a = half_width[k]
        edges[k, 0] = min(_edge(jaw[k, : middle + 1], -FALLBACK_EDGE * a), -1.05 * a)
        edges[k, 1] = max(_edge(jaw[k, ::-1][: middle + 1], FALLBACK_EDGE * a), 1.05 * a)

    knots_start = edges[:, 0]
    knots_step = (edges[:, 1] - edges[:, 0]) / (KNOTS - 1)
    tables = np.empty((m, 6, KNOTS))
    lips = [_to_mouth(pts[:, list(contour)], center, axis) for contour in _CONTOURS]
    for k in range(m):
        knots = knots_start[k] + knots_step[k] * np.arange(KNOTS)
        for row, uv in enumerate(lips):
            tables[k, row] = _table(uv[k], knots)
        below = jaw[k][jaw[k, :, 1] > 0]  # the jaw line under the mouth's level
        tables[k, JAW_LINE] = _table(below, knots) if len(below) >= 2 else tables[k, OUTER_LOWER]
    # The chin stays under the lower lip whatever the mesh says at the table's ends.
    tables[:, JAW_LINE] = np.maximum(tables[:, JAW_LINE], tables[:, OUTER_LOWER] + 1.0)

    shown = inside_shown(points)
    tables[:, SPLIT_LINE] = split_prior(tables, shown)
    nose = _to_mouth(pts[:, [lm.NOSE_BASE]], center, axis)[:, 0, 1]
    return MouthFrames(
        center=center.astype(np.float32),
        axis=axis.astype(np.float32),
        half_width=half_width.astype(np.float32),
        inner_half=inner_half.astype(np.float32),
        edges=edges.astype(np.float32),
        nose=nose.astype(np.float32),
        knots_start=knots_start.astype(np.float32),
        knots_step=np.maximum(knots_step, 1e-3).astype(np.float32),
        tables=tables.astype(np.float32),
        shown=shown,
    )


def split_prior(tables: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """The split line ``(m, KNOTS)`` from the contours alone: SPLIT_CLOSED of the lip gap in a
    closed mouth, SPLIT_OPEN in one that shows its inside (``shown``), blended between."""
    up, low = tables[:, INNER_UPPER], tables[:, INNER_LOWER]
    frac = SPLIT_CLOSED + (SPLIT_OPEN - SPLIT_CLOSED) * np.asarray(shown)[:, None]
    return up + frac * np.maximum(low - up, 0)


#: The face mesh puts the inner lips of a closed mouth a little apart (the inner contour of the
#: lower lip sits on the lip, under the line where the lips meet): a gap (over the mouth width)
#: under CLOSED_GAP is a closed mouth, over OPEN_GAP one that shows its inside (teeth).
CLOSED_GAP = 0.08
OPEN_GAP = 0.13


def inside_shown(points: np.ndarray) -> np.ndarray:
    """Per frame ``(m,)``: how much the mouth already shows its inside, 0 (closed: the gap the
    mesh reports is lip) to 1 (open: the gap is teeth or mouth), from the lip gap."""
    pts = np.asarray(points, dtype=np.float64)
    gap = np.array([lm.lip_gap(p) for p in pts]) if len(pts) else np.zeros(0)
    t = np.clip((gap - CLOSED_GAP) / (OPEN_GAP - CLOSED_GAP), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def lip_colour(
    points: np.ndarray, y_pl: np.ndarray, u_pl: np.ndarray, v_pl: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Median Y, U, V ``(m, 3)`` float32 of each frame's lower lip (midpoints between its inner
    and outer contours): the interior is shaded relative to it, and teeth told from it."""
    pts = np.asarray(points, dtype=np.float32)
    inner = pts[:, [i for i, _ in _LOWER_LIP_PAIRS]]
    outer = pts[:, [o for _, o in _LOWER_LIP_PAIRS]]
    mid = (inner + outer) / 2
    h, w = y_pl.shape[1:]
    xs = np.clip(np.rint(mid[..., 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.rint(mid[..., 1]).astype(np.int64), 0, h - 1)
    frame = np.asarray(rows)[:, None]
    values = np.stack(
        [y_pl[frame, ys, xs], u_pl[frame, ys // 2, xs // 2], v_pl[frame, ys // 2, xs // 2]],
        axis=-1,
    ).astype(np.float32)
    return np.median(values, axis=1).astype(np.float32)
