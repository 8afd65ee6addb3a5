"""The face-box API the engines were written against, now measured by the detector and mesh.

Until the engines place the mouth from landmarks, they ask for a face box on some frames
(:class:`FaceDetector`) and interpolate between them (:class:`FaceTrack`). The box is the
landmarks' bounding box: forehead top to chin, cheek to cheek, the same region the old Haar
cascade's box roughly covered, but found in milliseconds and without false second faces.
"""

from __future__ import annotations

import bisect
import dataclasses
from pathlib import Path

import numpy as np

from inference.face.detection import BlazeFaceDetector
from inference.face.images import FaceImage
from inference.face.mesh import MIN_PRESENCE, FaceLandmarks, FaceMesh, Roi
from inference.face.tracking import find_face


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in frame pixels: top-left ``(x, y)``, size ``w`` x ``h``."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def of(cls, face: FaceLandmarks) -> Box:
        """The bounding box of a face's landmarks."""
        return cls(*face.box())

    @property
    def center(self) -> tuple[float, float]:
        """Center point ``(cx, cy)``."""
        return self.x + self.w / 2, self.y + self.h / 2

    def as_array(self) -> np.ndarray:
        """``[x, y, w, h]`` as float32."""
        return np.array([self.x, self.y, self.w, self.h], dtype=np.float32)

    def scaled(self, factor: float) -> Box:
        """The box in an image ``factor`` times as large."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)


def as_face_image(image: np.ndarray) -> FaceImage:
    """A grey / Y-plane ``(h, w)`` or RGB ``(h, w, 3)`` uint8 array as a :class:`FaceImage`."""
    return FaceImage.from_gray(image) if image.ndim == 2 else FaceImage.from_rgb(image)


class FaceDetector:
    """The main face's box in an image (grey, a Y plane, or RGB), as :class:`Box`.

    With ``near`` (the previous box) the mesh first looks in a crop around it, which costs two
    mesh runs instead of a search of the whole frame.
    """

    def __init__(self, *, model_dir: Path | None = None) -> None:
        self._detector = BlazeFaceDetector(model_dir=model_dir)
        self._mesh = FaceMesh(model_dir=model_dir)

    def landmarks(self, image: np.ndarray, *, near: Box | None = None) -> FaceLandmarks | None:
        """The main face's landmarks (see :meth:`detect`)."""
        face = as_face_image(image)
        if near is not None:
            cx, cy = near.center
            first = self._mesh.run(face, Roi(cx, cy, max(near.w, near.h) * 1.5))
            if first.presence >= MIN_PRESENCE:
                found = self._mesh.run(face, Roi.from_landmarks(first.points))
                if found.presence >= MIN_PRESENCE:
                    return found
        return find_face(face, self._detector, self._mesh)

    def detect(self, image: np.ndarray, *, near: Box | None = None) -> Box | None:
        """The main face's box in ``image``, or the one at ``near``; None when there is none."""
        found = self.landmarks(image, near=near)
        return Box.of(found) if found is not None else None


class FaceTrack:
    """Per-frame face boxes from detections on some frames.

    Detections are added in increasing frame order; each is blended with the previous smoothed
    box (``smoothing`` = weight of the past, damping jitter) and frames between two detections
    get linearly interpolated boxes. Frames before the first detection get the first box,
    frames after the last get the last one. Missed detections are simply bridged.
    """

    def __init__(self, *, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        self._index: list[int] = []
        self._boxes: list[np.ndarray] = []
        self.finished = False

    def __len__(self) -> int:
        return len(self._index)

    def add(self, index: int, box: Box | None) -> None:
        """Record the detection on frame ``index`` (``None``: nothing found there)."""
        if box is None:
            return
        if self._index and index <= self._index[-1]:
            raise ValueError("detections must be added in increasing frame order")
        arr = box.as_array()
        if self._boxes:
            prev = self._boxes[-1]
            arr = self.smoothing * prev + (1 - self.smoothing) * arr
        self._index.append(index)
        self._boxes.append(arr.astype(np.float32))

    def last(self) -> Box | None:
        """The most recent smoothed box, if any."""
        return Box(*map(float, self._boxes[-1])) if self._boxes else None

    def last_index(self) -> int:
        """Frame index of the most recent detection (-1 when none)."""
        return self._index[-1] if self._index else -1

    def boxes(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Boxes ``(n, 4)`` float32 ``[x, y, w, h]`` for the given frame indices."""
        if not self._index:
            raise ValueError("no face detected yet")
        idx = np.asarray(indices, dtype=np.float64)
        known = np.asarray(self._index, dtype=np.float64)
        boxes = np.stack(self._boxes)
        out = np.empty((len(idx), 4), dtype=np.float32)
        for k in range(4):
            out[:, k] = np.interp(idx, known, boxes[:, k])
        return out

    def covers(self, index: int) -> bool:
        """True when the box of frame ``index`` will not change any more."""
        if self.finished:
            return True
        pos = bisect.bisect_left(self._index, index)
        return pos < len(self._index)
