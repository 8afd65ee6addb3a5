"""Face boxes from OpenCV's bundled Haar cascade, detected on some frames and smoothed between.

The detector works on grayscale images; for yuv420p frames the Y plane *is* that image, so no
colour conversion is ever needed. Frames are downscaled before detection, and once a face is
known only the area around it is searched.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.media.frames import even
from inference.media.probing import MediaInfo, _explain_failure, _input_args, probe

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in frame pixels: top-left ``(x, y)``, size ``w`` x ``h``."""

    x: float
    y: float
    w: float
    h: float

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


@functools.lru_cache(maxsize=1)
def _cascade_path() -> str:
    path = os.path.join(cv2.data.haarcascades, CASCADE_FILE)
    if not os.path.exists(path):
        raise MediaError(f"OpenCV's face model {CASCADE_FILE} is missing from this install.")
    return path


class FaceDetector:
    """Find the main face in grayscale images with OpenCV's frontal-face Haar cascade.

    ``search_width`` bounds the image width a full search runs on (larger images are
    downscaled first); when ``near`` (the previous box) is given, only the area around it is
    searched, at a scale that makes the face about ``track_face_px`` pixels wide.
    """

    def __init__(self, *, search_width: int = 480, track_face_px: int = 48) -> None:
        # One classifier per detector: cv2 objects are not safe to share between threads.
        self._cascade = cv2.CascadeClassifier(_cascade_path())
        self.search_width = search_width
        self.track_face_px = track_face_px

    def _run(
        self, gray: np.ndarray, min_px: int, max_px: int | None, scale_factor: float = 1.1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` and their neighbour counts (how many windows agreed: confidence)."""
        max_size = (max_px, max_px) if max_px else (0, 0)  # (0, 0): no upper bound
        found, votes = self._cascade.detectMultiScale2(
            gray,
            scaleFactor=scale_factor,
            minNeighbors=5,
            minSize=(min_px, min_px),
            maxSize=max_size,
        )
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4)
        return boxes, np.asarray(votes, dtype=np.float32).reshape(-1)

    def detect(self, gray: np.ndarray, *, near: Box | None = None) -> Box | None:
        """The most confident face in ``gray`` (2-D uint8), or the one nearest ``near``; or None.

        Confidence is the number of detection windows that agreed on a face: false positives
        (a fold of cloth, a logo) gather few, real faces many - size alone is a poor guide.
        """
        if near is not None:
            box = self._detect_near(gray, near)
            if box is not None:
                return box
        w = gray.shape[1]
        scale = min(1.0, self.search_width / max(w, 1))
        small = gray if scale >= 1.0 else _resize(gray, scale)
        min_px = max(24, int(min(small.shape[:2]) * 0.08))
        found, votes = self._run(small, min_px, None)
        if not len(found):
            return None
        best = found[np.argmax(votes + found[:, 2] * 1e-3)]  # ties: the larger face
        return Box(*(float(v) / scale for v in best))

    def _detect_near(self, gray: np.ndarray, near: Box) -> Box | None:
        h, w = gray.shape[:2]
        x0 = int(max(0, near.x - near.w * 0.6))
        y0 = int(max(0, near.y - near.h * 0.6))
        x1 = int(min(w, near.x + near.w * 1.6))
        y1 = int(min(h, near.y + near.h * 1.6))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return None
        scale = min(1.0, self.track_face_px / max(near.w, 1.0))
        region = gray[y0:y1, x0:x1]
        small = region if scale >= 1.0 else _resize(region, scale)
        face_px = near.w * scale
        found, votes = self._run(
            small, max(24, int(face_px * 0.7)), int(face_px * 1.4) + 1, scale_factor=1.15
        )
        if not len(found):
            return None
        centers = found[:, :2] + found[:, 2:] / 2
        cx, cy = (near.x - x0 + near.w / 2) * scale, (near.y - y0 + near.h / 2) * scale
        distance = np.hypot(centers[:, 0] - cx, centers[:, 1] - cy) / max(face_px, 1.0)
        best = found[np.argmax(votes - 10 * distance)]
        bx, by, bw, bh = (float(v) / scale for v in best)
        return Box(bx + x0, by + y0, bw, bh)


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
    h, w = gray.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


class FaceTrack:
    """Per-frame face boxes from detections on some frames.

    Detections are added in increasing frame order; each is blended with the previous smoothed
    box (``smoothing`` = weight of the past, damping the cascade's jitter) and frames between
    two detections get linearly interpolated boxes. Frames before the first detection get the
    first box, frames after the last get the last one. Missed detections are simply bridged.
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


def detect_face_in_video(
    path: str | os.PathLike[str],
    seconds: float = 3.0,
    *,
    samples: int = 6,
    info: MediaInfo | None = None,
) -> Box | None:
    """Look for a face in the first ``seconds`` of a video (upload validation).

    Decodes ``samples`` frames spread over that span as small grayscale images through an
    ffmpeg pipe and returns the median of the boxes found (in the video's display pixels),
    or ``None`` when no sampled frame shows a face.
    """
    src = Path(path)
    info = info or probe(src)
    if not info.has_video or not info.width or not info.height:
        raise MediaError("The file has no video stream.", path=str(src))
    span = max(0.04, min(seconds, info.duration or seconds))
    width = min(640, even(info.width))
    height = max(2, even(round(info.height * width / info.width)))
    cmd = [
        ffmpeg_bin.find_ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-t",
        f"{span:.3f}",
        *_input_args(src),
        "-map",
        "0:v:0",
        "-vf",
        f"fps={samples / span:.6f},scale={width}:{height}",
        "-frames:v",
        str(samples),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "pipe:1",
    ]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False
    )
    if proc.returncode != 0 and not proc.stdout:
        raise _explain_failure(proc.stderr.decode("utf-8", "replace"), src)
    frames = np.frombuffer(proc.stdout, dtype=np.uint8)
    n = frames.size // (width * height)
    if n == 0:
        return None
    frames = frames[: n * width * height].reshape(n, height, width)
    detector = FaceDetector(search_width=width)
    found = [b for b in (detector.detect(f) for f in frames) if b is not None]
    if not found:
        return None
    median = np.median(np.stack([b.as_array() for b in found]), axis=0)
    return Box(*map(float, median)).scaled(info.width / width)
