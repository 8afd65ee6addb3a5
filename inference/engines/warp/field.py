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
(the table row ``SPLIT_LINE``: under the upper teeth where the source shows them, found on its
pixels by :func:`inference.engines.warp.teeth.find_split`, so that they ride with the upper lip
and lower teeth with the jaw; where the lips meet in a closed mouth) is stretched over it, and
the mouth interior is painted there and over the rest of the source's lip gap but its teeth
(:mod:`inference.engines.warp.interior`). The tear is given a source band ``2 * TEAR_BAND`` px
high, so the field's slope stays under 1 even there: the warp never folds.

The lower teeth: when the source shows its teeth, a band above the dropped lower lip
(``LOWER_SHOW`` of the opening, at most ``LOWER_MAX`` of the teeth's height) shows the lower
row, read from the source's own teeth mirrored about their biting edge (the split line) on an
arch ``LOWER_ARCH`` as wide: :attr:`Interior.teeth_dx` / :attr:`Interior.teeth_dy` is that
second, backward map and :attr:`Interior.lower_teeth` where it applies. Lower teeth the source
itself shows (below its split line) drop with the jaw, like the lip.

The displacement (:func:`mouth_field`) is evaluated at the chroma samples of the whole region
and upsampled for the luma (:func:`inference.engines.warp.engine.region_field`): it is smooth,
and a quarter of the work. What the opened mouth shows (:func:`mouth_interior`) is evaluated
only on a box around the mouth.

Corners move along ``u`` by ``shift`` (spreading /i/, rounding /u/), fading towards the nose,
the chin and the face's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inference.engines.warp.geometry import (
    INNER_LOWER,
    INNER_UPPER,
    JAW_LINE,
    OUTER_LOWER,
    OUTER_UPPER,
    SPLIT_LINE,
)

#: Exponent of the lens profile ``(1 - (u / inner half width)^2) ^ LENS_POWER``: under 1 the
#: opening stays high towards the corners (an oval), over 1 it is pointed (a lens).
LENS_POWER = 0.7
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
#: The lower NEAR_SPLIT of the source's gap above the split (in output px, moved with the
#: upper lip) is where lip is told from teeth (:attr:`Interior.near_split`).
NEAR_SPLIT = 0.45
#: The lower teeth rise over the lower lip once the opening passes LOWER_FROM mouth half widths
#: (before that the lip hides them), by LOWER_SHOW of the rest of it, at most LOWER_MAX of the
#: upper teeth's height; they fade in while that band grows from LOWER_BAND[0] to [1] px (a
#: thinner one reads as a pale line, not teeth). They stand on an arch LOWER_ARCH as wide as the
#: upper one, and not past LOWER_REACH of the inner half width (fading out from [0]).
LOWER_FROM = 0.15
LOWER_SHOW = 0.35
LOWER_MAX = 0.6
LOWER_BAND = (2.0, 4.0)
LOWER_ARCH = 0.85
LOWER_REACH = (0.5, 0.85)


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
    tables: torch.Tensor  # (m, 6, KNOTS)
    lift: torch.Tensor  # (m,) px
    drop: torch.Tensor  # (m,) px
    jaw: torch.Tensor  # (m,) px
    below: torch.Tensor  # (m,) px
    shift: torch.Tensor  # (m,) px
    shown: torch.Tensor  # (m,) how much the source mouth shows its inside (0 closed, 1 open)


@dataclass
class Field:
    """The displacement on a pixel grid ``(m, h, w)``, in frame px (backward: the output pixel
    at ``p`` shows the input at ``p - (dx, dy)``)."""

    dx: torch.Tensor
    dy: torch.Tensor


