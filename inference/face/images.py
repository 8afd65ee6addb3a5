"""Frames as the face models see them: RGB, a yuv420p frame's planes, or a bare Y plane.

The models need RGB, but frames in the render pipeline are yuv420p. Converting a whole 1080p
frame costs more than running the mesh, so nothing here ever does: the detector gets a
downscaled window (each plane is resized first, then the few thousand pixels are converted) and
the mesh gets its 192 x 192 crop warped out of each plane separately, converted afterwards.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# BT.601 limited range YUV -> RGB, the same conversion as OpenCV's COLOR_YUV2RGB_I420 (which
# the engines use when they convert crops), as one affine map for cv2.transform.
_YUV_TO_RGB = np.array(
    [
        [1.164, 0.0, 1.596, -1.164 * 16 - 1.596 * 128],
        [1.164, -0.391, -0.813, -1.164 * 16 + (0.391 + 0.813) * 128],
        [1.164, 2.018, 0.0, -1.164 * 16 - 2.018 * 128],
    ],
    dtype=np.float32,
)

# A chroma sample of a yuv420p plane covers 2 x 2 luma pixels: its centre is at 2 * i + 0.5.
_CHROMA_TO_LUMA = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return cv2.transform(np.dstack([y, u, v]), _YUV_TO_RGB)


@dataclasses.dataclass(frozen=True)
class FaceImage:
    """One frame for the face models: either ``rgb`` (h, w, 3) or the planes ``y`` / ``u`` / ``v``.

    Without ``u`` and ``v`` the Y plane stands for a grey picture (what the old Haar-based
    callers pass). Build one with :meth:`from_rgb`, :meth:`from_yuv` or :meth:`from_gray`.
    """

    rgb: np.ndarray | None = None
    y: np.ndarray | None = None
    u: np.ndarray | None = None
    v: np.ndarray | None = None

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> FaceImage:
        """An RGB uint8 image ``(h, w, 3)``."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an RGB uint8 image of shape (h, w, 3)")
        return cls(rgb=rgb)

    @classmethod
    def from_yuv(cls, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> FaceImage:
        """The planes of one yuv420p frame: ``y`` (h, w), ``u`` and ``v`` (h/2, w/2)."""
        if u.shape != v.shape or u.shape != (y.shape[0] // 2, y.shape[1] // 2):
            raise ValueError("u and v must be the half-size planes of a yuv420p frame")
        return cls(y=y, u=u, v=v)

    @classmethod
    def from_gray(cls, gray: np.ndarray) -> FaceImage:
        """A grey (or Y-plane) uint8 image ``(h, w)``: the models see it as a grey photo."""
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError("expected a grey uint8 image of shape (h, w)")
        return cls(y=gray)

    @property
    def _full(self) -> np.ndarray:
        """The full-resolution array (RGB or Y) that gives the frame's size."""
        full = self.rgb if self.rgb is not None else self.y
        assert full is not None, "a FaceImage needs rgb or y"
        return full

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self._full.shape[0])

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self._full.shape[1])

    def window(self, x0: float, y0: float, side: float, size: int) -> np.ndarray:
        """The square ``[x0, x0 + side) x [y0, y0 + side)`` of the frame as a ``size`` x
        ``size`` RGB uint8 image, black where it leaves the frame (the detector's letterbox).

        Downscaling uses area averaging (no aliasing however small the result), on each plane
        before any colour conversion.
        """
        out = np.zeros((size, size, 3), dtype=np.uint8)
        scale = size / side
        fx0, fy0 = max(0, round(x0)), max(0, round(y0))
        fx1, fy1 = min(self.width, round(x0 + side)), min(self.height, round(y0 + side))
        if fx1 <= fx0 or fy1 <= fy0:
            return out
        ox, oy = round((fx0 - x0) * scale), round((fy0 - y0) * scale)
        tw = max(1, min(size - ox, round((fx1 - fx0) * scale)))
        th = max(1, min(size - oy, round((fy1 - fy0) * scale)))
        out[oy : oy + th, ox : ox + tw] = self._resized(fx0, fy0, fx1, fy1, tw, th)
        return out

    def _resized(self, x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> np.ndarray:
        def shrink(plane: np.ndarray) -> np.ndarray:
            return cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA)

        if self.rgb is not None:
            return shrink(self.rgb[y0:y1, x0:x1])
        assert self.y is not None
        luma = shrink(self.y[y0:y1, x0:x1])
        if self.u is None or self.v is None:
            return cv2.cvtColor(luma, cv2.COLOR_GRAY2RGB)
        cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, max(x0 // 2 + 1, x1 // 2), max(y0 // 2 + 1, y1 // 2)
        return _yuv_to_rgb(luma, shrink(self.u[cy0:cy1, cx0:cx1]), shrink(self.v[cy0:cy1, cx0:cx1]))

    def warp(self, matrix: np.ndarray, size: int) -> np.ndarray:
        """``size`` x ``size`` RGB uint8 crop through the affine ``matrix`` (frame px -> crop
        px, 2 x 3): only the crop's pixels are sampled and converted."""

        def sample(plane: np.ndarray, m: np.ndarray) -> np.ndarray:
            return cv2.warpAffine(
                plane, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )

        if self.rgb is not None:
            return sample(self.rgb, matrix)
        assert self.y is not None
        luma = sample(self.y, matrix)
        if self.u is None or self.v is None:
            return cv2.cvtColor(luma, cv2.COLOR_GRAY2RGB)
        chroma = np.vstack([matrix, [0.0, 0.0, 1.0]]) @ _CHROMA_TO_LUMA
        # Outside the frame the crop is black: luma 0 with neutral chroma, not green.
        u = cv2.warpAffine(
            self.u, chroma[:2], (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=128,
        )  # fmt: skip
        v = cv2.warpAffine(
            self.v, chroma[:2], (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=128,
        )  # fmt: skip
        return _yuv_to_rgb(luma, u, v)
