"""Where MuseTalk looks and how its output goes back: crop boxes, the lower-face mask, YUV I/O.

The release crops each frame with a box built from 68 face landmarks: left and right at the
jaw's extremes, bottom at the chin plus ``extra_margin`` (10 px), top as far above landmark 29
(low on the bridge of the nose) as the chin is below it - so the middle of the box, where the
UNet's input mask starts, is the nose. :func:`crop_boxes` rebuilds that box from the face boxes
the render pipeline hands out (the bounding box of the 468-point face mesh: forehead top to
chin, cheek to cheek), measuring the nose line on the mesh points when it has them.

The release pastes the 256x256 result back through a face-parsing mask of the jaw below the
box's middle, blurred; here an elliptic lower-face mask with a smooth falloff does that job: it
is exactly 0 above the nose line and along the crop's edges (no rectangular seam, and every
pixel it does not cover is left bit-identical) and 1 around the mouth.

Frames stay yuv420p: only the crop rectangle is converted to RGB (for the model) and only the
blended pixels are written back, on each plane at its own resolution.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from inference.engines.regions import crop_color, paste_color

#: The model's face size.
FACE_SIZE = 256

# Where the release's landmark box sits in the face mesh's bounding box (fractions of its
# size, measured on frontal faces): landmark 29 (two thirds of the way down the bridge of the
# nose: mesh point 168 to the tip, 1), the chin (152) at the bottom edge, the jaw's extremes
# (234, 454) at the sides.
NOSE_Y = 0.47
CHIN_Y = 1.0
JAW_X = (0.0, 1.0)
#: Mesh points of the top of the nose bridge and of the nose tip (the release's 27 and 30).
NOSE_BRIDGE, NOSE_TIP = 168, 1
#: ``extra_margin`` below the chin: 10 px for the release's typical faces, as a fraction.
EXTRA_MARGIN = 0.04
#: Changes whenever the geometry above does (cached latents depend on it).
CROP_VERSION = 1

# The lower-face mask, in crop coordinates (0..1 across, 0..1 down): an ellipse from the nose
# line to just above the chin margin, between the cheeks; alpha falls smoothly from 1 inside
# ``1 - MASK_FEATHER`` of its radius to 0 on its border.
MASK_CENTER = (0.5, 0.74)
MASK_AXES = (0.40, 0.235)
MASK_FEATHER = 0.35


def crop_boxes(
    boxes: np.ndarray, width: int, height: int, landmarks: np.ndarray | None = None
) -> np.ndarray:
    """Crop rectangles ``(n, 4)`` int ``[x0, y0, x1, y1]`` for face boxes ``[x, y, w, h]``.

    The release's landmark box (see the module docstring), even-aligned (the chroma planes
    are half size) and clipped to the ``width`` x ``height`` frame. With the frames' mesh
    ``landmarks`` ``(n, 468, 2)`` the nose line is measured on them, else placed at ``NOSE_Y``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    if landmarks is not None:
        bridge = np.asarray(landmarks, dtype=np.float64)[:, NOSE_BRIDGE, 1]
        tip = np.asarray(landmarks, dtype=np.float64)[:, NOSE_TIP, 1]
        nose = bridge + (tip - bridge) * 2 / 3
    else:
        nose = y + NOSE_Y * h
    chin = y + CHIN_Y * h
    top = np.maximum(0.0, nose - (chin - nose))
    bottom = chin + EXTRA_MARGIN * h
    left = x + JAW_X[0] * w
    right = x + JAW_X[1] * w
    rect = np.stack(
        [
            np.floor(left / 2) * 2,
            np.floor(top / 2) * 2,
            np.ceil(right / 2) * 2,
            np.ceil(bottom / 2) * 2,
        ],
        axis=1,
    )
    rect[:, [0, 2]] = rect[:, [0, 2]].clip(0, width - width % 2)
    rect[:, [1, 3]] = rect[:, [1, 3]].clip(0, height - height % 2)
    return rect.astype(np.int64)


def _mask_at(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mask values at crop coordinates (0..1): ``(len(rows), len(cols))`` float32."""
    du = (cols[None, :] - MASK_CENTER[0]) / MASK_AXES[0]
    dv = (rows[:, None] - MASK_CENTER[1]) / MASK_AXES[1]
    t = np.clip((1.0 - np.sqrt(du * du + dv * dv)) / MASK_FEATHER, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: no kink at either end


@functools.lru_cache(maxsize=64)
def lower_face_masks(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The blend masks of a ``height`` x ``width`` crop: ``(luma (h, w), chroma (h/2, w/2))``.

    Sampled at each plane's pixel centres, so both are exactly 0 outside the ellipse.
    """
    luma = _mask_at((np.arange(width) + 0.5) / width, (np.arange(height) + 0.5) / height)
    half_w, half_h = width // 2, height // 2
    chroma = _mask_at((np.arange(half_w) + 0.5) / half_w, (np.arange(half_h) + 0.5) / half_h)
    luma.flags.writeable = chroma.flags.writeable = False
    return luma, chroma


def crop_rgb(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, rect: np.ndarray | tuple[int, ...]
) -> np.ndarray:
    """RGB ``(h, w, 3)`` uint8 of one even-aligned rectangle of a yuv420p frame (only it)."""
    return crop_color(y, u, v, rect, cv2.COLOR_YUV2RGB_I420)


def face_input(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, rect: np.ndarray | tuple[int, ...]
) -> np.ndarray:
    """The model's ``FACE_SIZE`` x ``FACE_SIZE`` RGB view of a crop (Lanczos, as the release)."""
    rgb = crop_rgb(y, u, v, rect)
    return cv2.resize(rgb, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LANCZOS4)


def paste_face(
    face: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    rect: np.ndarray | tuple[int, ...],
) -> None:
    """Blend a generated RGB face (any size) into one crop rectangle of the Y, U, V planes
    through the lower-face mask."""
    x0, y0, x1, y1 = (int(c) for c in rect)
    w, h = x1 - x0, y1 - y0
    patch = cv2.resize(face, (w, h), interpolation=cv2.INTER_LINEAR)
    luma, chroma = lower_face_masks(h, w)
    paste_color(patch, cv2.COLOR_RGB2YUV_I420, y, u, v, rect, luma, chroma)