@dataclass
class Interior:
    """What the opened mouth shows, on a pixel grid ``(m, h, w)`` (a box around the mouth).

    The *interior* is everything between the displaced inner lip contours: the tear, and the
    source's own lip gap on either side of it (teeth, or the dark of a mouth already open).
    """

    #: Coverage of the tear (0 outside it, 1 well inside): the interior is painted there.
    tear: torch.Tensor
    #: Coverage of the interior (soft edges), faded in as the mouth starts to open.
    interior: torch.Tensor
    #: Under the tear (1; 0 above it): the source's gap there drops with the jaw, and holds the
    #: lower lip's top (kept: red), lower teeth (kept: bright and pale) or the soft biting edge
    #: of the upper teeth (not kept: it would fall as a pale streak along the lower lip).
    below: torch.Tensor
    #: Where the lower part of the source's gap lies above the tear (0..1): the contours often
    #: put the inner lower lip under its real edge, so lip shows there next to the teeth's
    #: biting edge; what is red there is not kept (it would ride up with the upper lip).
    near_split: torch.Tensor
    #: Backward map of the lower teeth (frame px, like :attr:`Field.dx` / ``dy``): where the
    #: source's upper teeth, mirrored, are read for the lower row.
    teeth_dx: torch.Tensor
    teeth_dy: torch.Tensor
    #: Where the lower row shows (0..1, soft edges): a band above the dropped lower lip, in
    #: frames whose source shows its teeth. Only what is read there as teeth is drawn.
    lower_teeth: torch.Tensor
    #: How far from the corners (1 in the middle of the mouth, 0 towards the corners, as
    #: LOWER_REACH says): lower teeth are only there; nearer the corners what is pale under
    #: the tear is the lower lip's wet edge or the upper teeth's, not teeth.
    central: torch.Tensor
    #: Position down the interior (0 at the upper lip, 1 at the lower lip), across it (u over
    #: the inner half width), and its height there (px): what the shading needs.
    depth: torch.Tensor
    across: torch.Tensor
    height: torch.Tensor


@dataclass
class _Columns:
    """Per-pixel values of each pixel's column of the mouth (see :func:`_columns`)."""

    u: torch.Tensor
    v: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    tables: torch.Tensor
    a: torch.Tensor
    side: torch.Tensor
    across: torch.Tensor
    lens: torch.Tensor
    nose: torch.Tensor
    lift: torch.Tensor
    drop: torch.Tensor
    split: torch.Tensor
    b3: torch.Tensor
    b4: torch.Tensor
    feather: torch.Tensor


def smooth(t: torch.Tensor) -> torch.Tensor:
    """Smoothstep of ``t`` in [0, 1] (zero slope at both ends)."""
    return t * t * (3 - 2 * t)


def ramp(v: torch.Tensor, start: torch.Tensor | float, end: torch.Tensor | float) -> torch.Tensor:
    """0 before ``start``, 1 after ``end``, linear between (a zero-length ramp is a step)."""
    return ((v - start) / torch.as_tensor(end - start).clamp(min=1e-3)).clamp(0, 1)


def _per_frame(x: torch.Tensor) -> torch.Tensor:
    return x.view(-1, 1, 1)


def lookup(params: FieldParams, u: torch.Tensor) -> torch.Tensor:
    """The contour tables read at ``u`` ``(m, h, w)``: ``(m, 6, h, w)`` (linear between the
    samples, constant past the ends). One ``grid_sample`` of the tables as a row of pixels:
    several times faster than gathering both neighbours of every pixel."""
    knots = params.tables.shape[-1]
    k = (u - _per_frame(params.knots_start)) / _per_frame(params.knots_step)
    x = (2 * k + 1) / knots - 1  # pixel k's centre, in grid_sample's [-1, 1] (align_corners off)
    grid = torch.stack([x, torch.zeros_like(x)], dim=-1)
    return F.grid_sample(
        params.tables.unsqueeze(2), grid, mode="bilinear", padding_mode="border",
        align_corners=False,
    )  # fmt: skip


