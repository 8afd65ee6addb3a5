"""The ``warp`` engine: per frame, the lips part along their real contour, driven by the voice.

For each frame of a batch whose mouth is open at all (:func:`inference.articulation.articulation`
gives ``open`` and ``round_spread`` per output frame), the mouth is measured from the frame's
landmarks (:mod:`~inference.engines.warp.geometry`) and where it opens is read from its pixels
(under the upper teeth when it shows them: :mod:`~inference.engines.warp.teeth`); a tight region
around it is cut out of the Y, U and V planes, moved by the displacement field of
:mod:`~inference.engines.warp.field` with ``torch.nn.functional.grid_sample`` (one call for Y
and one for U + V per batch, on the device), the mouth's inside is worked out on a box around
the mouth (:func:`~inference.engines.warp.field.mouth_interior`: a shaded cavity, the avatar's
own upper teeth and, read from them, a lower row: :mod:`~inference.engines.warp.interior`), and
the region is written back. Pixels the field leaves in place are copied, not resampled, so
everything above the nose base, around the region and in frames with a closed mouth stays
bit-identical; frames are never converted to RGB.

How far things move (fractions of the mouth's width, at ``open`` = 1): the lower lip and the jaw
``DROP``, the upper lip ``LIFT``, the corners ``SPREAD`` out for /i e/ and ``ROUND`` in for
/u o/. ``open`` is raised to ``OPEN_GAMMA`` first (soft syllables still show; from nothing at
``MIN_OPEN``) and computed with a visual lead of ``LEAD_S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from inference.articulation import articulation
from inference.audio import SAMPLE_RATE
from inference.catalog import SPECS
from inference.engines.base import Engine, RenderPlan
from inference.engines.pipeline import FrameBatch
from inference.engines.warp.field import Field, FieldParams, Interior, mouth_field, mouth_interior
from inference.engines.warp.geometry import (
    JAW_LINE,
    OUTER_LOWER,
    OUTER_UPPER,
    MouthFrames,
    lip_colour,
    mouth_frames,
)
from inference.engines.warp.interior import (
    composite,
    coverage,
    interior_chroma,
    interior_luma,
    kept_weight,
    lower_teeth_chroma,
    lower_teeth_luma,
    paleness,
    shading,
    teeth_weight,
)
from inference.engines.warp.teeth import find_split

#: Lower lip and jaw drop, upper lip lift, at full opening (mouth widths).
DROP = 0.24
LIFT = 0.05
#: The chin drops this much of the lower lip's drop.
JAW = 1.0
#: Under the chin the jaw's drop fades over BELOW times the drop, at least BELOW_MIN widths.
BELOW = 2.5
BELOW_MIN = 0.3
#: Corners out (spread vowels) and in (rounded vowels) at full shape (mouth widths).
SPREAD = 0.06
ROUND = 0.10
#: The shape shows fully once the mouth is this open.
SHAPE_OPEN = 0.3
#: Opening curve exponent (under 1: soft syllables still show), and how much earlier than the
#: sound the mouth moves (s). The articulation's own 40 ms lead puts the lips a whole frame
#: ahead of the voice at 25 fps, which a judge of sync at lag 0 reads as out of step (r with
#: loudness ~0.5 instead of ~0.75 on espeak-ng speech); 10 ms keeps them just ahead.
OPEN_GAMMA = 0.6
LEAD_S = 0.01
#: Frames less open than this pass through untouched.
MIN_OPEN = 0.02


@dataclass
class Amounts:
    """How far each part moves in each frame (px, ``(m,)`` float32)."""

    lift: np.ndarray
    drop: np.ndarray
    jaw: np.ndarray
    below: np.ndarray
    shift: np.ndarray


def amounts(geom: MouthFrames, opening: np.ndarray, shape: np.ndarray) -> Amounts:
    """The per-frame amounts for mouths ``geom`` at ``opening`` [0, 1] and lip ``shape``
    [-1 rounded, 1 spread]."""
    width = 2 * geom.half_width
    # From nothing at MIN_OPEN (the frames under it are left alone): no jump at the threshold.
    o = np.clip((opening - MIN_OPEN) / (1 - MIN_OPEN), 0, 1) ** OPEN_GAMMA
    drop = DROP * width * o
    jaw = JAW * drop
    t = np.clip(opening / SHAPE_OPEN, 0, 1)
    weight = t * t * (3 - 2 * t)
    shape = np.clip(shape, -1, 1)
    shift = np.where(shape > 0, SPREAD, ROUND) * width * shape * weight
    return Amounts(
        lift=(LIFT * width * o).astype(np.float32),
        drop=drop.astype(np.float32),
        jaw=jaw.astype(np.float32),
        below=np.maximum(BELOW * jaw, BELOW_MIN * width).astype(np.float32),
        shift=shift.astype(np.float32),
    )


def regions(
    geom: MouthFrames, amt: Amounts, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Where to cut each frame's region: top-left corners ``x0``, ``y0`` ``(m,)`` (even) and one
    even size ``w`` x ``h`` for the batch, inside the frame. The region holds every pixel the
    field moves: face edge to face edge, nose base to under the dropped chin."""
    bottom = geom.tables[:, JAW_LINE].max(axis=1) + amt.jaw + amt.below + 2
    u = np.stack([geom.edges[:, 0], geom.edges[:, 1]] * 2, axis=1)
    v = np.stack([geom.nose, geom.nose, bottom, bottom], axis=1)
    corners = geom.to_frame(u, v)  # (m, 4, 2)
    low, high = corners.min(axis=1) - 2, corners.max(axis=1) + 2
    size = np.ceil((high - low).max(axis=0) / 2) * 2 + 2
    w = int(min(max(size[0], 8), width - width % 2))
    h = int(min(max(size[1], 8), height - height % 2))
    x0 = np.clip(np.floor(low[:, 0] / 2) * 2, 0, width - w).astype(np.int64)
    y0 = np.clip(np.floor(low[:, 1] / 2) * 2, 0, height - h).astype(np.int64)
    return x0, y0, w, h


