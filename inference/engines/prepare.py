"""Avatar landmarks, tracked once per avatar frame, and the prepared-avatar file that keeps them.

Every engine places its work from the 468-point face mesh of each avatar frame
(:mod:`inference.face`). :class:`SourceTracker` follows the face through the frames in decoding
order (One-Euro smoothed, re-detected when lost) and keeps the landmarks of every source frame,
so the frames the ping-pong plays again are not measured twice. The render pipeline runs it
inline, the mesh measuring every fourth frame and interpolating the others while the face
moves steadily (:data:`TRACK_STRIDE`); :func:`prepare_avatar` runs it once over a whole avatar,
measuring every frame (:data:`PREPARE_STRIDE`), and returns an :class:`AvatarPrep`, which every
later render of that avatar reuses (``Engine.render(..., prepared=prep)``) without tracking
anything.

Both paths run the same code on the same decoded frames: a prep made with the inline stride
(``prepare_avatar(..., stride=TRACK_STRIDE)``) gives the same frames as a render without one,
when both decode in batches of the same size (the tracker measures every few frames counting
back from each batch's last one: see :class:`SourceTracker`). Landmarks are rounded to a fixed
step (1/8 px, :func:`landmark_step`) in both, which makes the round trip exact and the file
small (stored as steps from frame to frame: ~0.4 KB per frame instead of 3.7).

The file (``.npz``, compressed, written atomically) holds the frame size, the frame rate it
was decoded at, the frame count, a format version, the SHA-256 of the face models that measured
it (a model change invalidates it: :class:`StalePrep`), the landmarks and, per engine, whatever
that engine adds (``prep.extra[engine_name]``, a dict of arrays: see :class:`PrepHook`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from inference.engines.pipeline import FrameBatch
from inference.errors import InferenceError, MediaError, NoFaceError, RenderCanceled
from inference.face import FaceImage, FaceTracker, check_face_in_video
from inference.face.models import MODEL_FILES
from inference.media.frames import FrameReader, yuv_planes
from inference.media.probing import MediaInfo, probe

__all__ = [
    "NO_FACE_MESSAGE",
    "PREPARE_STRIDE",
    "TRACK_STRIDE",
    "AvatarPrep",
    "PrepHook",
    "SourceTracker",
    "StalePrep",
    "boxes_from_landmarks",
    "choose_fps",
    "extras_of",
    "landmark_step",
    "model_checksums",
    "prepare_avatar",
]

#: What a render or a preparation says when the avatar shows no face at its start.
NO_FACE_MESSAGE = (
    "No face was found in the first seconds of the avatar video. Use a video where one face "
    "looks at the camera, well lit and not too small."
)
#: When the first frame shows no face, the first seconds are searched before giving up.
NO_FACE_SEARCH_SECONDS = 5.0
#: A render that tracks the face itself (no prepared avatar) has the face mesh measure every
#: TRACK_STRIDE-th avatar frame; the frames between are interpolated, or measured too when the
#: face did not move steadily (:meth:`FaceTracker.track`). The mesh is most of the CPU such a
#: render spends besides ffmpeg's: measuring a quarter of the frames (more where the face or
#: the lips change course) is what lets it keep up with ffmpeg on a 2-core CPU
#: (bench/render.py). A prepared avatar is measured once for every render of it, so there the
#: mesh measures every frame (PREPARE_STRIDE): on a talking avatar interpolation misses some
#: of the lips' own motion (their landmarks a few px off in some frames).
TRACK_STRIDE = 4
PREPARE_STRIDE = 1


def choose_fps(info: MediaInfo) -> str:
    """Output frame rate: the avatar's (as an exact ratio) when sane, else 25."""
    if info.frame_rate and info.fps and 1 <= info.fps <= 60:
        rate = Fraction(info.frame_rate)
        return str(rate.numerator) if rate.denominator == 1 else info.frame_rate
    return "25"


