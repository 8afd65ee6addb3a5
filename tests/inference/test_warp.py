"""The warp engine on real media: the lips part along their contour, the mouth shows a dark
interior and the avatar's own teeth, the rest of the frame is untouched, the lip gap a face
mesh reads on the output follows the voice, and prepared avatars are reused.

Pixel-exact checks run the engine's ``process`` on decoded frames (the mp4 encoder changes
pixels); the lip-sync check renders end to end and reads the decoded output."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inference.audio import SAMPLE_RATE as AUDIO_RATE
from inference.audio import load_audio
from inference.engines import WarpEngine, get_engine
from inference.engines.base import RenderPlan
from inference.engines.pipeline import FrameBatch
from inference.engines.prepare import (
    TRACK_STRIDE,
    AvatarPrep,
    SourceTracker,
    StalePrep,
    prepare_avatar,
)
from inference.engines.warp.engine import MIN_OPEN, amounts, field_params, regions
from inference.engines.warp.field import mouth_field
from inference.engines.warp.geometry import mouth_frames
from inference.errors import InferenceError
from inference.face import FaceImage, FaceMesh, FaceTracker
from inference.face import landmarks as lm
from inference.media import FrameReader, probe, yuv_planes
from tests.inference.conftest import FPS, vowel, write_wav

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- helpers


def decode(path: Path) -> tuple[np.ndarray, int, int]:
    """Every frame of a video, ``(n, frame_bytes)`` yuv420p, and its size."""
    with FrameReader(path, fps=str(FPS)) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(16)])
        return frames, reader.width, reader.height


def track(path: Path, frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """The pipeline's landmarks ``(n, 468, 2)`` of decoded frames."""
    tracker = SourceTracker(path, probe(path), float(FPS), width, height)
    y, u, v = yuv_planes(frames, width, height)
    tracker.add(y, u, v, np.arange(len(frames)))
    return tracker.all_points()


