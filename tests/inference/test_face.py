"""Faces: BlazeFace + the 468-point mesh on real pictures and videos, tracking, upload verdicts,
the box API the engines use, and the model installer. Nothing is mocked: the models are the
ones ``make`` installed."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from inference.errors import InferenceError
from inference.face import (
    BlazeFaceDetector,
    Box,
    FaceDetector,
    FaceImage,
    FaceMesh,
    FaceModelsMissing,
    FaceTrack,
    FaceTracker,
    OneEuroFilter,
    check_face_in_video,
    default_model_dir,
    detect_face_in_video,
    find_face,
    find_face_rgb,
    find_face_yuv,
    landmarks,
)
from inference.face import install as installer
from inference.face.models import MODEL_FILES, model_bytes
from inference.face.video import MAX_YAW_DEGREES, MIN_FACE_FRACTION, MIN_FACE_PX
from inference.media import FrameReader, yuv_planes
from tests.inference.conftest import MOVING_HEAD_AT, astronaut_head, head_frame, write_rgb_video

# Found by looking at scikit-image's astronaut (512 x 512) with the mesh drawn on it: her
# smiling mouth spans x 200..248, y 134..156; the lips part (teeth show) around y 143..150.
MOUTH_INSIDE = (212, 136, 236, 156)  # x0, y0, x1, y1 where points 13 and 14 must fall
RIGHT_CORNER_X = (194, 210)  # point 61, the image-left corner
LEFT_CORNER_X = (238, 254)  # point 291, the image-right corner
CORNERS_Y = (132, 150)


def i420_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V planes of an RGB image, as the render pipeline holds frames."""
    h, w = rgb.shape[:2]
    flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    q = h * w // 4
    y = flat[: h * w].reshape(h, w)
    return (
        y,
        flat[h * w : h * w + q].reshape(h // 2, w // 2),
        flat[h * w + q :].reshape(h // 2, w // 2),
    )


def decoded_yuv(path: Path) -> list[FaceImage]:
    """Every frame of a video as the pipeline decodes it (yuv420p planes)."""
    with FrameReader(path) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(16)])
        y, u, v = yuv_planes(frames, reader.width, reader.height)
    return [FaceImage.from_yuv(y[k], u[k], v[k]) for k in range(len(y))]