def model_checksums() -> dict[str, str]:
    """SHA-256 of each face model, by file name (the loader refuses files that differ)."""
    return {model.name: model.sha256 for model in MODEL_FILES}


def landmark_step(width: int, height: int) -> float:
    """The step landmarks are rounded to in a ``width`` x ``height`` video: 1/8 px, coarser
    only for frames over 4000 px (so that they fit int16 with room outside the frame)."""
    step = 1 / 8
    while max(width, height) / step > 32000:
        step *= 2
    return step


def boxes_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Face boxes ``(n, 4)`` float32 ``[x, y, w, h]``: the bounding box of each frame's points
    (forehead to chin, cheek to cheek), as :class:`inference.face.Box` measures it."""
    xy = np.asarray(points, dtype=np.float32)[..., :2]
    low, high = xy.min(axis=1), xy.max(axis=1)
    return np.concatenate([low, high - low], axis=1).astype(np.float32)


class SourceTracker:
    """Landmarks of every avatar frame, tracked in decoding order (frames 0, 1, 2 ...).

    :meth:`add` takes decoded frames (each exactly once, in order) and measures them, the mesh
    running on every ``stride``-th frame of each batch (counting back from its last one) and
    the frames between interpolated or, when the face did not move steadily, measured as well
    (:meth:`inference.face.FaceTracker.track`); :meth:`points` gives the landmarks
    ``(n, 468, 2)`` of any frames already added. A frame where the face is lost keeps the last
    landmarks seen (the tracker looks for the face again on the next frame). When the very
    first frame shows no face, the first seconds of the video are searched
    (:func:`inference.face.check_face_in_video`): no face there raises :class:`NoFaceError`,
    else that face stands in until the tracker finds one.
    """

    def __init__(
        self,
        avatar: Path,
        info: MediaInfo,
        fps: float,
        width: int,
        height: int,
        *,
        model_dir: Path | None = None,
        stride: int = TRACK_STRIDE,
    ) -> None:
        self.avatar = avatar
        self.info = info
        self.fps = fps
        self.step = landmark_step(width, height)
        self.stride = stride
        self._tracker = FaceTracker(fps=fps, model_dir=model_dir)
        self._model_dir = model_dir
        self._points: list[np.ndarray] = []
        self._found: list[bool] = []
        self._standin: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._points)

    @property
    def found(self) -> np.ndarray:
        """``(n,)`` bool: whether each frame's own landmarks were measured (else held)."""
        return np.array(self._found, dtype=bool)

    def add(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, src_index: np.ndarray) -> None:
        """Measure frames ``src_index`` (planes ``(n, h, w)``, ``(n, h/2, w/2)`` x2)."""
        src_index = np.asarray(src_index)
        expected = np.arange(len(self._points), len(self._points) + len(src_index))
        if not np.array_equal(src_index, expected):
            first = int(src_index[0]) if len(src_index) else len(self._points)
            raise ValueError(f"frame {first} given, frame {len(self._points)} expected")
        images = [FaceImage.from_yuv(y[row], u[row], v[row]) for row in range(len(src_index))]
        faces = self._tracker.track(images, src_index / self.fps, stride=self.stride)
        for face in faces:
            if face is not None:
                self._keep(face.points[:, :2], True)
            elif self._points:
                self._keep(self._points[-1], False)
            else:
                self._keep(self._first_face(), False)

    def points(self, src_index: np.ndarray) -> np.ndarray:
        """Landmarks ``(n, 468, 2)`` float32 (frame px) of frames already added."""
        return np.stack([self._points[int(i)] for i in src_index])

    def all_points(self) -> np.ndarray:
        """Landmarks of every frame added, ``(frames, 468, 2)`` float32."""
        if not self._points:
            return np.zeros((0, 468, 2), np.float32)
        return np.stack(self._points)

    def _keep(self, points: np.ndarray, found: bool) -> None:
        step = self.step
        self._points.append(
            (np.round(np.asarray(points, np.float64) / step) * step).astype(np.float32)
        )
        self._found.append(found)

    def _first_face(self) -> np.ndarray:
        if self._standin is None:
            verdict = check_face_in_video(
                self.avatar,
                seconds=NO_FACE_SEARCH_SECONDS,
                info=self.info,
                model_dir=self._model_dir,
            )
            if verdict.landmarks is None:
                raise NoFaceError(NO_FACE_MESSAGE)
            self._standin = verdict.landmarks.points[:, :2].astype(np.float32)
        return self._standin


