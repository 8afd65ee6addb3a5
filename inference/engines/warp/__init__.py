"""The default ``warp`` engine: the lips part along their real contour, no model weights.

- :mod:`~inference.engines.warp.engine`: :class:`WarpEngine`, the amounts per frame and the
  batch warp on the yuv420p planes;
- :mod:`~inference.engines.warp.geometry`: each frame's mouth from its landmarks;
- :mod:`~inference.engines.warp.teeth`: where the mouth opens, under the avatar's upper teeth;
- :mod:`~inference.engines.warp.field`: the displacement field (never folds) and the mouth's
  inside (tear, interior, the lower row of teeth);
- :mod:`~inference.engines.warp.interior`: what the inside shows: a shaded cavity, the avatar's
  own teeth.
"""

from __future__ import annotations

from inference.engines.warp.engine import MIN_OPEN, WarpEngine, warp_frames

__all__ = ["MIN_OPEN", "WarpEngine", "warp_frames"]
