"""The displacement field that opens the mouth, evaluated on the device for a batch of frames.

The field is *backward*: the output pixel at ``p`` shows the input at ``p - D(p)``, which is
what ``grid_sample`` wants. It is built in each frame's mouth frame (``u`` along the mouth,
``v`` down the face; :mod:`inference.engines.warp.geometry`) column by column, from the lip
contours ``v(u)`` of that column and four per-frame amounts: ``lift`` (upper lip up), ``drop``
(lower lip down), ``jaw`` (chin down) and ``shift`` (corners out, negative: in). Down one
column, in output coordinates::

    above the nose base                     D = 0          (bit-identical)
    nose base -> outer upper lip            0 -> -lift     (the philtrum shortens)
    upper lip + the upper part of the gap   -lift          (lip and upper teeth move as one)
    the tear                                -lift -> +drop (opens at the split line)
    lower part of the gap + lower lip       +drop          (lower teeth and lip move as one)
    lower lip -> chin (jaw line)            +drop -> +jaw  (skin over the jaw, not stretched)
    chin -> ``below`` under it              +jaw -> 0      (the jaw covers the neck)

``lift`` and ``drop`` follow the lips' shape across the mouth (``LENS_POWER``: most in the
middle, none at the corners); ``jaw`` is flat under the mouth and fades out before the face's
edges. The *tear* is where the mouth opens: a thin band of the source around the *split line*
(low in the source's own lip gap when it shows teeth, so that they ride with the upper lip;
near the upper lip when the mouth is closed, where the lips meet: ``SPLIT_*``) is stretched
over it, and the mouth interior is painted there and over the rest of the source's lip gap but
its teeth (:mod:`inference.engines.warp.interior`). The tear is given a source band
``2 * TEAR_BAND`` px high, so the field's slope stays under 1 even there: the warp never folds.

The field is evaluated at the chroma samples of the region and upsampled for the luma
(:func:`inference.engines.warp.engine.region_field`): it is smooth, and a quarter of the work.

Corners move along ``u`` by ``shift`` (spreading /i/, rounding /u/), fading towards the nose,
the chin and the face's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.engines.warp.geometry import (
    INNER_LOWER,
    INNER_UPPER,
    JAW_LINE,
    KNOTS,
    OUTER_LOWER,
    OUTER_UPPER,
)

#: Exponent of the lens profile ``(1 - (u / inner half width)^2) ^ LENS_POWER``: under 1 the
#: opening stays high towards the corners (an oval), over 1 it is pointed (a lens).
LENS_POWER = 0.7
#: Where the tear opens, as a fraction of the source's lip gap down from its upper inner contour:
#: in a closed mouth near that contour (where the lips meet: the mesh puts the lower inner
#: contour on the lip), in one that shows its teeth low, so that they ride with the upper lip;
#: at the corners (where the contours are least sure) at most SPLIT_CORNER.
SPLIT_CLOSED = 0.1
SPLIT_OPEN = 0.92
SPLIT_CORNER = 0.25
#: Px under the nose base where the field starts.
NOSE_MARGIN = 2.0
#: Half height (px) of the source band stretched over the tear.
TEAR_BAND = 0.5
#: The jaw's drop is flat up to JAW_FLAT of the way to JAW_REACH of the face edge, then fades.
JAW_FLAT = 0.45
JAW_REACH = 0.9
#: Width of the interior's soft edges, in mouth half widths (at least a pixel).
FEATHER = 0.04
#: The corners' sideways motion fades to zero at SHIFT_REACH of the way to the face edge.
SHIFT_REACH = 0.85


@dataclass
class FieldParams:
    """Per-frame inputs of the field, as tensors on the device (``m`` frames)."""

    center: torch.Tensor  # (m, 2)
    axis: torch.Tensor  # (m, 2)
    half_width: torch.Tensor  # (m,)
    inner_half: torch.Tensor  # (m,)
    edges: torch.Tensor  # (m, 2)
    nose: torch.Tensor  # (m,)
    knots_start: torch.Tensor  # (m,)
    knots_step: torch.Tensor  # (m,)
    tables: torch.Tensor  # (m, 5, KNOTS)
    lift: torch.Tensor  # (m,) px
    drop: torch.Tensor  # (m,) px
    jaw: torch.Tensor  # (m,) px
    below: torch.Tensor  # (m,) px
    shift: torch.Tensor  # (m,) px
    shown: torch.Tensor  # (m,) how much the source mouth shows its inside (0 closed, 1 open)


@dataclass
class Field:
    """The field on a pixel grid ``(m, h, w)``: displacement in frame px and the mouth inside.

    The *interior* is everything between the displaced inner lip contours: the tear, and the
    source's own lip gap on either side of it (teeth, or the dark of a mouth already open).
    """

    dx: torch.Tensor
    dy: torch.Tensor
    #: Coverage of the tear (0 outside it, 1 well inside): the interior is painted there.
    tear: torch.Tensor
    #: Coverage of the interior (soft edges), faded in as the mouth starts to open.
    interior: torch.Tensor
    #: Where only teeth are kept of the source's interior (1) rather than everything but its
    #: dark (0): below the tear (what lies there besides lower teeth is a sliver of lip the
    #: contours took for gap) and towards the corners (where the contours are least sure).
    strict: torch.Tensor
    #: Position down the interior (0 at the upper lip, 1 at the lower lip), across it (u over
    #: the inner half width), and its height there (px): what the shading needs.
    depth: torch.Tensor
    across: torch.Tensor
    height: torch.Tensor


def smooth(t: torch.Tensor) -> torch.Tensor:
    """Smoothstep of ``t`` in [0, 1] (zero slope at both ends)."""
    return t * t * (3 - 2 * t)


def ramp(v: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor | float) -> torch.Tensor:
    """0 before ``start``, 1 after ``end``, linear between (a zero-length ramp is a step)."""
    return ((v - start) / torch.as_tensor(end - start).clamp(min=1e-3)).clamp(0, 1)


def _per_frame(x: torch.Tensor) -> torch.Tensor:
    return x.view(-1, 1, 1)


def lookup(params: FieldParams, u: torch.Tensor) -> torch.Tensor:
    """The contour tables read at ``u`` ``(m, h, w)``: ``(m, 5, h, w)`` (linear between the
    samples, constant past the ends)."""
    m, h, w = u.shape
    k = ((u - _per_frame(params.knots_start)) / _per_frame(params.knots_step)).clamp(0, KNOTS - 1)
    i0 = k.floor().clamp(max=KNOTS - 2)
    frac = (k - i0).view(m, 1, h * w)
    idx = i0.long().view(m, 1, h * w).expand(m, params.tables.shape[1], h * w)
    lo = torch.gather(params.tables, 2, idx)
    hi = torch.gather(params.tables, 2, idx + 1)
    return (lo + (hi - lo) * frac).view(m, -1, h, w)


def mouth_field(params: FieldParams, xs: torch.Tensor, ys: torch.Tensor) -> Field:
    """The field at frame coordinates ``xs`` ``(m, 1, w)``, ``ys`` ``(m, h, 1)``."""
    cx, cy = _per_frame(params.center[:, 0]), _per_frame(params.center[:, 1])
    cos, sin = _per_frame(params.axis[:, 0]), _per_frame(params.axis[:, 1])
    dx0, dy0 = xs - cx, ys - cy
    u = dx0 * cos + dy0 * sin
    v = dy0 * cos - dx0 * sin
    tables = lookup(params, u)
    outer_up, inner_up = tables[:, OUTER_UPPER], tables[:, INNER_UPPER]
    inner_low, outer_low = tables[:, INNER_LOWER], tables[:, OUTER_LOWER]
    chin = tables[:, JAW_LINE]

    a, ai = _per_frame(params.half_width), _per_frame(params.inner_half)
    side = torch.where(u < 0, -_per_frame(params.edges[:, 0]), _per_frame(params.edges[:, 1]))
    across = u / ai
    lens = (1 - across * across).clamp(min=0) ** LENS_POWER
    reach = (JAW_REACH * side).clamp(min=1.0)
    jaw_shape = 1 - smooth(((u.abs() / reach - JAW_FLAT) / (1 - JAW_FLAT)).clamp(0, 1))

    # Nothing moves above the nose base, nor within NOSE_MARGIN px under it (the luma's field
    # is upsampled from the chroma samples: that keeps the margin exact).
    nose = _per_frame(params.nose) + NOSE_MARGIN
    # The upper lip rises at most half way to the nose base (the philtrum cannot vanish).
    lift = torch.minimum(_per_frame(params.lift) * lens, 0.5 * (outer_up - nose).clamp(min=0))
    drop = _per_frame(params.drop) * lens
    jaw = _per_frame(params.jaw) * jaw_shape
    gap = (inner_low - inner_up).clamp(min=0)
    # Towards the corners the inner contours are least sure: split higher in the gap there.
    shown = _per_frame(params.shown)
    middle = SPLIT_CLOSED + (SPLIT_OPEN - SPLIT_CLOSED) * shown
    corner = middle.clamp(max=SPLIT_CORNER)
    split = inner_up + (corner + (middle - corner) * lens) * gap
    split = torch.minimum(torch.maximum(split, outer_up + TEAR_BAND), outer_low - TEAR_BAND)

    b2 = outer_up - lift
    b3 = split - lift - TEAR_BAND
    b4 = split + drop + TEAR_BAND
    b5 = outer_low + drop
    b6 = chin + jaw
    b7 = b6 + _per_frame(params.below)
    tear = ramp(v, b3, b4)
    dv = (
        -lift * smooth(ramp(v, nose, b2))
        + (lift + drop) * tear
        + (jaw - drop) * smooth(ramp(v, b5, b6))
        - jaw * smooth(ramp(v, b6, b7))
    )

    # Corners along u: linear between them, fading towards the face edge, the nose and chin.
    # It fades out before the face edge; over that room the slope must stay well under 1.
    fade_len = (SHIFT_REACH * side - a).clamp(min=1.0)
    limit = fade_len / 3
    shift = torch.maximum(torch.minimum(_per_frame(params.shift), limit), -limit)
    outside = 1 - smooth(((u.abs() - a) / fade_len).clamp(0, 1))
    along = torch.where(u.abs() <= a, u / a, torch.sign(u) * outside)
    vertical = smooth(ramp(v, nose, outer_up)) * (1 - smooth(ramp(v, outer_low, chin)))
    du = shift * along * vertical

    # The tear is covered (the stretched source band barely shows); its soft edge, about a pixel
    # wide (wider on large faces), straddles its border: a little shadow on the teeth and lips.
    # A tear thinner than that shows faintly, so the interior grows from nothing.
    height = b4 - b3 - 2 * TEAR_BAND
    feather = (FEATHER * a).clamp(min=1.0)
    grow = (height / feather).clamp(0, 1)
    tear_alpha = (
        ((v - b3) / feather + 0.5).clamp(0, 1) * ((b4 - v) / feather + 0.5).clamp(0, 1) * grow
    )
    # The interior: the source's lip gap as far as it shows the inside (none in a closed mouth,
    # where the gap the mesh reports is lip), moved with the lips, and the tear.
    top = split - (split - inner_up) * shown - lift
    bottom = split + (inner_up + gap - split) * shown + drop
    # It fades in with the frame's opening, not the column's: it must reach the corners.
    opening = ((_per_frame(params.lift + params.drop)) / feather).clamp(0, 1)
    interior = (
        ((v - top + 0.5) / feather).clamp(0, 1)
        * ((bottom - v + 0.5) / feather).clamp(0, 1)
        * ((bottom - top) / feather).clamp(0, 1)  # none past the corners, where it closes
        * opening
    )
    return Field(
        dx=du * cos - dv * sin,
        dy=du * sin + dv * cos,
        tear=tear_alpha,
        interior=torch.maximum(interior, tear_alpha),
        strict=torch.maximum(tear, 1 - lens),
        depth=ramp(v, top, bottom),
        across=across,
        height=bottom - top,
    )