def _columns(params: FieldParams, xs: torch.Tensor, ys: torch.Tensor) -> _Columns:
    """What the displacement and the interior share at frame coordinates ``xs`` ``(m, 1, w)``,
    ``ys`` ``(m, h, 1)``: mouth coordinates, contours, the column's lift and drop, the split
    line and the tear's bounds."""
    cx, cy = _per_frame(params.center[:, 0]), _per_frame(params.center[:, 1])
    cos, sin = _per_frame(params.axis[:, 0]), _per_frame(params.axis[:, 1])
    dx0, dy0 = xs - cx, ys - cy
    u = dx0 * cos + dy0 * sin
    v = dy0 * cos - dx0 * sin
    tables = lookup(params, u)
    outer_up, inner_up = tables[:, OUTER_UPPER], tables[:, INNER_UPPER]
    inner_low, outer_low = tables[:, INNER_LOWER], tables[:, OUTER_LOWER]
    a, ai = _per_frame(params.half_width), _per_frame(params.inner_half)
    side = torch.where(u < 0, -_per_frame(params.edges[:, 0]), _per_frame(params.edges[:, 1]))
    across = u / ai
    lens = (1 - across * across).clamp(min=0) ** LENS_POWER
    # Nothing moves above the nose base, nor within NOSE_MARGIN px under it (the luma's field
    # is upsampled from the chroma samples: that keeps the margin exact).
    nose = _per_frame(params.nose) + NOSE_MARGIN
    # The upper lip rises at most half way to the nose base (the philtrum cannot vanish).
    lift = torch.minimum(_per_frame(params.lift) * lens, 0.5 * (outer_up - nose).clamp(min=0))
    drop = _per_frame(params.drop) * lens
    split = torch.minimum(inner_low, torch.maximum(tables[:, SPLIT_LINE], inner_up))
    split = torch.minimum(torch.maximum(split, outer_up + TEAR_BAND), outer_low - TEAR_BAND)
    return _Columns(
        u=u, v=v, cos=cos, sin=sin, tables=tables, a=a, side=side, across=across, lens=lens,
        nose=nose, lift=lift, drop=drop, split=split, b3=split - lift - TEAR_BAND,
        b4=split + drop + TEAR_BAND, feather=(FEATHER * a).clamp(min=1.0),
    )  # fmt: skip


def mouth_field(params: FieldParams, xs: torch.Tensor, ys: torch.Tensor) -> Field:
    """The displacement at frame coordinates ``xs`` ``(m, 1, w)``, ``ys`` ``(m, h, 1)``."""
    c = _columns(params, xs, ys)
    u, v = c.u, c.v
    outer_up, outer_low = c.tables[:, OUTER_UPPER], c.tables[:, OUTER_LOWER]
    chin = c.tables[:, JAW_LINE]
    reach = (JAW_REACH * c.side).clamp(min=1.0)
    jaw_shape = 1 - smooth(((u.abs() / reach - JAW_FLAT) / (1 - JAW_FLAT)).clamp(0, 1))
    jaw = _per_frame(params.jaw) * jaw_shape
    lift, drop = c.lift, c.drop

    b2 = outer_up - lift
    b5 = outer_low + drop
    b6 = chin + jaw
    b7 = b6 + _per_frame(params.below)
    dv = (
        -lift * smooth(ramp(v, c.nose, b2))
        + (lift + drop) * ramp(v, c.b3, c.b4)
        + (jaw - drop) * smooth(ramp(v, b5, b6))
        - jaw * smooth(ramp(v, b6, b7))
    )

    # Corners along u: linear between them, fading towards the face edge, the nose and chin.
    # It fades out before the face edge; over that room the slope must stay well under 1.
    a = c.a
    fade_len = (SHIFT_REACH * c.side - a).clamp(min=1.0)
    limit = fade_len / 3
    shift = torch.maximum(torch.minimum(_per_frame(params.shift), limit), -limit)
    outside = 1 - smooth(((u.abs() - a) / fade_len).clamp(0, 1))
    along = torch.where(u.abs() <= a, u / a, torch.sign(u) * outside)
    vertical = smooth(ramp(v, c.nose, outer_up)) * (1 - smooth(ramp(v, outer_low, chin)))
    du = shift * along * vertical
    return Field(dx=du * c.cos - dv * c.sin, dy=du * c.sin + dv * c.cos)


