"""Faces: MediaPipe's BlazeFace detector and 468-point face mesh, run by OpenCV's dnn module.

The models come from the mediapipe wheel on the package registry, installed with
``python -m inference.face.install`` (``make`` does it); without them the functions here raise
:class:`FaceModelsMissing`, which names that command. The pieces:

- :mod:`~inference.face.images`: frames as RGB, yuv420p planes or a Y plane (:class:`FaceImage`);
- :mod:`~inference.face.detection`: :class:`BlazeFaceDetector` (boxes and six keypoints);
- :mod:`~inference.face.mesh`: :class:`FaceMesh`, the rotated crop (:class:`Roi`) and
  :class:`FaceLandmarks` (468 points in frame pixels);
- :mod:`~inference.face.landmarks`: named index sets (lips, corners, nose, chin, jaw, eyes) and
  measures (mouth centre and width, lip gap, yaw);
- :mod:`~inference.face.tracking`: :func:`find_face` and :class:`FaceTracker` (mesh-only tracking
  with One-Euro smoothing; :meth:`FaceTracker.track` measures every k-th frame of a run and
  interpolates the others while the face moves steadily);
- :mod:`~inference.face.video`: :func:`check_face_in_video`, the upload check;
- :mod:`~inference.face.legacy`: the box API the engines still use (:class:`Box`,
  :class:`FaceDetector`, :class:`FaceTrack`, :func:`detect_face_in_video`).

Typical use::

    from inference.face import FaceImage, FaceTracker, landmarks

    tracker = FaceTracker(fps=25)
    for y, u, v in frames:
        face = tracker.update(FaceImage.from_yuv(y, u, v))
        if face is not None:
            gap = landmarks.lip_gap(face.points)
"""

from __future__ import annotations

from inference.face import landmarks
from inference.face.detection import BlazeFaceDetector, Detection
from inference.face.images import FaceImage
from inference.face.landmarks import lip_gap, mouth_center, mouth_width, yaw_degrees
from inference.face.legacy import Box, FaceDetector, FaceTrack
from inference.face.mesh import FaceLandmarks, FaceMesh, Roi
from inference.face.models import FaceModelsMissing, default_model_dir
from inference.face.tracking import (
    FaceTracker,
    OneEuroFilter,
    find_face,
    find_face_rgb,
    find_face_yuv,
)
from inference.face.video import FaceVerdict, check_face_in_video, detect_face_in_video

__all__ = [
    "BlazeFaceDetector",
    "Box",
    "Detection",
    "FaceDetector",
    "FaceImage",
    "FaceLandmarks",
    "FaceMesh",
    "FaceModelsMissing",
    "FaceTrack",
    "FaceTracker",
    "FaceVerdict",
    "OneEuroFilter",
    "Roi",
    "check_face_in_video",
    "default_model_dir",
    "detect_face_in_video",
    "find_face",
    "find_face_rgb",
    "find_face_yuv",
    "landmarks",
    "lip_gap",
    "mouth_center",
    "mouth_width",
    "yaw_degrees",
]
