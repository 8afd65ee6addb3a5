"""MediaPipe's 468-point face mesh: a rotated square crop around the face -> landmarks.

The model sees a 192 x 192 RGB crop in [0, 1] whose eyes are level (MediaPipe rotates the crop
by the line between the eyes) and which is 1.5 times the face's size; it returns 468 points
``(x, y, z)`` in crop pixels (z: depth, same scale as x, smaller is nearer the camera) and a
face-presence logit. Points are mapped back to frame pixels through the crop's affine map.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from inference.face import landmarks as lm
from inference.face.detection import Detection
from inference.face.images import FaceImage
from inference.face.models import MESH, load_net

INPUT_SIZE = 192
#: Crop side over face size, as in MediaPipe's face_landmark graphs.
CROP_SCALE = 1.5
#: Presence probability under which the crop is taken to hold no face (MediaPipe: 0.5).
MIN_PRESENCE = 0.5


@dataclasses.dataclass(frozen=True)
class Roi:
    """A square crop of the frame: centre, side (frame px), rotation (radians, clockwise on
    screen: the angle of the line from the image-left eye to the image-right eye)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def to_frame(self, size: int = INPUT_SIZE) -> np.ndarray:
        """2 x 3 affine map from ``size``-px crop coordinates to frame pixels."""
        s = self.side / size
        c, n = math.cos(self.angle) * s, math.sin(self.angle) * s
        half = size / 2
        return np.array(
            [
                [c, -n, self.cx - c * half + n * half],
                [n, c, self.cy - n * half - c * half],
            ]
        )

    def to_crop(self, size: int = INPUT_SIZE) -> np.ndarray:
        """2 x 3 affine map from frame pixels to ``size``-px crop coordinates."""
        forward = np.vstack([self.to_frame(size), [0.0, 0.0, 1.0]])
        return np.linalg.inv(forward)[:2]

    def contains(self, points: np.ndarray, margin: float = 0.0) -> bool:
        """True when every ``(x, y)`` point lies in the crop, ``margin`` (a fraction of the
        side) away from its edges."""
        crop = points[:, :2] @ self.to_crop(1)[:, :2].T + self.to_crop(1)[:, 2]
        return bool(np.all((crop >= margin) & (crop <= 1 - margin)))

    @classmethod
    def from_detection(cls, face: Detection) -> Roi:
        """The mesh crop for a detector box: rotated by the eye keypoints, 1.5 x its long side."""
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        cx, cy = face.center
        return cls(cx, cy, max(face.width, face.height) * CROP_SCALE, math.atan2(ly - ry, lx - rx))

    @classmethod
    def from_landmarks(cls, points: np.ndarray) -> Roi:
        """The next frame's crop from this frame's landmarks (MediaPipe's tracking ROI): level
        by the outer eye corners, around the points' box measured in that rotated frame."""
        (rx, ry), (lx, ly) = points[lm.RIGHT_EYE_OUTER, :2], points[lm.LEFT_EYE_OUTER, :2]
        angle = math.atan2(ly - ry, lx - rx)
        c, s = math.cos(angle), math.sin(angle)
        xy = points[:, :2]
        # Coordinates along the eye line (u) and across it (v).
        u = xy[:, 0] * c + xy[:, 1] * s
        v = -xy[:, 0] * s + xy[:, 1] * c
        mu, mv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
        side = max(u.max() - u.min(), v.max() - v.min()) * CROP_SCALE
        return cls(float(mu * c - mv * s), float(mu * s + mv * c), float(side), angle)


@dataclasses.dataclass(frozen=True)
class FaceLandmarks:
    """The 468 mesh points of one face in frame pixels, with the crop they came from."""

    #: ``(468, 3)`` float32: x, y in frame pixels, z relative depth in the same unit.
    points: np.ndarray
    #: Probability that the crop showed a face.
    presence: float
    roi: Roi

    @property
    def xy(self) -> np.ndarray:
        """``(468, 2)`` x, y."""
        return self.points[:, :2]

    def box(self) -> tuple[float, float, float, float]:
        """``(x, y, w, h)``: the points' bounding box (forehead to chin, cheek to cheek)."""
        x0, y0 = self.xy.min(axis=0)
        x1, y1 = self.xy.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


class FaceMesh:
    """Run the face mesh on crops of :class:`FaceImage` frames (one network per instance).

    ``model_dir`` overrides the installed model folder.
    """

    def __init__(self, *, model_dir: Path | None = None) -> None:
        self._net = load_net(MESH, model_dir)
        self._outputs = ["conv2d_21", "conv2d_31"]

    def crop(self, image: FaceImage, roi: Roi) -> np.ndarray:
        """The model's input for ``roi``: a 192 x 192 RGB uint8 image."""
        return image.warp(roi.to_crop(INPUT_SIZE), INPUT_SIZE)

    def run(self, image: FaceImage, roi: Roi) -> FaceLandmarks:
        """Landmarks of the face in ``roi`` (check ``presence`` before trusting them)."""
        crop = self.crop(image, roi)
        blob = crop.transpose(2, 0, 1)[None].astype(np.float32) * (1 / 255)  # [0, 1], NCHW
        self._net.setInput(blob)
        raw, logit = self._net.forward(self._outputs)
        points = raw.reshape(468, 3).astype(np.float64)
        to_frame = roi.to_frame(INPUT_SIZE)
        frame = np.empty_like(points)
        frame[:, :2] = points[:, :2] @ to_frame[:, :2].T + to_frame[:, 2]
        frame[:, 2] = points[:, 2] * (roi.side / INPUT_SIZE)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(logit.reshape(-1)[0], -50, 50))))
        return FaceLandmarks(frame.astype(np.float32), presence, roi)
