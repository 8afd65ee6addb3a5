"""One rectangle of a yuv420p frame as a colour image, and a colour patch blended back into it:
what the model engines (Wav2Lip, MuseTalk) do around the face, converting only that rectangle
(never the whole frame). Rectangles are ``(x0, y0, x1, y1)`` with even corners."""

from __future__ import annotations

import cv2
import numpy as np

Rect = np.ndarray | tuple[int, ...]


def crop_color(y: np.ndarray, u: np.ndarray, v: np.ndarray, rect: Rect, code: int) -> np.ndarray:
    """``(h, w, 3)`` uint8 of one rectangle of a yuv420p frame, converted by the OpenCV
    ``code`` (``cv2.COLOR_YUV2RGB_I420`` or ``cv2.COLOR_YUV2BGR_I420``)."""
    x0, y0, x1, y1 = (int(c) for c in rect)
    w, h = x1 - x0, y1 - y0
    packed = np.empty((h * 3 // 2, w), dtype=np.uint8)
    packed[:h] = y[y0:y1, x0:x1]
    flat = packed[h:].reshape(-1)
    quarter = (h // 2) * (w // 2)
    flat[:quarter] = u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
    flat[quarter:] = v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
    return cv2.cvtColor(packed, code)


def paste_color(
    patch: np.ndarray,
    code: int,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    rect: Rect,
    luma_alpha: np.ndarray,
    chroma_alpha: np.ndarray,
) -> None:
    """Blend a colour ``patch`` of the rectangle's size (converted to I420 by the OpenCV
    ``code``: ``cv2.COLOR_RGB2YUV_I420`` or ``cv2.COLOR_BGR2YUV_I420``) into the Y, U, V planes
    through ``luma_alpha`` ``(h, w)`` and ``chroma_alpha`` ``(h/2, w/2)``; pixels whose alpha is
    0 keep their value exactly."""
    x0, y0, x1, y1 = (int(c) for c in rect)
    w, h = x1 - x0, y1 - y0
    packed = cv2.cvtColor(patch, code)  # (h * 3 / 2, w)
    flat = packed[h:].reshape(-1)
    quarter = (h // 2) * (w // 2)
    chroma = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    _blend(y[y0:y1, x0:x1], packed[:h], luma_alpha)
    _blend(u[chroma], flat[:quarter].reshape(h // 2, w // 2), chroma_alpha)
    _blend(v[chroma], flat[quarter:].reshape(h // 2, w // 2), chroma_alpha)


def _blend(plane: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> None:
    """``plane += alpha * (generated - plane)``, rounded, in place (exact where alpha is 0)."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if not len(rows):
        return
    r0, r1 = rows[0], rows[-1] + 1
    orig = plane[r0:r1].astype(np.float32)
    mixed = orig + alpha[r0:r1] * (generated[r0:r1].astype(np.float32) - orig)
    plane[r0:r1] = np.rint(mixed).clip(0, 255).astype(np.uint8)