def warp_decoded(avatar: Path, audio: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Run the warp engine's ``process`` over the avatar's decoded frames (output frame i =
    avatar frame i; the audio must not be longer): source frames, output frames, landmarks,
    opening per frame, width, height... as ``(source, output, points, opening, (w, h))``."""
    source, width, height = decode(avatar)
    points = track(avatar, source, width, height)
    samples = load_audio(audio)
    n = min(len(source), int(np.ceil(len(samples) / AUDIO_RATE * FPS - 1e-6)))
    plan = RenderPlan(
        avatar=avatar, audio=audio, out=avatar.with_suffix(".out.mp4"),
        avatar_info=probe(avatar), samples=samples, audio_duration=len(samples) / AUDIO_RATE,
        width=width, height=height, fps=str(FPS), fps_value=float(FPS), n_frames=n,
        device=CPU, batch_size=16,
    )  # fmt: skip
    engine = WarpEngine()
    engine.prepare(plan)
    output = source[:n].copy()
    for start in range(0, n, 16):
        idx = np.arange(start, min(n, start + 16))
        batch = FrameBatch(output[idx[0] : idx[-1] + 1], idx, idx, width, height)
        batch.landmarks = points[idx]
        engine.process(plan, batch)
    opening, _ = engine.frame_amounts(np.arange(n))
    return source[:n], output, points[:n], opening, (width, height)


def to_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.cvtColor(frame.reshape(height * 3 // 2, width), cv2.COLOR_YUV2RGB_I420)


def measure(frames: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """What a face mesh sees in each frame (unsmoothed): the inner-lip gap (over the mouth
    width) and the mean Y between the inner lips."""
    tracker = FaceTracker(fps=FPS)
    y_planes = yuv_planes(frames, width, height)[0]
    gaps, inside = [], []
    for frame, y in zip(frames, y_planes, strict=True):
        tracker.update(FaceImage.from_rgb(to_rgb(frame, width, height)))
        face = tracker.raw
        assert face is not None
        gaps.append(lm.lip_gap(face.points))
        mask = np.zeros(y.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(face.xy[list(lm.INNER_LIP)] * 8).astype(np.int32)], 1, shift=3)
        inside.append(float(y[mask > 0].mean()) if mask.any() else np.nan)
    return np.array(gaps), np.array(inside)


def loudness_db(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS of each video frame's audio in dBFS, floored at the clip's pauses (its 5th
    percentile, never under -60 dBFS), as bench/sync.py measures it."""
    edges = np.clip(
        np.round(np.arange(n_frames + 1) * AUDIO_RATE / FPS).astype(int), 0, len(samples)
    )
    power = np.array(
        [np.mean(samples[a:b] ** 2) if b > a else 0.0 for a, b in itertools.pairwise(edges)]
    )
    db = np.maximum(10 * np.log10(np.maximum(power, 1e-12)), -60.0)
    return np.maximum(db, np.percentile(db, 5))


@pytest.fixture(scope="module")
def vowel_after_silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of silence, then 1.5 s of a loud vowel (shorter than the 3 s avatars)."""
    folder = tmp_path_factory.mktemp("warp_audio")
    return write_wav(folder / "v.wav", np.concatenate([np.zeros(AUDIO_RATE), vowel(1.5)]))


@pytest.fixture(scope="module")
def smile_warped(smile_avatar: Path, vowel_after_silence: Path):
    return warp_decoded(smile_avatar, vowel_after_silence)


@pytest.fixture(scope="module")
def closed_warped(closed_avatar: Path, vowel_after_silence: Path):
    return warp_decoded(closed_avatar, vowel_after_silence)


SILENT = slice(2, 20)  # frames well inside the first second
LOUD = slice(40, 60)  # frames well inside the vowel


# --------------------------------------------------------------------------- the mouth


@pytest.mark.parametrize("which", ["smile", "closed"])
def test_the_lips_part_and_the_mouth_is_dark_inside(which: str, request) -> None:
    source, output, _, opening, (w, h) = request.getfixturevalue(f"{which}_warped")
    assert (opening[SILENT] < MIN_OPEN).all() and (opening[LOUD] > 0.5).all()
    gap, inside = measure(output, w, h)
    src_gap, _ = measure(source[:3], w, h)
    # Silent frames are the avatar, bit for bit.
    assert np.array_equal(output[SILENT], source[SILENT])
    # Loud: the mesh sees the lips apart, and what is between them is dark.
    assert np.median(gap[LOUD]) > src_gap.mean() + 0.05
    assert np.median(inside[LOUD]) < np.median(inside[SILENT]) - 30
    assert np.median(inside[LOUD]) < 110


def test_only_the_mouth_region_changes(smile_warped) -> None:
    source, output, points, opening, (w, h) = smile_warped
    ys, us, vs = yuv_planes(source, w, h)
    yo, uo, vo = yuv_planes(output, w, h)
    changed = 0
    for k in np.flatnonzero(opening >= MIN_OPEN):
        nose = int(np.ceil(points[k, lm.NOSE_BASE, 1]))  # the nose base's row too
        # Above the nose base: bit-identical on all three planes.
        assert np.array_equal(yo[k, :nose], ys[k, :nose])
        assert np.array_equal(uo[k, : nose // 2], us[k, : nose // 2])
        assert np.array_equal(vo[k, : nose // 2], vs[k, : nose // 2])
        # Beside the face and far under the chin too.
        x0, x1 = points[k, :, 0].min(), points[k, :, 0].max()
        chin = points[k, lm.CHIN, 1]
        width = lm.mouth_width(points[k])
        assert np.array_equal(yo[k, :, : int(x0)], ys[k, :, : int(x0)])
        assert np.array_equal(yo[k, :, int(np.ceil(x1)) + 1 :], ys[k, :, int(np.ceil(x1)) + 1 :])
        below = int(chin + 1.2 * width)
        assert np.array_equal(yo[k, below:], ys[k, below:])
        changed += int((yo[k] != ys[k]).any())
    assert changed >= 30


def test_the_teeth_move_with_the_upper_lip_intact(smile_warped) -> None:
    source, output, points, _, (w, h) = smile_warped
    ys, yo = yuv_planes(source, w, h)[0], yuv_planes(output, w, h)[0]
    scores = []
    for k in range(LOUD.start, LOUD.stop):
        p = points[k]
        cx = round(float(p[lm.INNER_UPPER_LIP_MID, 0]))
        upper, lower = p[lm.INNER_UPPER_LIP_MID, 1], p[lm.INNER_LOWER_LIP_MID, 1]
        # The upper front teeth: the top of the gap, mid-mouth (the mouth opens under them).
        top, bottom = round(float(upper)) + 1, round(float(upper + 0.6 * (lower - upper)))
        half = int(0.2 * lm.mouth_width(p))
        teeth = ys[k, top:bottom, cx - half : cx + half].astype(float)
        assert teeth.mean() > 150  # bright: these are the teeth
        best = -1.0
        for dy in range(-4, 3):  # the upper lip rises a pixel or two
            moved = yo[k, top + dy : bottom + dy, cx - half : cx + half].astype(float)
            a, b = teeth - teeth.mean(), moved - moved.mean()
            best = max(best, float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())))
        scores.append(best)
    assert np.median(scores) > 0.9, scores


def test_the_warp_never_folds(smile_avatar: Path) -> None:
    source, w, h = decode(smile_avatar)
    points = track(smile_avatar, source[:1], w, h)
    for shape in (-1.0, 0.0, 1.0):
        geom = mouth_frames(points)
        amt = amounts(geom, np.array([1.0]), np.array([shape]))
        x0, y0, rw, rh = regions(geom, amt, w, h)
        xs = torch.arange(rw, dtype=torch.float32).view(1, 1, -1) + float(x0[0])
        ys = torch.arange(rh, dtype=torch.float32).view(1, -1, 1) + float(y0[0])
        field = mouth_field(field_params(geom, amt, CPU), xs, ys)
        dx, dy = field.dx[0].numpy(), field.dy[0].numpy()
        # The backward map p -> p - D(p) must keep its orientation everywhere.
        ddx_x, ddx_y = np.gradient(dx, axis=1), np.gradient(dx, axis=0)
        ddy_x, ddy_y = np.gradient(dy, axis=1), np.gradient(dy, axis=0)
        det = (1 - ddx_x) * (1 - ddy_y) - ddx_y * ddy_x
        assert det.min() > 0.0, (shape, det.min())
        assert ddy_y.max() < 1.0 and ddx_x.max() < 1.0
        # It moves things: the lower lip drops by a tenth of the mouth's width or more.
        assert dy.max() > 0.1 * lm.mouth_width(points[0])
        # And nothing at the region's edges (no seam).
        for edge in (dx, dy):
            assert np.abs(edge[0]).max() == 0 and np.abs(edge[:, 0]).max() == 0
            assert np.abs(edge[:, -1]).max() == 0


@pytest.mark.parametrize("which", ["smile", "closed"])
def test_the_lip_gap_follows_the_voice(
    which: str, request, tmp_path: Path, english_sentence: Path
) -> None:
    avatar = request.getfixturevalue(f"{which}_avatar")
    out = get_engine("warp").render(avatar, english_sentence, tmp_path / "talk.mp4").path
    frames, w, h = decode(out)
    gap, _ = measure(frames, w, h)
    loud = loudness_db(load_audio(english_sentence), len(gap))
    r = float(np.corrcoef(gap, loud)[0, 1])
    assert r >= 0.6, r


# --------------------------------------------------------------------------- prepared avatars


class CountingTracker:
    """Counts the frames given to the real tracker and the face mesh's runs (both run
    unchanged)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.mesh_runs = 0
        update, track, run = FaceTracker.update, FaceTracker.track, FaceMesh.run

        def counted_run(mesh: FaceMesh, *args, **kwargs):
            self.mesh_runs += 1
            return run(mesh, *args, **kwargs)

        monkeypatch.setattr(FaceMesh, "run", counted_run)

        def counted_update(tracker: FaceTracker, *args, **kwargs):
            self.calls += 1
            return update(tracker, *args, **kwargs)

        def counted_track(tracker: FaceTracker, images, *args, **kwargs):
            self.calls += len(images)
            return track(tracker, images, *args, **kwargs)

        monkeypatch.setattr(FaceTracker, "update", counted_update)
        monkeypatch.setattr(FaceTracker, "track", counted_track)


