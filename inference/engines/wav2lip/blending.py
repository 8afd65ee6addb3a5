"""How Wav2Lip's output goes back into the frame: a feathered lower-face mask on the YUV planes.

The original pastes the whole 96 x 96 prediction, resized, over the crop rectangle
(``f[y1:y2, x1:x2] = p``): a blurred rectangle with a visible edge. Here the prediction is blended
through a soft mask built from the frame's mesh points (:func:`lower_face_mask`): the part of the
face oval below the nose base (landmark 2, the line across the face there), the oval widened by
the crop's chin pad so that a jaw the model opens stays inside, and never the crop's outermost
pixels. Alpha rises from exactly 0 on that region's edge to 1 at :data:`FEATHER` of the box height
inside it (smoothstep: no kink at either end), so there is no seam, and every pixel the region
does not reach - everything above the nose, beside and below the face, the crop's border -
keeps its Y, U and V bit for bit.

Frames stay yuv420p: only the crop rectangle is converted to BGR (the model's colour order) and
back, and each plane is blended at its own resolution. A chroma sample takes the smallest alpha
of the four luma pixels it covers, so a pixel whose luma is untouched keeps its colour too.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.engines.regions import crop_color, paste_color
from inference.engines.wav2lip.crops import CHIN_PAD
from inference.face import landmarks as lm

#: Width of the mask's soft edge, as a share of the crop's height (at least MIN_FEATHER px).
FEATHER = 0.06
MIN_FEATHER = 2.0

_OVAL = np.array(lm.FACE_OVAL)


def lower_face_mask(landmarks: np.ndarray, rect: np.ndarray | tuple[int, ...]) -> np.ndarray:
    """The blend alpha ``(h, w)`` float32 in 0..1 of one crop rectangle ``[x0, y0, x1, y1]``
    for the face whose mesh points (frame px) are ``landmarks`` ``(468, 2 or 3)``."""
    x0, y0, x1, y1 = (int(c) for c in rect)
    w, h = x1 - x0, y1 - y0
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2] - (x0, y0)
    feather = max(MIN_FEATHER, FEATHER * h)
    # Pixel (i, j) covers [j, j + 1) x [i, i + 1): its centre is at (j + 0.5, i + 0.5).
    cols = np.arange(w, dtype=np.float32) + 0.5
    rows = np.arange(h, dtype=np.float32) + 0.5

    # Signed distance into the face oval (> 0 inside), then widened by the chin pad.
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(xy[_OVAL] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    depth = np.where(inside > 0, d_in - 0.5, 0.5 - d_out)
    chin, top = xy[lm.CHIN], xy[lm.FOREHEAD_TOP]
    down = (chin - top) / max(float(np.hypot(*(chin - top))), 1e-6)
    depth += CHIN_PAD * h

    # Distance below the line across the face at the nose base (> 0 below it).
    nose = xy[lm.NOSE_BASE]
    below = (cols[None, :] - nose[0]) * down[0] + (rows[:, None] - nose[1]) * down[1]

    # Distance from the crop's outermost pixels (0 on them).
    jj, ii = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    edge = np.minimum(np.minimum(jj, w - 1 - jj)[None, :], np.minimum(ii, h - 1 - ii)[:, None])

    reach = np.minimum(np.minimum(depth, below), edge)
    t = np.clip(reach / feather, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def chroma_alpha(alpha: np.ndarray) -> np.ndarray:
    """A luma alpha ``(h, w)`` (even sizes) at chroma resolution: the smallest of each 2 x 2."""
    h, w = alpha.shape
    return alpha.reshape(h // 2, 2, w // 2, 2).min(axis=(1, 3))


def crop_bgr(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, rect: np.ndarray | tuple[int, ...]
) -> np.ndarray:
    """BGR ``(h, w, 3)`` uint8 of one even-aligned rectangle of a yuv420p frame (only it)."""
    return crop_color(y, u, v, rect, cv2.COLOR_YUV2BGR_I420)


def paste_bgr(
    bgr: np.ndarray,
    alpha: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    rect: np.ndarray | tuple[int, ...],
) -> None:
    """Blend a BGR patch of the rectangle's size into one even-aligned rectangle of the Y, U,
    V planes through ``alpha`` (the rectangle's luma alpha, e.g. :func:`lower_face_mask`)."""
    paste_color(bgr, cv2.COLOR_BGR2YUV_I420, y, u, v, rect, alpha, chroma_alpha(alpha))
