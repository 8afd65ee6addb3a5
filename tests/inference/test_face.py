"""Face boxes: the Haar cascade on Y planes, the video check for uploads, the smoothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inference.face import Box, FaceDetector, FaceTrack, detect_face_in_video


def test_detector_finds_the_astronaut(astronaut_png: Path) -> None:
    gray = np.asarray(Image.open(astronaut_png).convert("L"))
    box = FaceDetector().detect(gray)
    assert box is not None
    cx, cy = box.center
    # Her face is around (225, 115) in the 512x512 picture, about 95 px wide.
    assert abs(cx - 225) < 20 and abs(cy - 115) < 20
    assert 70 < box.w < 130
    tracked = FaceDetector().detect(gray, near=box)
    assert tracked is not None and abs(tracked.center[0] - cx) < 10


def test_detector_finds_nothing_in_a_flat_image() -> None:
    assert FaceDetector().detect(np.full((240, 320), 128, np.uint8)) is None


def test_detect_face_in_video(avatar: Path, blank_video: Path) -> None:
    box = detect_face_in_video(avatar, seconds=1.0)
    assert box is not None
    cx, cy = box.center
    assert abs(cx - 112) < 12 and abs(cy - 57) < 12  # the 512 px position, halved
    assert detect_face_in_video(blank_video) is None


def test_face_track_interpolates_and_smooths() -> None:
    track = FaceTrack(smoothing=0.0)
    track.add(0, Box(0, 0, 10, 10))
    track.add(5, None)  # a missed detection is bridged
    track.add(10, Box(10, 20, 10, 10))
    boxes = track.boxes([0, 5, 10, 20])
    np.testing.assert_allclose(boxes[:, 0], [0, 5, 10, 10])
    np.testing.assert_allclose(boxes[:, 1], [0, 10, 20, 20])
    assert track.covers(10) and not track.covers(11)
    track.finished = True
    assert track.covers(11)

    smooth = FaceTrack(smoothing=0.5)
    smooth.add(0, Box(0, 0, 10, 10))
    smooth.add(4, Box(8, 0, 10, 10))
    assert smooth.boxes([4])[0, 0] == 4.0  # half way to the new detection