def field_params(geom: MouthFrames, amt: Amounts, device: torch.device) -> FieldParams:
    """:class:`FieldParams` on ``device``."""

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)

    return FieldParams(
        center=t(geom.center),
        axis=t(geom.axis),
        half_width=t(geom.half_width),
        inner_half=t(geom.inner_half),
        edges=t(geom.edges),
        nose=t(geom.nose),
        knots_start=t(geom.knots_start),
        knots_step=t(geom.knots_step),
        tables=t(geom.tables),
        lift=t(amt.lift),
        drop=t(amt.drop),
        jaw=t(amt.jaw),
        below=t(amt.below),
        shift=t(amt.shift),
        shown=t(geom.shown),
    )


def chroma_grid(
    x0: np.ndarray, y0: np.ndarray, w: int, h: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame coordinates ``(m, 1, w/2)``, ``(m, h/2, 1)`` of the chroma samples of each frame's
    ``w`` x ``h`` luma region at ``x0``, ``y0`` (each centred on its 2 x 2 luma pixels)."""
    cols = torch.arange(w // 2, dtype=torch.float32, device=device) * 2 + 0.5
    rows = torch.arange(h // 2, dtype=torch.float32, device=device) * 2 + 0.5
    xs = torch.from_numpy(x0.astype(np.float32)).to(device).view(-1, 1, 1) + cols.view(1, 1, -1)
    ys = torch.from_numpy(y0.astype(np.float32)).to(device).view(-1, 1, 1) + rows.view(1, -1, 1)
    return xs, ys


def region_field(params: FieldParams, x0: np.ndarray, y0: np.ndarray, w: int, h: int) -> Field:
    """The field over each frame's ``w`` x ``h`` luma region at ``x0``, ``y0``, evaluated at the
    region's chroma samples (``w/2`` x ``h/2``): a quarter of the work, and smooth enough to be
    upsampled for the luma (:func:`upsample`)."""
    return mouth_field(params, *chroma_grid(x0, y0, w, h, params.center.device))


def mouth_box(
    geom: MouthFrames, amt: Amounts, x0: np.ndarray, y0: np.ndarray, w: int, h: int
) -> tuple[int, int, int, int]:
    """Where the opened mouths lie in the batch's regions: ``(bx, by, bw, bh)`` in chroma samples
    of the region (one box for the batch), holding the outer lips moved by the amounts, the
    corners moved sideways, and a feather's margin."""
    reach = geom.half_width + np.abs(amt.shift) + 3
    top = geom.tables[:, OUTER_UPPER].min(axis=1) - amt.lift - 3
    bottom = geom.tables[:, OUTER_LOWER].max(axis=1) + amt.drop + 3
    u = np.stack([-reach, reach, -reach, reach], axis=1)
    v = np.stack([top, top, bottom, bottom], axis=1)
    corners = geom.to_frame(u, v) - np.stack([x0, y0], axis=1)[:, None, :]  # region luma px
    low = np.floor(corners.min(axis=(0, 1)) / 2).astype(int)
    high = np.ceil(corners.max(axis=(0, 1)) / 2).astype(int) + 1
    bx, by = max(0, int(low[0])), max(0, int(low[1]))
    bw = max(1, min(w // 2, int(high[0])) - bx)
    bh = max(1, min(h // 2, int(high[1])) - by)
    return bx, by, bw, bh


def upsample(*maps: torch.Tensor) -> list[torch.Tensor]:
    """``(m, h/2, w/2)`` maps at the chroma samples -> ``(m, h, w)`` at the luma pixels
    (bilinear; a map that is zero around a pixel stays exactly zero there)."""
    stacked = torch.stack(maps, dim=1)
    up = F.interpolate(stacked, scale_factor=2.0, mode="bilinear", align_corners=False)
    return list(up.unbind(1))


def resample(
    planes: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, x0: int = 0, y0: int = 0
) -> torch.Tensor:
    """``grid_sample`` of ``(m, c, H, W)`` float regions: output pixel ``p`` of a ``(m, h, w)``
    grid whose top-left is pixel ``(x0, y0)`` of the regions shows the input at
    ``p - (dx, dy)`` (in this plane's pixels), as float ``(m, c, h, w)``."""
    _, _, height, width = planes.shape
    h, w = dx.shape[1:]
    device = planes.device
    sx = torch.arange(x0, x0 + w, dtype=torch.float32, device=device).view(1, 1, w) - dx
    sy = torch.arange(y0, y0 + h, dtype=torch.float32, device=device).view(1, h, 1) - dy
    grid = torch.stack([(2 * sx + 1) / width - 1, (2 * sy + 1) / height - 1], dim=-1)
    return F.grid_sample(planes, grid, mode="bilinear", padding_mode="border", align_corners=False)


def half(x: torch.Tensor) -> torch.Tensor:
    """A ``(m, h, w)`` luma-grid quantity at the chroma samples (mean of each 2 x 2 block)."""
    return F.avg_pool2d(x.unsqueeze(1), 2).squeeze(1)


def finish(result: torch.Tensor, original: torch.Tensor, changed: torch.Tensor) -> np.ndarray:
    """uint8 regions: ``result`` where ``changed`` ``(m, h, w)``, else the original pixels."""
    out = result.round_().clamp_(0, 255).to(torch.uint8)
    return torch.where(changed.unsqueeze(1), out, original).cpu().numpy()


def open_mouths(
    luma: torch.Tensor,
    chroma: torch.Tensor,
    params: FieldParams,
    field: Field,
    inner: Interior,
    box: tuple[int, int, int, int],
    lip: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """The opened mouths: luma ``(m, 1, h, w)`` and chroma ``(m, 2, h/2, w/2)`` uint8 regions
    through ``field`` (at the chroma samples: :func:`region_field`), with the interior (on the
    chroma samples of ``box``: :func:`mouth_box`) painted and the lower teeth drawn (``lip``:
    the lip's Y, U, V, ``(m, 3)``). The maps are upsampled for the luma; teeth are told from
    lip on the luma pixels (sharp edges), and what is painted on the chroma samples is the mean
    of that. Pixels the field does not touch are returned unchanged."""
    lip_y = lip[:, 0]
    bx, by, bw, bh = box
    source, source_c = luma.float(), chroma.float()
    dx, dy = upsample(field.dx, field.dy)
    warped = resample(source, dx, dy)
    warped_c = resample(source_c, field.dx / 2, field.dy / 2)
    moved = dx.abs() + dy.abs() > 1e-3
    # The inside of the mouth, in the box only (views: painted in place).
    box_c = (slice(None), slice(None), slice(by, by + bh), slice(bx, bx + bw))
    box_y = (slice(None), slice(None), slice(2 * by, 2 * (by + bh)), slice(2 * bx, 2 * (bx + bw)))
    mouth, mouth_c = warped[box_y], warped_c[box_c]
    teeth_c = resample(source_c, inner.teeth_dx / 2, inner.teeth_dy / 2, bx, by)
    cavity, tongue = shading(inner, params.half_width)
    tdx, tdy, tear, interior, below, near, central, lower_zone, pale, teeth_pale, inside = upsample(
        inner.teeth_dx, inner.teeth_dy, inner.tear, inner.interior, inner.below,
        inner.near_split, inner.central, inner.lower_teeth, paleness(mouth_c[:, 1], lip),
        paleness(teeth_c[:, 1], lip), interior_luma(cavity, tongue, lip_y),
    )  # fmt: skip
    teeth = resample(source, tdx, tdy, 2 * bx, 2 * by)
    kept = kept_weight(mouth[:, 0], pale, below, near, central, lip_y)
    # A pixel kept alone amid the cavity (or a hole in the teeth) is a speck: smoothed away.
    kept = F.avg_pool2d(kept.unsqueeze(1), 3, stride=1, padding=1, count_include_pad=False)
    alpha = coverage(tear, interior, kept.squeeze(1))
    lower = lower_zone * teeth_weight(teeth[:, 0], teeth_pale, lip_y)
    painted = composite(mouth, inside.unsqueeze(1), alpha)
    mouth.copy_(composite(painted, lower_teeth_luma(teeth), lower))
    moved[box_y[0], box_y[2], box_y[3]] |= (alpha > 0) | (lower > 0)
    alpha_c, lower_c = half(alpha), half(lower)
    painted_c = composite(mouth_c, interior_chroma(tongue), alpha_c)
    mouth_c.copy_(composite(painted_c, lower_teeth_chroma(teeth_c), lower_c))
    new_luma = finish(warped, luma, moved)
    moved_c = F.max_pool2d(moved.unsqueeze(1).float(), 2).squeeze(1) > 0
    return new_luma[:, 0], finish(warped_c, chroma, moved_c)


def warp_frames(
    y_pl: np.ndarray,
    u_pl: np.ndarray,
    v_pl: np.ndarray,
    rows: np.ndarray,
    points: np.ndarray,
    opening: np.ndarray,
    shape: np.ndarray,
    device: torch.device,
) -> None:
    """Open the mouths of frames ``rows`` of the planes ``(n, h, w)`` / ``(n, h/2, w/2)`` in
    place; ``points`` ``(len(rows), 468, 2)``, ``opening`` and ``shape`` ``(len(rows),)``."""
    geom = mouth_frames(points)
    amt = amounts(geom, opening, shape)
    height, width = y_pl.shape[1:]
    x0, y0, w, h = regions(geom, amt, width, height)
    cx0, cy0, cw, ch = x0 // 2, y0 // 2, w // 2, h // 2
    luma = np.stack([y_pl[r, b : b + h, a : a + w] for r, a, b in zip(rows, x0, y0, strict=True)])
    chroma = np.stack(
        [
            np.stack([u_pl[r, b : b + ch, a : a + cw], v_pl[r, b : b + ch, a : a + cw]])
            for r, a, b in zip(rows, cx0, cy0, strict=True)
        ]
    )
    lip_yuv = lip_colour(points, y_pl, u_pl, v_pl, rows)
    find_split(geom, y_pl, u_pl, v_pl, rows, lip_yuv)
    params = field_params(geom, amt, device)
    lip = torch.from_numpy(lip_yuv).to(device)
    field = region_field(params, x0, y0, w, h)
    box = mouth_box(geom, amt, x0, y0, w, h)
    bx, by, bw, bh = box
    inner = mouth_interior(params, *chroma_grid(x0 + 2 * bx, y0 + 2 * by, 2 * bw, 2 * bh, device))
    new_luma, new_chroma = open_mouths(
        torch.from_numpy(luma).to(device).unsqueeze(1),
        torch.from_numpy(chroma).to(device),
        params,
        field,
        inner,
        box,
        lip,
    )
    for k, (r, a, b) in enumerate(zip(rows, x0, y0, strict=True)):
        y_pl[r, b : b + h, a : a + w] = new_luma[k]
        u_pl[r, b // 2 : b // 2 + ch, a // 2 : a // 2 + cw] = new_chroma[k, 0]
        v_pl[r, b // 2 : b // 2 + ch, a // 2 : a // 2 + cw] = new_chroma[k, 1]


class WarpEngine(Engine):
    """Audio-driven mouth warp on the yuv420p planes (default engine, CPU friendly).

    An instance renders one clip at a time (it keeps the clip's articulation curves).
    """

    name: ClassVar[str] = "warp"
    label: ClassVar[str] = SPECS["warp"].label
    description: ClassVar[str] = SPECS["warp"].description
    default_batch_size: ClassVar[int] = 16

    def __init__(self) -> None:
        self._open: np.ndarray | None = None
        self._shape: np.ndarray | None = None

    def torch_threads(self, device: torch.device) -> int | None:
        # The mouth regions are small; on the CPU ffmpeg's encoder needs the cores more.
        return 1 if device.type == "cpu" else None

    def prepare(self, plan: RenderPlan) -> None:
        """Compute the per-frame opening and lip shape from the audio."""
        art = articulation(
            plan.samples, SAMPLE_RATE, plan.fps_value, plan.n_frames, device=plan.device,
            lead_s=LEAD_S,
        )  # fmt: skip
        self._open = art.open.cpu().numpy()
        self._shape = art.round_spread.cpu().numpy()

    def frame_amounts(self, out_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(opening, shape)`` of output frames ``out_index`` (after :meth:`prepare`)."""
        assert self._open is not None and self._shape is not None
        idx = np.minimum(np.asarray(out_index), len(self._open) - 1)
        return self._open[idx], self._shape[idx]

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Open the mouth of the frames of ``batch`` that speak, in place."""
        assert batch.landmarks is not None
        opening, shape = self.frame_amounts(batch.out_index)
        rows = np.flatnonzero(opening >= MIN_OPEN)
        if rows.size == 0:
            return
        y_pl, u_pl, v_pl = batch.planes()
        warp_frames(
            y_pl, u_pl, v_pl, rows, batch.landmarks[rows], opening[rows], shape[rows], plan.device
        )
