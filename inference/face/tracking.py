"""Finding a face (detector, checked by the mesh) and following it from frame to frame.

Following a face costs one mesh run per frame: each frame's crop is made from the previous
frame's landmarks, and the detector runs again only when the mesh says the crop holds no face
(a cut, an occlusion) or the face has moved out of it. Landmarks are smoothed over time with a
One-Euro filter, which is steady when the face is still and follows it without lag when it
moves (its cutoff frequency rises with the speed).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from inference.face import landmarks as lm
from inference.face.detection import BlazeFaceDetector
from inference.face.images import FaceImage
from inference.face.mesh import MIN_PRESENCE, FaceLandmarks, FaceMesh, Roi

#: Candidates checked with the mesh per search pass (noise can make many weak detections).
MAX_CHECKED = 3
#: A real face in a well-placed crop scores ~1; a face seen through a poorly placed crop, or
#: something face-like, less.
SURE_PRESENCE = 0.9


def find_face(
    image: FaceImage,
    detector: BlazeFaceDetector,
    mesh: FaceMesh,
    *,
    min_presence: float = MIN_PRESENCE,
) -> FaceLandmarks | None:
    """The main face of ``image`` with its landmarks, or None.

    The detector proposes faces (largest first, coarse passes first) and the mesh confirms
    them: a detection the mesh does not see as a face (a helmet, a pattern) is skipped. The
    confirmed face is measured once more from a crop made from its own landmarks, which is
    better centred than the one made from the detector's box. A face the mesh is unsure of
    (a detection whose box is off, as for a face too small for a coarse pass) is kept only if
    no finer pass finds one it is sure of.
    """
    fallback: FaceLandmarks | None = None
    for group in detector.candidates(image):
        for face in group[:MAX_CHECKED]:
            found = mesh.run(image, Roi.from_detection(face))
            if found.presence < min_presence:
                continue
            refined = mesh.run(image, Roi.from_landmarks(found.points))
            best = refined if refined.presence >= found.presence else found
            if found.presence >= SURE_PRESENCE:
                return best
            if fallback is None or best.presence > fallback.presence:
                fallback = best
    return fallback


_models = threading.local()


def _thread_models() -> tuple[BlazeFaceDetector, FaceMesh]:
    # cv2 networks are not safe to share between threads: one pair per thread, made once.
    if not hasattr(_models, "pair"):
        _models.pair = (BlazeFaceDetector(), FaceMesh())
    return _models.pair


def find_face_rgb(rgb: np.ndarray) -> FaceLandmarks | None:
    """:func:`find_face` on an RGB uint8 image ``(h, w, 3)``, with this thread's models."""
    return find_face(FaceImage.from_rgb(rgb), *_thread_models())


def find_face_yuv(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> FaceLandmarks | None:
    """:func:`find_face` on the planes of a yuv420p frame (only small regions of them are
    converted to RGB), with this thread's models."""
    return find_face(FaceImage.from_yuv(y, u, v), *_thread_models())


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012) over arrays of any fixed shape.

    A low-pass filter whose cutoff is ``min_cutoff + beta * |speed|`` (Hz): low when the
    signal is still (removes jitter), high when it moves (removes lag). Speeds are taken in
    units of a ``scale`` given with each value, so one tuning fits a small and a large face.
    """

    def __init__(
        self, *, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        """Forget the past (the next value passes through unchanged)."""
        self._value = None
        self._speed = None

    def __call__(self, value: np.ndarray, t: float, *, scale: float = 1.0) -> np.ndarray:
        """The filtered ``value`` at time ``t`` (seconds, increasing); speeds are measured in
        units of ``scale`` per second."""
        x = np.asarray(value, dtype=np.float64)
        if self._value is None or self._speed is None or t <= self._time:
            self._value, self._speed, self._time = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._time
        speed = (x - self._value) / (dt * scale)
        self._speed = self._speed + self._alpha(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + self._alpha(cutoff, dt) * (x - self._value)
        self._time = t
        return self._value.copy()


class FaceTracker:
    """Landmarks of the main face, frame after frame, smoothed (one tracker per video/thread).

    Call :meth:`update` with each frame in order; it returns the smoothed landmarks, or None
    while no face is seen. ``min_cutoff`` (Hz) and ``beta`` are the One-Euro parameters, with
    speeds in face heights per second (see :class:`OneEuroFilter`). The defaults halve the
    jitter of a still face in a noisy video, and lag a face moving 8 px per frame (a fast head
    turn at 25 fps) by under half a percent of its height: the lips' own motion, much faster,
    passes through.
    """

    def __init__(
        self,
        *,
        fps: float = 25.0,
        min_cutoff: float = 0.1,
        beta: float = 20.0,
        min_presence: float = MIN_PRESENCE,
        model_dir: Path | None = None,
    ) -> None:
        self.fps = fps
        self.min_presence = min_presence
        self.detector = BlazeFaceDetector(model_dir=model_dir)
        self.mesh = FaceMesh(model_dir=model_dir)
        self._filter = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
        self._raw: FaceLandmarks | None = None
        self._frame = -1
        #: How many frames needed the detector (the first one, then after each loss).
        self.detections = 0

    @property
    def raw(self) -> FaceLandmarks | None:
        """The last frame's landmarks before smoothing (None when no face was seen)."""
        return self._raw

    def reset(self) -> None:
        """Forget the face: the next frame is searched from scratch."""
        self._raw = None
        self._filter.reset()

    def update(self, image: FaceImage, t: float | None = None) -> FaceLandmarks | None:
        """Landmarks of the main face in ``image`` (the next frame), or None when none is seen.

        ``t`` is the frame's time in seconds (default: frame count / ``fps``).
        """
        self._frame += 1
        t = self._frame / self.fps if t is None else t
        found = self._follow(image) if self._raw is not None else None
        if found is None:
            self._filter.reset()
            self.detections += 1
            found = find_face(image, self.detector, self.mesh, min_presence=self.min_presence)
        self._raw = found
        if found is None:
            return None
        size = max(lm.face_height(found.points), 1.0)
        smooth = self._filter(found.points, t, scale=size).astype(np.float32)
        return FaceLandmarks(smooth, found.presence, found.roi)

    def _follow(self, image: FaceImage) -> FaceLandmarks | None:
        """The face in the crop made from the last landmarks, if it is still there."""
        assert self._raw is not None
        roi = Roi.from_landmarks(self._raw.points)
        found = self.mesh.run(image, roi)
        if found.presence < self.min_presence or not roi.contains(found.xy):
            return None
        return found