def mouth_interior(params: FieldParams, xs: torch.Tensor, ys: torch.Tensor) -> Interior:
    """The mouth's inside at frame coordinates ``xs`` ``(m, 1, w)``, ``ys`` ``(m, h, 1)`` (a box
    around the opened mouth is enough: it is nothing elsewhere)."""
    c = _columns(params, xs, ys)
    v, split, b3, b4, feather = c.v, c.split, c.b3, c.b4, c.feather
    inner_up = c.tables[:, INNER_UPPER]
    gap = (c.tables[:, INNER_LOWER] - inner_up).clamp(min=0)
    shown = _per_frame(params.shown)
    # The tear is covered (the stretched source band barely shows); its soft edge, about a pixel
    # wide (wider on large faces), straddles its border: a little shadow on the teeth and lips.
    # A tear thinner than that shows faintly, so the interior grows from nothing.
    grow = ((b4 - b3 - 2 * TEAR_BAND) / feather).clamp(0, 1)
    tear = ((v - b3) / feather + 0.5).clamp(0, 1) * ((b4 - v) / feather + 0.5).clamp(0, 1) * grow
    # The interior: the source's lip gap as far as it shows the inside (none in a closed mouth,
    # where the gap the mesh reports is lip), moved with the lips, and the tear.
    top = split - (split - inner_up) * shown - c.lift
    bottom = split + (inner_up + gap - split) * shown + c.drop
    # It fades in with the frame's opening, not the column's: it must reach the corners.
    opening = ((_per_frame(params.lift + params.drop)) / feather).clamp(0, 1)
    inside = (
        ((v - top + 0.5) / feather).clamp(0, 1)
        * ((bottom - v + 0.5) / feather).clamp(0, 1)
        * ((bottom - top) / feather).clamp(0, 1)  # none past the corners, where it closes
        * opening
    )
    inside = torch.maximum(inside, tear)
    # The lower row: a band of the opening above the lower lip, read from the upper teeth
    # mirrored about their biting edge (the split line) on a narrower arch. The source's teeth
    # are (split - inner_up) high where it shows them; a band under 2 px is not drawn.
    teeth_high = (split - inner_up) * shown
    opened = c.lift + c.drop - LOWER_FROM * c.a
    band = torch.minimum(LOWER_SHOW * opened, LOWER_MAX * teeth_high).clamp(min=0)
    edge = bottom - band
    central = 1 - smooth(ramp(c.across.abs(), LOWER_REACH[0], LOWER_REACH[1]))
    lower_teeth = (
        ((v - edge) / feather + 0.5).clamp(0, 1)
        * ((bottom - v) / feather + 0.5).clamp(0, 1)
        * smooth(ramp(band, LOWER_BAND[0], LOWER_BAND[1]))
        * central
        * shown
        * inside
    )
    teeth_du = c.u * (1 - 1 / LOWER_ARCH)
    teeth_dv = v - (split - (v - edge))
    near = NEAR_SPLIT * teeth_high
    return Interior(
        tear=tear,
        interior=inside,
        below=ramp(v, b3, b4),
        near_split=smooth(ramp(v, b3 - near, b3 - near / 2)),
        teeth_dx=teeth_du * c.cos - teeth_dv * c.sin,
        teeth_dy=teeth_du * c.sin + teeth_dv * c.cos,
        lower_teeth=lower_teeth,
        central=central,
        depth=ramp(v, top, bottom),
        across=c.across,
        height=bottom - top,
    )