def inside(point: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    x0, y0, x1, y1 = box
    return bool(x0 <= point[0] <= x1 and y0 <= point[1] <= y1)


# --------------------------------------------------------------------------- landmarks


def test_the_models_load_offline_and_verify() -> None:
    for model in MODEL_FILES:
        assert len(model_bytes(model)) > 100_000
    assert (default_model_dir() / "face_landmark.tflite").is_file()


def test_landmarks_land_on_the_astronauts_lips() -> None:
    face = find_face_rgb(data.astronaut())
    assert face is not None and face.presence > 0.9
    xy = face.xy
    upper, lower = xy[landmarks.INNER_UPPER_LIP_MID], xy[landmarks.INNER_LOWER_LIP_MID]
    assert inside(upper, MOUTH_INSIDE) and inside(lower, MOUTH_INSIDE)
    assert upper[1] < lower[1]  # the upper inner lip is above the lower one
    right, left = xy[landmarks.MOUTH_RIGHT], xy[landmarks.MOUTH_LEFT]
    assert RIGHT_CORNER_X[0] < right[0] < RIGHT_CORNER_X[1] < upper[0]
    assert upper[0] < LEFT_CORNER_X[0] < left[0] < LEFT_CORNER_X[1]
    assert CORNERS_Y[0] < right[1] < CORNERS_Y[1] and CORNERS_Y[0] < left[1] < CORNERS_Y[1]
    # The rest of the face is where a face has it.
    nose, chin = xy[landmarks.NOSE_TIP], xy[landmarks.CHIN]
    eyes_y = xy[list(landmarks.RIGHT_EYE + landmarks.LEFT_EYE), 1].mean()
    assert eyes_y < nose[1] < upper[1] < lower[1] < chin[1]
    assert (
        xy[list(landmarks.RIGHT_EYE), 0].mean() < nose[0] < xy[list(landmarks.LEFT_EYE), 0].mean()
    )
    # Measures: the mouth is ~44 px wide, centred on her lips, open enough to show teeth.
    cx, cy = landmarks.mouth_center(face.points)
    assert inside(np.array([cx, cy]), MOUTH_INSIDE)
    assert 36 < landmarks.mouth_width(face.points) < 54
    assert 0.08 < landmarks.lip_gap(face.points) < 0.3
    assert 0.02 < landmarks.lip_gap(face.points, per="face_height") < 0.1
    assert abs(landmarks.yaw_degrees(face.points)) < 10
    _, top, _, height = face.box()
    assert 60 < top < 85 and 165 < top + height < 190  # forehead top to chin
    with pytest.raises(ValueError):
        landmarks.lip_gap(face.points, per="ear")


def test_index_sets_are_canonical_contours() -> None:
    for contour in (landmarks.OUTER_LIP, landmarks.INNER_LIP, landmarks.FACE_OVAL):
        assert len(set(contour)) == len(contour) and max(contour) < 468
    assert landmarks.OUTER_LIP_UPPER[0] == landmarks.OUTER_LIP_LOWER[0] == landmarks.MOUTH_RIGHT
    assert landmarks.OUTER_LIP_UPPER[-1] == landmarks.OUTER_LIP_LOWER[-1] == landmarks.MOUTH_LEFT
    assert landmarks.INNER_LIP_UPPER[5] == 13 and landmarks.INNER_LIP_LOWER[5] == 14
    assert landmarks.JAW[landmarks.JAW.index(landmarks.CHIN)] == 152
    assert set(landmarks.JAW) <= set(landmarks.FACE_OVAL)


def test_yuv_and_grey_frames_give_the_same_landmarks_as_rgb() -> None:
    frame = head_frame(scale=1.5)
    rgb = find_face_rgb(frame)
    yuv = find_face_yuv(*i420_planes(frame))
    grey = FaceDetector().landmarks(i420_planes(frame)[0])
    assert rgb is not None and yuv is not None and grey is not None
    assert np.linalg.norm(rgb.xy - yuv.xy, axis=1).mean() < 1.5
    assert np.linalg.norm(rgb.xy - grey.xy, axis=1).mean() < 3.0


def test_a_tilted_and_shifted_head_is_measured_in_place() -> None:
    head = astronaut_head()
    level = find_face_rgb(head_frame(640, 480, at=(200, 100)))
    assert level is not None
    # Turn the head 25 degrees (counter-clockwise on screen) and move it elsewhere.
    h, w = head.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    tilted = cv2.warpAffine(head, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    frame = head_frame(640, 480, at=(320, 150))
    frame[150 : 150 + h, 320 : 320 + w] = tilted
    face = find_face_rgb(frame)
    assert face is not None
    roll = math.degrees(landmarks.eye_angle(face.points) - landmarks.eye_angle(level.points))
    assert abs(roll + 25) < 5  # counter-clockwise on screen: the eye line rises to the right
    # Where the level head's mouth corners go under the same rotation and shift.
    for index in (landmarks.MOUTH_RIGHT, landmarks.MOUTH_LEFT, landmarks.INNER_LOWER_LIP_MID):
        hx, hy = level.xy[index] - (200, 100)
        expected = turn @ (hx, hy, 1.0) + (320, 150)
        assert np.hypot(*(face.xy[index] - expected)) < 4


# --------------------------------------------------------------------------- detection


def test_the_detector_finds_one_face_in_a_720p_frame() -> None:
    image = FaceImage.from_rgb(head_frame(scale=1.5))
    first_pass = next(BlazeFaceDetector().candidates(image))
    assert len(first_pass) == 1
    face = first_pass[0]
    assert face.score > 0.7
    # The head is pasted at (500, 150), 1.5 x: the face is around (680, 330), ~140 px.
    cx, cy = face.center
    assert abs(cx - 680) < 25 and abs(cy - 335) < 25 and 110 < face.width < 170
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] < mouth[1]


def test_the_detector_finds_a_small_face_by_searching_windows() -> None:
    found = find_face_rgb(head_frame(scale=0.6))  # ~60 px in 720 rows: 7 px at full view
    assert found is not None and 50 < found.box()[3] < 80


def test_no_face_in_blank_or_noise() -> None:
    detector, mesh = BlazeFaceDetector(), FaceMesh()
    blank = FaceImage.from_rgb(np.full((720, 1280, 3), 128, np.uint8))
    assert detector.detect(blank) is None
    noise = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    assert find_face(FaceImage.from_rgb(noise), detector, mesh) is None


# --------------------------------------------------------------------------- tracking


def test_the_tracker_follows_a_moving_face_and_redetects_after_a_cut(
    moving_face_video: Path,
) -> None:
    reference = find_face_rgb(head_frame(640, 360, at=(200, 40)))
    assert reference is not None
    shape = reference.xy - (200, 40)  # landmarks relative to the pasted head
    tracker = FaceTracker(fps=25)
    errors = []
    for image, at in zip(decoded_yuv(moving_face_video), MOVING_HEAD_AT, strict=True):
        face = tracker.update(image)
        assert face is not None
        errors.append(np.linalg.norm(face.xy - (shape + at), axis=1).mean())
    errors = np.array(errors)
    # One search for the first frame, one after the cut: the drift is followed by the mesh.
    assert tracker.detections == 2
    assert errors[:30].mean() < 2.0 and errors[:30].max() < 4.0  # 3 px per frame: no lag
    assert errors[30:].max() < 2.0  # found again at once, no smoothing across the cut


def test_smoothing_steadies_a_still_face(noisy_still_face_video: Path) -> None:
    tracker = FaceTracker(fps=25)
    raw, smooth = [], []
    for image in decoded_yuv(noisy_still_face_video):
        face = tracker.update(image)
        assert face is not None and tracker.raw is not None
        smooth.append(face.xy)
        raw.append(tracker.raw.xy)
    raw_jitter = np.stack(raw)[5:].std(axis=0).mean()
    smooth_jitter = np.stack(smooth)[5:].std(axis=0).mean()
    assert tracker.detections == 1
    assert smooth_jitter < 0.6 * raw_jitter


def track_in_batches(
    tracker: FaceTracker, images: list[FaceImage], stride: int, batch: int = 16
) -> list:
    faces = []
    for start in range(0, len(images), batch):
        faces += tracker.track(images[start : start + batch], stride=stride)
    return faces


def test_tracking_runs_of_frames_with_stride_1_is_updating_frame_by_frame(
    moving_face_video: Path,
) -> None:
    images = decoded_yuv(moving_face_video)
    one_by_one = FaceTracker(fps=25)
    expected = [one_by_one.update(image) for image in images]
    runs = FaceTracker(fps=25)
    got = track_in_batches(runs, images, stride=1, batch=7)
    assert all(np.array_equal(a.points, b.points) for a, b in zip(got, expected, strict=True))
    assert (runs.measured, runs.detections) == (one_by_one.measured, one_by_one.detections)


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_tracking_with_a_stride_measures_fewer_frames_and_still_follows(
    moving_face_video: Path, stride: int
) -> None:
    reference = find_face_rgb(head_frame(640, 360, at=(200, 40)))
    assert reference is not None
    shape = reference.xy - (200, 40)
    images = decoded_yuv(moving_face_video)
    tracker = FaceTracker(fps=25)
    faces = track_in_batches(tracker, images, stride=stride)
    errors = np.array(
        [
            np.linalg.norm(f.xy - (shape + at), axis=1).mean()
            for f, at in zip(faces, MOVING_HEAD_AT, strict=True)
        ]
    )
    # A steady drift is interpolated: the mesh runs on a bit more than every ``stride``-th
    # frame (the last frame of each run of 16 is measured; so are the first search and the
    # frames around the cut), and the landmarks are as close as when measuring every frame.
    runs = tracker.measured + tracker.detections
    assert runs <= 0.6 * len(images), runs
    assert errors[:30].mean() < 2.0 and errors[:30].max() < 4.0
    # The cut is searched for, not interpolated across.
    assert tracker.detections == 2
    assert errors[30:].max() < 2.0


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_tracking_with_a_stride_measures_where_the_head_turns_back(
    media: Path, stride: int
) -> None:
    """A head that drifts right, then rushes back left: at the turn the measured frames show
    the motion is not steady, so the frames between them are measured too; everywhere the
    landmarks are as close to where the head is as those of a tracker measuring every frame."""
    at = [(200 + 4 * n, 40) if n < 12 else (244 - 10 * (n - 11), 40) for n in range(24)]
    video = media / "turning_face.mp4"
    if not video.exists():
        write_rgb_video(video, [head_frame(640, 360, at=a) for a in at])
    reference = find_face_rgb(head_frame(640, 360, at=(200, 40)))
    assert reference is not None
    shape = reference.xy - (200, 40)
    images = decoded_yuv(video)
    every = FaceTracker(fps=25)
    strided = FaceTracker(fps=25)
    measured_all = [every.update(image) for image in images]
    faces = track_in_batches(strided, images, stride=stride, batch=8)

    def error(face, place) -> float:
        return float(np.linalg.norm(face.xy - (shape + place), axis=1).mean())

    errors = np.array([error(face, place) for face, place in zip(faces, at, strict=True)])
    full = np.array([error(face, place) for face, place in zip(measured_all, at, strict=True)])
    # Within the mesh's own jitter (~2 px here) of measuring every frame; both lag the rush
    # back (10 px per frame) for a frame or two.
    assert errors.mean() < full.mean() + 0.5 and errors.max() < full.max() + 2.0
    # The turn was measured frame by frame (and fast-moving faces measured again from a
    # crop centred on them): more mesh runs than every ``stride``-th frame.
    runs = strided.measured + strided.detections
    assert runs > len(images) // 2


def test_one_euro_filter_is_steady_when_still_and_quick_when_moving() -> None:
    one_euro = OneEuroFilter(min_cutoff=0.1, beta=20.0)
    rng = np.random.default_rng(3)
    still = [one_euro(np.array([100.0 + rng.normal(0, 0.5)]), k / 25, scale=100) for k in range(50)]
    assert np.std(still[10:]) < 0.25  # the input's jitter is 0.5
    moved = [one_euro(np.array([100.0 + 5 * k]), (50 + k) / 25, scale=100) for k in range(1, 20)]
    assert abs(moved[-1][0] - (100 + 5 * 19)) < 5  # a steady 5 px/frame is followed closely
    one_euro.reset()
    np.testing.assert_allclose(one_euro(np.array([7.0]), 9.0), [7.0])


# --------------------------------------------------------------------------- upload check


def test_a_face_of_good_size_looking_at_the_camera_passes(large_face_720p: Path) -> None:
    verdict = check_face_in_video(large_face_720p, seconds=1.0)
    assert verdict.ok and verdict.problem is None
    assert verdict.samples == verdict.found == 6
    assert verdict.box is not None and verdict.landmarks is not None
    assert verdict.face_height > max(MIN_FACE_PX, MIN_FACE_FRACTION * 720)
    assert abs(verdict.yaw) < 10
    # Display pixels: the head was pasted at (500, 100), 1.4 x.
    cx, cy = verdict.box.center
    assert abs(cx - (500 + 113 * 1.4)) < 20 and abs(cy - (100 + 103 * 1.4)) < 25


def test_a_small_face_is_refused_with_its_size(small_face_720p: Path, avatar: Path) -> None:
    verdict = check_face_in_video(small_face_720p, seconds=1.0)
    assert verdict.problem == "too_small" and verdict.box is not None
    message = verdict.message("wide shot.mp4")
    assert message.startswith("The face in “wide shot.mp4” is too small: about ")
    assert f"of the 720 px frame height. It must be at least {0.12 * 720:.0f} px" in message
    assert "Upload a closer shot" in message
    # 54 px is a fifth of a 256 px frame, but under the 80 px floor.
    small = check_face_in_video(avatar, seconds=1.0)
    assert small.problem == "too_small" and f"at least {MIN_FACE_PX} px" in small.message("a")


def test_a_face_turned_away_is_refused(turned_face_video: Path) -> None:
    verdict = check_face_in_video(turned_face_video, seconds=1.0)
    assert verdict.problem == "turned_away"
    assert abs(verdict.yaw) > MAX_YAW_DEGREES
    message = verdict.message("profile.mov")
    assert message.startswith("The face in “profile.mov” is turned away from the camera")
    assert "looks into the camera" in message


def test_a_squeezed_face_is_narrow_not_turned() -> None:
    # Half as wide is not a turned head: the nose stays between the cheeks.
    squeezed = cv2.resize(data.astronaut(), (256, 512), interpolation=cv2.INTER_AREA)
    face = find_face_rgb(squeezed)
    assert face is not None and abs(landmarks.yaw_degrees(face.points)) < 15


def test_no_face_is_refused(blank_video: Path) -> None:
    """The clip lasts 1 s: the message names the span really looked at, not the 3 s asked."""
    verdict = check_face_in_video(blank_video)
    assert verdict.problem == "no_face" and verdict.box is None and verdict.found == 0
    assert verdict.message("grey.mp4") == (
        "No face was found in the first 1 second of “grey.mp4”. "
        "Use a video where one face looks at the camera, well lit."
    )


# --------------------------------------------------------------------------- the engines' API


def test_face_detector_boxes_span_forehead_to_chin(astronaut_png: Path) -> None:
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    box = FaceDetector().detect(grey)
    assert box is not None
    cx, cy = box.center
    assert abs(cx - 225) < 12 and abs(cy - 123) < 12
    assert 80 < box.w < 110 and 90 < box.h < 120
    near = FaceDetector().detect(grey, near=Box(box.x + 8, box.y - 6, box.w, box.h))
    assert near is not None and abs(near.center[0] - cx) < 3 and abs(near.center[1] - cy) < 3
    assert FaceDetector().detect(np.full((240, 320), 128, np.uint8)) is None


def test_detect_face_in_video(avatar: Path, blank_video: Path) -> None:
    box = detect_face_in_video(avatar, seconds=1.0)
    assert box is not None  # any face is a box here, even one too small for an upload
    cx, cy = box.center
    assert abs(cx - 112) < 8 and abs(cy - 61) < 8  # the 512 px position, halved
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


# --------------------------------------------------------------------------- installing


def fake_wheel(path: Path, contents: dict[str, bytes]) -> Path:
    """A zip laid out like the mediapipe wheel, holding ``contents`` at the model paths."""
    with zipfile.ZipFile(path, "w") as archive:
        for model in MODEL_FILES:
            archive.writestr(model.member, contents[model.name])
    return path


def test_install_refuses_a_model_with_the_wrong_checksum(tmp_path: Path) -> None:
    real = {m.name: model_bytes(m) for m in MODEL_FILES}
    tampered = dict(real, **{"face_landmark.tflite": real["face_landmark.tflite"][:-1] + b"!"})
    wheel = fake_wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", tampered)
    target = tmp_path / "models"
    with pytest.raises(installer.ModelChecksumError, match="refusing to install it") as caught:
        installer.install(target, wheel=wheel)
    assert isinstance(caught.value, InferenceError)
    assert "face_landmark.tflite" in str(caught.value)
    # Checked before anything is written: not even the good detector file landed.
    assert not target.exists() or not any(target.iterdir())
    assert installer.main(["--dir", str(target), "--wheel", str(wheel)]) == 1


def test_install_is_idempotent_and_repairs(tmp_path: Path) -> None:
    real = {m.name: model_bytes(m) for m in MODEL_FILES}
    wheel = fake_wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", real)
    target = tmp_path / "models"
    assert installer.install(target, wheel=wheel) is True
    assert installer.installed(target)
    stamps = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    # Both files present and right: nothing is downloaded (no wheel given) or rewritten.
    assert installer.install(target) is False
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == stamps
    # A damaged file is replaced from the wheel; no temp files are left behind.
    (target / "face_detection_short_range.tflite").write_bytes(b"truncated")
    assert installer.install(target, wheel=wheel) is True
    assert installer.installed(target)
    assert sorted(p.name for p in target.iterdir()) == sorted(m.name for m in MODEL_FILES)


def test_missing_models_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FaceModelsMissing, match=r"-m inference\.face\.install --dir ") as caught:
        BlazeFaceDetector(model_dir=tmp_path)
    assert str(tmp_path) in str(caught.value)
    monkeypatch.setenv("FACE_MODEL_DIR", str(tmp_path))
    assert default_model_dir() == tmp_path
    with pytest.raises(
        FaceModelsMissing, match=r"install it with: \S+ -m inference\.face\.install$"
    ):
        FaceMesh()
    # A damaged file in place is refused too (not handed to OpenCV).
    for model in MODEL_FILES:
        (tmp_path / model.name).write_bytes(b"not a model")
    with pytest.raises(FaceModelsMissing, match="damaged"):
        FaceMesh()