def test_a_prepared_avatar_is_reused_without_tracking(
    tmp_path: Path, smile_avatar: Path, english_sentence: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountingTracker(monkeypatch)
    engine = get_engine("warp")
    prep = engine.prepare_avatar(smile_avatar, out=tmp_path / "smile.prep.npz")
    assert counter.calls == prep.frame_count == 75
    assert counter.mesh_runs >= 75  # a prep measures every frame
    assert prep.landmarks.shape == (75, 468, 2) and prep.found.all()
    assert (tmp_path / "smile.prep.npz").stat().st_size < 60_000  # 75 frames
    assert [p.name for p in tmp_path.iterdir()] == ["smile.prep.npz"]  # no temp file left

    loaded = AvatarPrep.load(tmp_path / "smile.prep.npz")
    assert np.array_equal(loaded.landmarks, prep.landmarks)
    counter.calls = counter.mesh_runs = 0
    with_prep = engine.render(smile_avatar, english_sentence, tmp_path / "a.mp4", prepared=loaded)
    assert counter.calls == counter.mesh_runs == 0 and engine.tracked_frames == 0
    inline = engine.render(smile_avatar, english_sentence, tmp_path / "b.mp4")
    assert counter.calls == engine.tracked_frames == min(75, inline.frames)
    # Inline tracking measures a few frames and interpolates the others (a still face).
    assert counter.mesh_runs < 0.5 * engine.tracked_frames
    # The two sets of landmarks differ by the mesh's jitter: the mouths by a few grey levels.
    frames_prep, frames_inline = decode(with_prep.path)[0], decode(inline.path)[0]
    assert np.abs(frames_prep.astype(int) - frames_inline).mean() < 0.5
    # Tracked the way a render tracks, the prep gives the render's frames bit for bit.
    same = prepare_avatar(smile_avatar, hooks=[engine], stride=TRACK_STRIDE)
    again = engine.render(smile_avatar, english_sentence, tmp_path / "c.mp4", prepared=same)
    assert np.array_equal(decode(again.path)[0], frames_inline)


def test_a_prep_made_by_other_models_or_for_another_size_is_not_used(
    tmp_path: Path,
    smile_avatar: Path,
    avatar: Path,
    english_sentence: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prep = prepare_avatar(smile_avatar)
    # Another mesh model: the file is refused when loaded, and such a prep is not used.
    other = AvatarPrep(prep.width, prep.height, prep.fps, prep.landmarks, prep.found,
                       models={**prep.models, "face_landmark.tflite": "0" * 64})  # fmt: skip
    other.save(tmp_path / "other.npz")
    with pytest.raises(StalePrep, match="prepare the avatar again"):
        AvatarPrep.load(tmp_path / "other.npz")
    stale = AvatarPrep.load(tmp_path / "other.npz", check=False)
    assert not stale.is_current()
    counter = CountingTracker(monkeypatch)
    engine = get_engine("warp")
    engine.render(smile_avatar, english_sentence, tmp_path / "a.mp4", prepared=stale)
    assert counter.calls > 0 and engine.tracked_frames > 0
    # The prep of a 288x288 avatar given for a 256x256 one: tracked instead.
    counter.calls = 0
    engine.render(avatar, english_sentence, tmp_path / "b.mp4", prepared=prep)
    assert counter.calls > 0
    # Not a prep at all.
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InferenceError, match="could not be read"):
        AvatarPrep.load(tmp_path / "junk.npz")


def test_engines_can_keep_their_own_data_in_a_prep(tmp_path: Path, smile_avatar: Path) -> None:
    class MouthWidths(WarpEngine):
        def extend_prep(self, prep: AvatarPrep, batch: FrameBatch) -> None:
            assert batch.landmarks is not None and batch.boxes is not None
            widths = [lm.mouth_width(p) for p in batch.landmarks]
            mine = prep.extra.setdefault(self.name, {"widths": np.zeros(0, np.float32)})
            mine["widths"] = np.concatenate([mine["widths"], np.float32(widths)])

    prep = MouthWidths().prepare_avatar(smile_avatar, out=tmp_path / "p.npz")
    assert prep.extra["warp"]["widths"].shape == (75,)
    loaded = AvatarPrep.load(tmp_path / "p.npz")
    assert np.array_equal(loaded.extra["warp"]["widths"], prep.extra["warp"]["widths"])
