"""Finding a face (detector, checked by the mesh) and following it from frame to frame.

Following a face costs one mesh run per measured frame: each frame's crop is made from the last
measured frame's landmarks, and the detector runs again only when the mesh says the crop holds
no face (a cut, an occlusion) or the face has moved out of it. Landmarks are smoothed over time
with a One-Euro filter, which is steady when the face is still and follows it without lag when
it moves (its cutoff frequency rises with the speed).

A video can be tracked a run of frames at a time (:meth:`FaceTracker.track`) with a *stride*:
only every k-th frame is measured (its crop placed where the face's last velocity takes it) and
the frames between two measured ones are interpolated, unless the landmarks did not move
steadily from one to the other (then those frames are measured too). A face moves little in
40 ms, and the mesh is most of a render's tracking cost (~2.7 ms a frame on a CPU core).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
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
#: :meth:`FaceTracker.track` interpolates the frames between two measured ones only when the
#: interpolation's error, estimated from how much each landmark's velocity changed since the
#: previous pair of measured frames, stays under MAX_INTERPOLATION_ERROR face heights (~1 px on
#: a 300 px face: interpolation is exact for steady motion, and a head turning, a mouth opening
#: or closing change velocity), and no landmark moved faster than MAX_INTERPOLATED_SPEED face
#: heights per frame (a cut, a fast turn). Otherwise the frames between are measured too.
MAX_INTERPOLATION_ERROR = 0.004
MAX_INTERPOLATED_SPEED = 0.04
#: ... but at least this many px: the mesh's own jitter (~0.5 px) changes velocities too.
MIN_INTERPOLATION_ERROR = 1.0
#: A face found off its crop's centre by more than this share of the crop's side is measured
#: again from a crop centred on it (a crop far off-centre misplaces the points).
RECENTRE = 0.06


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
        #: How many times the mesh measured a frame from the previous landmarks.
        self.measured = 0
        #: Per-frame velocity of the landmarks between the last two measured frames of
        #: :meth:`track` (px per frame), None when unknown.
        self._velocity: np.ndarray | None = None

    @property
    def raw(self) -> FaceLandmarks | None:
        """The last frame's landmarks before smoothing (None when no face was seen)."""
        return self._raw

    def reset(self) -> None:
        """Forget the face: the next frame is searched from scratch."""
        self._raw = None
        self._velocity = None
        self._filter.reset()

    def update(self, image: FaceImage, t: float | None = None) -> FaceLandmarks | None:
        """Landmarks of the main face in ``image`` (the next frame), or None when none is seen.

        ``t`` is the frame's time in seconds (default: frame count / ``fps``).
        """
        self._frame += 1
        t = self._frame / self.fps if t is None else t
        found, searched = self._measure(image, self._raw)
        self._raw, self._velocity = found, None
        if found is None or searched:
            self._filter.reset()
        return None if found is None else self._smooth(found, t)

    def track(
        self,
        images: Sequence[FaceImage],
        times: Sequence[float] | None = None,
        *,
        stride: int = 1,
    ) -> list[FaceLandmarks | None]:
        """Smoothed landmarks of the next ``len(images)`` frames (in order), None where no face
        is seen; ``times`` in seconds (default: frame count / ``fps``).

        With ``stride`` 1 this is :meth:`update` on each frame. With ``stride`` k, the mesh
        measures every k-th frame counting back from the last one (which is always measured,
        so the next run follows on from a measurement), and each frame between two measured
        ones gets their landmarks interpolated linearly, unless the face was lost or searched
        for again at one of them, or its landmarks did not move steadily from one to the other
        (:data:`MAX_INTERPOLATION_ERROR`, :data:`MAX_INTERPOLATED_SPEED`): then those frames
        are measured too. (Motion the measured frames cannot see, back and forth faster than
        every ``stride`` frames, is not caught.) The first frame of a run is interpolated from
        the previous run's last one. :attr:`raw` is the last frame's measurement afterwards.
        """
        n = len(images)
        if times is None:
            times = [(self._frame + 1 + k) / self.fps for k in range(n)]
        self._frame += n
        if n == 0:
            return []
        stride = max(1, int(stride))
        raw: list[FaceLandmarks | None] = [None] * n
        searched = [False] * n
        before = self._raw  # the previous run's last frame, at position -1
        last = -1  # the last measured frame of this run
        for key in range((n - 1) % stride, n, stride):
            left = raw[last] if last >= 0 else before
            raw[key], searched[key] = self._measure(images[key], self._ahead(left, key - last))
            right = raw[key]
            between = range(last + 1, key)
            steady = self._steady(left, right, key - last) if not searched[key] else False
            if len(between) and steady:
                assert left is not None and right is not None
                weights = (np.arange(last + 1, key) - last) / (key - last)
                points = interpolate(left.points, right.points, weights)
                presence = min(left.presence, right.presence)
                for j, p in zip(between, points, strict=True):
                    raw[j] = FaceLandmarks(p, presence, left.roi)
            else:
                follow = left if left is not None else right
                for j in between:
                    # After a cut the face is where the next measured frame has it.
                    raw[j], searched[j] = self._measure(images[j], follow, right)
                    follow = raw[j] if raw[j] is not None else follow
            last = key
        self._raw = raw[-1]
        smoothed: list[FaceLandmarks | None] = []
        for found, fresh, t in zip(raw, searched, times, strict=True):
            if found is None or fresh:
                self._filter.reset()
            smoothed.append(None if found is None else self._smooth(found, t))
        return smoothed

    def _ahead(self, face: FaceLandmarks | None, frames: int) -> FaceLandmarks | None:
        """``face`` moved on by ``frames`` frames at the last measured velocity: where to crop
        for the mesh in the frame that far ahead (a fast face is then not off the crop's
        centre by ``frames`` times its motion)."""
        if face is None or self._velocity is None or frames <= 1:
            return face
        points = face.points.copy()
        points[:, :2] += (self._velocity * frames).astype(np.float32)
        return FaceLandmarks(points, face.presence, face.roi)

    def _smooth(self, found: FaceLandmarks, t: float) -> FaceLandmarks:
        size = max(lm.face_height(found.points), 1.0)
        smooth = self._filter(found.points, t, scale=size).astype(np.float32)
        return FaceLandmarks(smooth, found.presence, found.roi)

    def _steady(self, a: FaceLandmarks | None, b: FaceLandmarks | None, frames: int) -> bool:
        """Whether the landmarks went steadily from ``a`` to ``b``, ``frames`` frames later, so
        that the frames between can be interpolated (see MAX_INTERPOLATION_ERROR); keeps the
        velocity for the next pair."""
        previous, self._velocity = self._velocity, None
        if a is None or b is None:
            return False
        moved = b.xy - a.xy
        self._velocity = moved / frames
        size = lm.face_height(a.points)
        if float(np.abs(self._velocity).max()) > MAX_INTERPOLATED_SPEED * size:
            return False
        if previous is None:
            return True
        # Under a constant acceleration, linear interpolation over k frames is off by up to
        # k^2 / 8 times it; the change of velocity over ~k frames estimates k times it.
        error = float(np.abs(self._velocity - previous).max()) * frames / 8
        return error <= max(MAX_INTERPOLATION_ERROR * size, MIN_INTERPOLATION_ERROR)

    def _recentred(self, image: FaceImage, roi: Roi, found: FaceLandmarks) -> FaceLandmarks:
        """``found`` measured again from a crop centred on it when the face was off the centre
        of ``roi`` by over RECENTRE of its side (it moved fast, or against the prediction): the
        mesh places points best in a crop like the ones it was trained on."""
        again = Roi.from_landmarks(found.points)
        if math.hypot(again.cx - roi.cx, again.cy - roi.cy) <= RECENTRE * roi.side:
            return found
        better = self.mesh.run(image, again)
        self.measured += 1
        if better.presence >= self.min_presence and again.contains(better.xy):
            return better
        return found

    def _measure(
        self,
        image: FaceImage,
        previous: FaceLandmarks | None,
        later: FaceLandmarks | None = None,
    ) -> tuple[FaceLandmarks | None, bool]:
        """``(landmarks or None, fresh)``: the face in the crop made from ``previous`` if it is
        still there; else (``fresh``: found anew, not followed, so smoothing starts again) in
        the one made from ``later`` (a frame measured after this one), else where the detector
        finds it."""
        for known in (previous, later if later is not previous else None):
            if known is None:
                continue
            roi = Roi.from_landmarks(known.points)
            found = self.mesh.run(image, roi)
            self.measured += 1
            if found.presence >= self.min_presence and roi.contains(found.xy):
                return self._recentred(image, roi, found), known is not previous
        self.detections += 1
        found = find_face(image, self.detector, self.mesh, min_presence=self.min_presence)
        return found, True


def interpolate(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Points ``(len(weights), ...)`` float32 on the way from ``a`` (weight 0) to ``b`` (1)."""
    w = np.asarray(weights, dtype=np.float32).reshape((-1,) + (1,) * np.ndim(a))
    a32 = np.asarray(a, dtype=np.float32)
    return a32 + (np.asarray(b, dtype=np.float32) - a32) * w