class PrepHook(Protocol):
    """What an engine implements to add its own data to a prepared avatar.

    ``extend_prep`` sees every decoded avatar frame once (batches carry ``landmarks`` and
    ``boxes``) and stores what it wants under ``prep.extra[name]`` (a dict of numpy arrays,
    saved with the file). At render time the engine finds them in ``plan.prepared``.
    """

    name: str

    def extend_prep(self, prep: AvatarPrep, batch: FrameBatch) -> None:
        """Add this batch's contribution to ``prep.extra[self.name]``."""


class StalePrep(InferenceError):
    """A prepared-avatar file of another format version or made with other face models."""


@dataclass
class AvatarPrep:
    """An avatar measured once: per-frame landmarks and per-engine extras (see the module)."""

    FORMAT: ClassVar[str] = "heygem.avatar-prep"
    #: Bump when what is stored, or how it is measured (tracker, smoothing), changes.
    #: 2: a face found off its crop's centre is measured again from a centred crop.
    VERSION: ClassVar[int] = 2

    width: int
    height: int
    fps: str
    landmarks: np.ndarray  # (frames, 468, 2) float32, frame px
    found: np.ndarray  # (frames,) bool
    models: dict[str, str] = field(default_factory=model_checksums)
    version: int = VERSION
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        """How many avatar frames were decoded (at :attr:`fps`)."""
        return len(self.landmarks)

    def is_current(self) -> bool:
        """Whether this format version and these face models are the ones in use."""
        return self.version == self.VERSION and self.models == model_checksums()

    def fits(self, width: int, height: int, fps: str) -> bool:
        """Whether it describes frames of this size decoded at this rate, measured by the
        current models."""
        return (
            self.is_current()
            and (self.width, self.height) == (width, height)
            and Fraction(self.fps) == Fraction(fps)
            and self.frame_count > 0
        )

    def points(self, src_index: np.ndarray) -> np.ndarray:
        """Landmarks ``(n, 468, 2)`` of avatar frames ``src_index`` (past the end: the last)."""
        idx = np.minimum(np.asarray(src_index, dtype=np.int64), self.frame_count - 1)
        return self.landmarks[idx]

    # ------------------------------------------------------------------ file

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to ``path`` (``.npz``): a temp name in the same folder, then renamed."""
        target = Path(path)
        step = landmark_step(self.width, self.height)
        arrays: dict[str, Any] = {
            "meta": np.array(json.dumps(self._meta(step))),
            # Steps of 1/8 px from one frame to the next: mostly tiny numbers, which compress
            # several times better than the positions themselves.
            "landmark_steps": np.diff(
                np.round(self.landmarks / step).astype(np.int32), axis=0, prepend=0
            ),
            "found": self.found.astype(bool),
        }
        for engine, items in self.extra.items():
            for key, value in items.items():
                arrays[f"extra/{engine}/{key}"] = np.asarray(value)
        fd, tmp = tempfile.mkstemp(prefix=".prep.", suffix=".npz.part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def _meta(self, step: float) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "version": self.version,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames": self.frame_count,
            "models": self.models,
            "landmark_step": step,
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, check: bool = True) -> AvatarPrep:
        """Read a file written by :meth:`save`.

        Raises :class:`InferenceError` when it is not one (or is damaged) and, unless
        ``check`` is false, :class:`StalePrep` when it was made by another format version or
        other face models: prepare the avatar again then.
        """
        name = Path(path).name
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != cls.FORMAT:
                    raise ValueError("not a prepared-avatar file")
                step = float(meta["landmark_step"])
                steps = np.cumsum(data["landmark_steps"], axis=0, dtype=np.int64)
                landmarks = steps.astype(np.float32) * np.float32(step)
                extra: dict[str, dict[str, np.ndarray]] = {}
                for key in data.files:
                    if key.startswith("extra/"):
                        _, engine, item = key.split("/", 2)
                        extra.setdefault(engine, {})[item] = data[key]
                prep = cls(
                    width=int(meta["width"]),
                    height=int(meta["height"]),
                    fps=str(meta["fps"]),
                    landmarks=landmarks,
                    found=data["found"].astype(bool),
                    models=dict(meta["models"]),
                    version=int(meta["version"]),
                    extra=extra,
                )
        except Exception as exc:
            raise InferenceError(
                f"The prepared avatar file {name} could not be read ({exc.__class__.__name__}); "
                "delete it and prepare the avatar again."
            ) from exc
        if len(prep.landmarks) != int(meta["frames"]) or prep.landmarks.shape[1:] != (468, 2):
            raise InferenceError(f"The prepared avatar file {name} is damaged.")
        if check and not prep.is_current():
            raise StalePrep(
                f"The prepared avatar file {name} was made by another version of the face "
                "models or of the format: prepare the avatar again."
            )
        return prep


def prepare_avatar(
    avatar_path: str | os.PathLike[str],
    *,
    hooks: Sequence[PrepHook] = (),
    batch_size: int = 16,
    out: str | os.PathLike[str] | None = None,
    model_dir: Path | None = None,
    should_cancel: Callable[[], bool] | None = None,
    stride: int = PREPARE_STRIDE,
) -> AvatarPrep:
    """Decode the avatar once and measure the face on every frame: an :class:`AvatarPrep`.

    Frames are decoded exactly as a render decodes them (same size, same frame rate), so the
    landmarks line up with the render's source frames. ``hooks`` (engines) may add their own
    data (see :class:`PrepHook`). ``stride`` > 1 tracks as a render without a prep does
    (:class:`SourceTracker`). With ``out`` the result is also saved there. Raises
    :class:`NoFaceError` when the avatar starts without a face, :class:`MediaError` when it
    cannot be decoded; ``should_cancel()`` is asked between batches and stops with
    :class:`inference.errors.RenderCanceled`.
    """
    path = Path(avatar_path)
    info = probe(path)
    if not info.has_video:
        raise MediaError(
            "The avatar has no video stream: choose a video of a face.", path=str(path)
        )
    fps = choose_fps(info)
    fps_value = float(Fraction(fps))
    with FrameReader(path, fps=fps, info=info) as reader:
        tracker = SourceTracker(
            path, info, fps_value, reader.width, reader.height, model_dir=model_dir, stride=stride
        )
        prep = AvatarPrep(
            reader.width, reader.height, fps, np.zeros((0, 468, 2), np.float32), np.zeros(0, bool)
        )
        done = 0
        for frames in reader.batches(max(1, batch_size)):
            if should_cancel is not None and should_cancel():
                raise RenderCanceled()
            src = np.arange(done, done + len(frames))
            y, u, v = yuv_planes(frames, reader.width, reader.height)
            tracker.add(y, u, v, src)
            if hooks:
                batch = FrameBatch(frames, src, src, reader.width, reader.height)
                batch.landmarks = tracker.points(src)
                batch.boxes = boxes_from_landmarks(batch.landmarks)
                for hook in hooks:
                    hook.extend_prep(prep, batch)
            done += len(frames)
    if done == 0:
        raise MediaError("No frame could be decoded from the avatar video.", path=str(path))
    prep.landmarks = tracker.all_points()
    prep.found = tracker.found
    if out is not None:
        prep.save(out)
    return prep


def extras_of(prep: AvatarPrep | None, engine: str) -> Mapping[str, np.ndarray]:
    """``prep.extra[engine]``, or an empty mapping."""
    if prep is None:
        return {}
    return prep.extra.get(engine, {})
