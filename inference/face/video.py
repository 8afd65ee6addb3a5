"""Is this video a usable avatar? The face check run on uploads, over the first seconds.

A few frames spread over the first seconds are decoded small (one ffmpeg run), the main face
is found in each, and the verdict says what is wrong in words a person can act on: no face,
a face too small to animate well, or a face turned away from the camera.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.face import landmarks as lm
from inference.face.images import FaceImage
from inference.face.legacy import Box
from inference.face.mesh import FaceLandmarks, Roi
from inference.face.tracking import FaceTracker
from inference.media.frames import even
from inference.media.probing import MediaInfo, _explain_failure, _input_args, probe

#: A face must be at least this tall (forehead to chin) in display pixels...
MIN_FACE_PX = 80
#: ...and at least this fraction of the frame's height: smaller mouths leave the engines too
#: few pixels to redraw.
MIN_FACE_FRACTION = 0.12
#: Heads turned further than this (degrees, either way) show too little of the far side of
#: the mouth for a believable result.
MAX_YAW_DEGREES = 35.0
#: Sampled frames are decoded with their long side at most this many pixels: enough for a
#: face of the minimum size to be found, cheap to decode.
SAMPLE_LONG_SIDE = 960

NO_FACE = "no_face"
TOO_SMALL = "too_small"
TURNED_AWAY = "turned_away"


@dataclasses.dataclass(frozen=True)
class FaceVerdict:
    """The face check of one video. ``problem`` is None when the face is fine.

    Sizes and positions are in the video's display pixels, measured on the median sample.
    """

    problem: str | None
    seconds: float
    frame_width: int
    frame_height: int
    #: Sampled frames decoded, and how many of them showed a face.
    samples: int = 0
    found: int = 0
    landmarks: FaceLandmarks | None = None
    box: Box | None = None
    #: Forehead-to-chin height and estimated yaw (degrees) of the face.
    face_height: float = 0.0
    yaw: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the video has one usable face."""
        return self.problem is None

    @property
    def min_face_height(self) -> float:
        """The smallest face height accepted in this video, in pixels."""
        return max(MIN_FACE_PX, MIN_FACE_FRACTION * self.frame_height)

    def message(self, label: str) -> str:
        """What is wrong with the video called ``label`` and what to upload instead."""
        if self.problem == NO_FACE:
            return (
                f"No face was found in the first {self.seconds:.0f} "
                f"second{'' if round(self.seconds) == 1 else 's'} of “{label}”. "
                "Use a video where one face looks at the camera, well lit."
            )
        if self.problem == TOO_SMALL:
            share = 100 * self.face_height / max(self.frame_height, 1)
            return (
                f"The face in “{label}” is too small: about {self.face_height:.0f} px tall, "
                f"{share:.0f}% of the {self.frame_height} px frame height. It must be at least "
                f"{self.min_face_height:.0f} px tall here ({MIN_FACE_FRACTION:.0%} of the frame "
                f"height, and never under {MIN_FACE_PX} px). Upload a closer shot where the "
                "face fills more of the picture."
            )
        if self.problem == TURNED_AWAY:
            return (
                f"The face in “{label}” is turned away from the camera (about "
                f"{abs(self.yaw):.0f}° to the side; at most {MAX_YAW_DEGREES:.0f}° works). "
                "Upload a video where the person looks into the camera."
            )
        return f"“{label}” shows a usable face."


def sample_frames(
    path: str | os.PathLike[str], seconds: float, samples: int, info: MediaInfo
) -> tuple[np.ndarray, float]:
    """Up to ``samples`` RGB frames ``(n, h, w, 3)`` spread over the first ``seconds``, with
    their long side at most :data:`SAMPLE_LONG_SIDE`, and the factor back to display pixels."""
    src = Path(path)
    if not info.has_video or not info.width or not info.height:
        raise MediaError("The file has no video stream.", path=str(src), code="no_video")
    span = max(0.04, min(seconds, info.duration or seconds))
    shrink = min(1.0, SAMPLE_LONG_SIDE / max(info.width, info.height))
    width = max(2, even(round(info.width * shrink)))
    height = max(2, even(round(info.height * shrink)))
    cmd = [
        ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error",
        "-t", f"{span:.3f}", *_input_args(src), "-map", "0:v:0",
        "-vf", f"fps={samples / span:.6f},scale={width}:{height}:flags=area",
        "-frames:v", str(samples), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False
    )
    if proc.returncode != 0 and not proc.stdout:
        raise _explain_failure(proc.stderr.decode("utf-8", "replace"), src)
    frame_bytes = width * height * 3
    n = len(proc.stdout) // frame_bytes
    frames = np.frombuffer(proc.stdout, dtype=np.uint8)[: n * frame_bytes]
    return frames.reshape(n, height, width, 3), info.width / width


def check_face_in_video(
    path: str | os.PathLike[str],
    seconds: float = 3.0,
    *,
    samples: int = 6,
    info: MediaInfo | None = None,
    model_dir: Path | None = None,
) -> FaceVerdict:
    """Check the main face in the first ``seconds`` of a video (upload validation).

    The verdict is taken on the median of the sampled frames that show a face: a blink or a
    frame of motion blur does not decide. Raises :class:`MediaError` when the file cannot be
    decoded and :class:`inference.face.FaceModelsMissing` when the models are not installed.
    """
    info = info or probe(Path(path))
    # Consecutive samples usually show the face at about the same place: the tracker measures
    # it from the last sample's crop and searches the frame only when it is not there.
    tracker = FaceTracker(model_dir=model_dir)
    frames, factor = sample_frames(path, seconds, samples, info)
    common = {
        # The span looked at: a clip shorter than ``seconds`` is looked at whole.
        "seconds": round(min(seconds, info.duration or seconds), 1),
        "frame_width": int(info.width or 0),
        "frame_height": int(info.height or 0),
        "samples": len(frames),
    }
    faces = []
    for k, frame in enumerate(frames):
        tracker.update(FaceImage.from_rgb(frame), t=float(k))
        if tracker.raw is not None:  # unsmoothed: samples are far apart in time
            faces.append(tracker.raw)
    if not faces:
        return FaceVerdict(NO_FACE, **common)
    heights = np.array([f.box()[3] for f in faces]) * factor
    median = int(np.argsort(heights)[len(heights) // 2])
    face = faces[median]
    roi = Roi(face.roi.cx * factor, face.roi.cy * factor, face.roi.side * factor, face.roi.angle)
    scaled = FaceLandmarks(face.points * np.float32(factor), face.presence, roi)
    boxes = np.array([f.box() for f in faces]) * factor
    box = Box(*map(float, np.median(boxes, axis=0)))
    yaw = float(np.median([lm.yaw_degrees(f.points) for f in faces]))
    verdict = FaceVerdict(
        None, **common, found=len(faces), landmarks=scaled, box=box, face_height=box.h, yaw=yaw
    )
    if verdict.face_height < verdict.min_face_height:
        return dataclasses.replace(verdict, problem=TOO_SMALL)
    if abs(yaw) > MAX_YAW_DEGREES:
        return dataclasses.replace(verdict, problem=TURNED_AWAY)
    return verdict


def detect_face_in_video(
    path: str | os.PathLike[str],
    seconds: float = 3.0,
    *,
    samples: int = 6,
    info: MediaInfo | None = None,
) -> Box | None:
    """The main face's box (median over the samples, display pixels) in the first
    ``seconds`` of a video, or None when no sampled frame shows a face (whatever its size
    or pose: use :func:`check_face_in_video` to judge those)."""
    return check_face_in_video(path, seconds, samples=samples, info=info).box
