"""The default engine: moves the lower lip and jaw with the audio, no model weights needed.

Per video frame the speech-band energy of the audio gives a mouth openness in [0, 1]
(:func:`inference.audio.mouth_openness`). For every frame that is open at all, the mouth
region under the face box (lower-middle part) is cut out of the Y, U and V planes, warped with
``torch.nn.functional.grid_sample`` - the lower lip and chin slide down, the upper lip a little
up, and the stretched gap between them is darkened - and written back. Frames are never
converted to RGB and nothing outside the mouth region is touched; closed-mouth frames pass
through bit for bit.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from inference.audio import mouth_openness
from inference.catalog import SPECS
from inference.engines.base import Engine, RenderPlan
from inference.engines.pipeline import FrameBatch

# Mouth region relative to the Haar face box (which runs from the forehead to about the
# lower lip): x from 12% to 88% of the box width, y from 60% to 125% of its height.
ROI_X = (0.12, 0.88)
ROI_Y = (0.60, 1.25)
#: Where the lips meet, as a fraction of the region's height (~0.82 of the face box).
MOUTH_LINE = (0.82 - ROI_Y[0]) / (ROI_Y[1] - ROI_Y[0])
#: Largest downward shift of the lower lip / upward shift of the upper lip (region heights).
LOWER_SHIFT = 0.10
UPPER_SHIFT = 0.025
#: Vertical spans (region heights) over which the lips are pulled open. The slopes
#: (shift * pi / 2 / span) stay under 1 so the warp never folds.
LOWER_SPAN = 0.18
UPPER_SPAN = 0.08
#: The gap is where the output shows the lips' contact line, stretched: rows whose source lies
#: within GAP_WIDTH (region heights) of the mouth line. DARKEN: 0 = untouched, 1 = black.
GAP_WIDTH = 0.03
DARKEN = 0.6
#: Frames below this openness are left untouched.
MIN_OPEN = 0.02


def _profile(s: torch.Tensor) -> torch.Tensor:
    """Vertical displacement profile D(s) (down positive, in region heights).

    Zero at the top and bottom of the region, rising to +LOWER_SHIFT under the mouth line and
    -UPPER_SHIFT over it.
    """
    m = MOUTH_LINE
    below = s - m
    rise = torch.sin(0.5 * math.pi * (below / LOWER_SPAN).clamp(0, 1)) ** 2
    fall_span = max(1e-6, 1.0 - m - LOWER_SPAN)
    fall = torch.cos(0.5 * math.pi * ((below - LOWER_SPAN) / fall_span).clamp(0, 1)) ** 2
    lower = torch.where(below < LOWER_SPAN, rise, fall) * (below > 0)
    above = m - s
    up_rise = torch.sin(0.5 * math.pi * (above / UPPER_SPAN).clamp(0, 1)) ** 2
    up_fall_span = max(1e-6, m - UPPER_SPAN)
    up_fall = torch.cos(0.5 * math.pi * ((above - UPPER_SPAN) / up_fall_span).clamp(0, 1)) ** 2
    upper = torch.where(above < UPPER_SPAN, up_rise, up_fall) * (above > 0)
    return LOWER_SHIFT * lower - UPPER_SHIFT * upper


class WarpEngine(Engine):
    """Audio-driven mouth warp on the yuv420p planes (default engine, CPU friendly).

    An instance renders one clip at a time (it keeps the clip's openness curve).
    """

    name: ClassVar[str] = "warp"
    label: ClassVar[str] = SPECS["warp"].label
    description: ClassVar[str] = SPECS["warp"].description
    default_batch_size: ClassVar[int] = 16

    def __init__(self) -> None:
        self._open: np.ndarray | None = None
        self._grids: dict[tuple[int, int, str], tuple[torch.Tensor, ...]] = {}

    def torch_threads(self, device: torch.device) -> int | None:
        # The mouth regions are small; on the CPU ffmpeg's encoder needs the cores more.
        return 1 if device.type == "cpu" else None

    def prepare(self, plan: RenderPlan) -> None:
        """Compute the per-frame mouth openness from the audio."""
        self._open = (
            mouth_openness(plan.samples, plan.fps_value, plan.n_frames, plan.device).cpu().numpy()
        )

    def _fields(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Identity grid ``(h, w, 2)``, displacement ``(h, w)`` and horizontal weight ``(1, w)``
        of an ``h`` x ``w`` region, in grid_sample units (the region spans -1..1)."""
        key = (h, w, str(device))
        if key not in self._grids:
            if len(self._grids) > 64:  # region sizes follow the face size: keep a few
                self._grids.clear()
            ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h  # 0..1
            xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w * 2 - 1
            # Horizontal weight: full in the middle, zero at the region's sides.
            wx = torch.cos(0.5 * math.pi * (xs / 0.92).clamp(-1, 1)) ** 2
            base = torch.stack(torch.meshgrid(xs, ys * 2 - 1, indexing="xy"), dim=-1)
            shift = _profile(ys)[:, None] * wx[None, :] * 2
            self._grids[key] = (base, shift, wx[None, :])
        return self._grids[key]

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Warp the mouth region of the open-mouthed frames of ``batch`` in place."""
        assert self._open is not None and batch.boxes is not None
        openness = self._open[np.minimum(batch.out_index, len(self._open) - 1)]
        rows = np.flatnonzero(openness >= MIN_OPEN)
        if rows.size == 0:
            return
        boxes = batch.boxes[rows]
        W, H = batch.width, batch.height
        bw, bh = float(boxes[:, 2].mean()), float(boxes[:, 3].mean())
        # One region size per batch (boxes barely change within one); even for the chroma.
        rw = min(W, max(8, round(bw * (ROI_X[1] - ROI_X[0]) / 2) * 2))
        rh = min(H, max(8, round(bh * (ROI_Y[1] - ROI_Y[0]) / 2) * 2))
        x0 = np.clip(np.round((boxes[:, 0] + boxes[:, 2] * ROI_X[0]) / 2) * 2, 0, W - rw)
        y0 = np.clip(np.round((boxes[:, 1] + boxes[:, 3] * ROI_Y[0]) / 2) * 2, 0, H - rh)
        x0, y0 = x0.astype(int), y0.astype(int)
        y_pl, u_pl, v_pl = batch.planes()
        luma = np.stack(
            [y_pl[r, b : b + rh, a : a + rw] for r, a, b in zip(rows, x0, y0, strict=True)]
        )
        cx0, cy0, cw, ch = x0 // 2, y0 // 2, rw // 2, rh // 2
        chroma = np.stack(
            [
                np.stack([u_pl[r, b : b + ch, a : a + cw], v_pl[r, b : b + ch, a : a + cw]])
                for r, a, b in zip(rows, cx0, cy0, strict=True)
            ]
        )
        dev = plan.device
        amount = torch.from_numpy(openness[rows].astype(np.float32)).to(dev).view(-1, 1, 1)
        new_luma = self._warp(torch.from_numpy(luma).to(dev).unsqueeze(1), amount, dark=True)
        new_chroma = self._warp(torch.from_numpy(chroma).to(dev), amount, dark=False)
        new_luma_np = new_luma.squeeze(1).cpu().numpy()
        new_chroma_np = new_chroma.cpu().numpy()
        for k, (r, a, b) in enumerate(zip(rows, x0, y0, strict=True)):
            y_pl[r, b : b + rh, a : a + rw] = new_luma_np[k]
            u_pl[r, b // 2 : b // 2 + ch, a // 2 : a // 2 + cw] = new_chroma_np[k, 0]
            v_pl[r, b // 2 : b // 2 + ch, a // 2 : a // 2 + cw] = new_chroma_np[k, 1]

    def _warp(self, planes: torch.Tensor, amount: torch.Tensor, *, dark: bool) -> torch.Tensor:
        """Warp a ``(n, c, h, w)`` uint8 batch by per-frame ``amount`` ``(n, 1, 1)``."""
        n, _, h, w = planes.shape
        base, shift, wx = self._fields(h, w, planes.device)
        grid = base.unsqueeze(0).repeat(n, 1, 1, 1)
        # Output row s shows input row s - D(s): content below the mouth line moves down.
        grid[..., 1] -= shift.unsqueeze(0) * amount
        warped = F.grid_sample(
            planes.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        if dark:
            source_row = (grid[..., 1] + 1) / 2  # (n, h, w), 0..1
            gap = torch.exp(-(((source_row - MOUTH_LINE) / GAP_WIDTH) ** 2))
            warped = warped * (1 - DARKEN * gap * wx * wx * amount).unsqueeze(1)
        return warped.round_().clamp_(0, 255).to(torch.uint8)
