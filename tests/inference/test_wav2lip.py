"""Wav2Lip placed by the face mesh: the crop box, its 5-frame smoothing, the feathered paste.

The generator has random weights (it paints a flat grey face), which is all these tests need:
where the crop is, how it moves, and how the prediction goes back into the frame.
"""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from inference.engines import get_engine
from inference.engines.pipeline import FrameBatch
from inference.engines.prepare import TRACK_STRIDE, AvatarPrep, prepare_avatar
from inference.engines.wav2lip import (
    CropTrack,
    Wav2Lip,
    Wav2LipEngine,
    face_boxes,
    lower_face_mask,
    release_state_dict,
    smooth_boxes,
)
from inference.engines.wav2lip.blending import chroma_alpha
from inference.engines.wav2lip.crops import CHIN_PAD, EYEBROWS_TOP, even_rects
from inference.face import find_face_rgb
from inference.face import landmarks as lm
from inference.media import FrameReader, probe, yuv_planes
from tests.inference.conftest import FPS, MOVING_HEAD_AT, vowel, write_wav


@pytest.fixture(scope="session")
def random_wav2lip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised generator saved in the release's format."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w2l_weights") / "wav2lip_random.pth"
    torch.save(release_state_dict(Wav2Lip()), path)
    return path


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's astronaut (512 x 512 RGB) and its 468 mesh points ``(468, 2)``."""
    rgb = data.astronaut()
    face = find_face_rgb(rgb)
    assert face is not None
    return rgb, face.points[:, :2].astype(np.float32)


def plan_for(width: int, height: int, prepared: AvatarPrep | None = None) -> types.SimpleNamespace:
    """What ``Wav2LipEngine.prepare`` / ``process`` read of a render plan (1 s of a vowel)."""
    return types.SimpleNamespace(
        device=torch.device("cpu"),
        width=width,
        height=height,
        fps_value=float(FPS),
        samples=vowel(1.0).astype(np.float32),
        prepared=prepared,
    )


def still_batch(rgb: np.ndarray, points: np.ndarray, n: int = 1) -> FrameBatch:
    """``n`` yuv420p copies of ``rgb`` as one batch, with their landmarks."""
    h, w = rgb.shape[:2]
    frame = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(1, -1)
    batch = FrameBatch(np.repeat(frame, n, axis=0), np.arange(n), np.arange(n), w, h)
    batch.landmarks = np.repeat(points[None], n, axis=0)
    return batch


def jittered(points: np.ndarray, n: int, seed: int = 3) -> np.ndarray:
    """``n`` frames of ``points`` shaken: a few px of shift and a few % of scale per frame."""
    rng = np.random.default_rng(seed)
    centre = points.mean(axis=0)
    shift = rng.normal(0, 4, (n, 1, 2))
    scale = 1 + rng.normal(0, 0.03, (n, 1, 1))
    return ((points[None] - centre) * scale + centre + shift).astype(np.float32)


def centred_mean(raw: np.ndarray, i: int, last: int) -> np.ndarray:
    """The mean of boxes ``i - 2 .. i + 2``, indices clamped to ``0 .. last``."""
    return np.mean([raw[min(max(j, 0), last)] for j in range(i - 2, i + 3)], axis=0)


# --------------------------------------------------------------------------- the crop


def test_crop_spans_forehead_to_below_the_chin(astronaut) -> None:
    _, p = astronaut
    x0, top, x1, bottom = face_boxes(p[None])[0]
    forehead, chin = p[lm.FOREHEAD_TOP, 1], p[lm.CHIN, 1]
    brows = p[list(EYEBROWS_TOP), 1].min()
    # Top: on the forehead, a quarter of the way from the eyebrows up to landmark 10 (where a
    # detector box starts: BlazeFace's top is at 80.9 on this picture).
    assert forehead < top < brows
    assert top == pytest.approx(brows - 0.25 * (p[list(EYEBROWS_TOP), 1].mean() - forehead), abs=1)
    assert top == pytest.approx(80.9, abs=1.5)
    # Bottom: the original's 10 px pad below the chin, scaled to the box.
    assert bottom == pytest.approx(chin + CHIN_PAD * (chin - top), abs=1e-3)
    assert bottom - chin > 3
    # Sides: cheek to cheek on the face oval.
    oval = p[list(lm.FACE_OVAL)]
    assert (x0, x1) == (pytest.approx(oval[:, 0].min()), pytest.approx(oval[:, 0].max()))
    # The model's masked lower half starts mid-crop: on the nose (bridge 168 .. base 2).
    assert p[lm.NOSE_BRIDGE, 1] < (top + bottom) / 2 < p[lm.NOSE_BASE, 1]


def test_crop_follows_a_tilted_head(astronaut) -> None:
    """A rolled face gets the bounding box of its rolled outline, chin and forehead included."""
    _, p = astronaut
    centre = p.mean(axis=0)
    turn = np.deg2rad(20)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    q = ((p - centre) @ rot.T + centre).astype(np.float32)
    x0, top, x1, bottom = face_boxes(q[None])[0]
    oval = q[list(lm.FACE_OVAL)]
    assert x0 == pytest.approx(oval[:, 0].min()) and x1 == pytest.approx(oval[:, 0].max())
    # Above the higher eyebrow (on a rolled head its outer end may rise past landmark 10), but
    # within the mesh's own box.
    assert q[:, 1].min() - 2 < top < q[list(EYEBROWS_TOP), 1].min()
    assert bottom > oval[:, 1].max()


def test_crops_are_a_centred_five_frame_mean(astronaut) -> None:
    _, p = astronaut
    n = 21
    seq = jittered(p, n)
    raw = face_boxes(seq)
    expected = np.array([centred_mean(raw, i, n - 1) for i in range(n)])
    assert np.allclose(smooth_boxes(raw), expected)
    assert np.allclose(CropTrack(seq).boxes(np.arange(n)), expected)
    # The jitter is averaged down (the original's reason to smooth).
    assert np.diff(expected, axis=0).std() < 0.6 * np.diff(raw, axis=0).std()

    # Learnt from batches of 8 in order: each window is complete except that the last two
    # frames of a batch clamp at the newest frame; frames seen again get the full window.
    track = CropTrack()
    for start in range(0, n, 8):
        src = np.arange(start, min(start + 8, n))
        track.observe(src, seq[src])
        known = src[-1]
        got = track.boxes(src)
        assert np.allclose(got, [centred_mean(raw, i, known) for i in src])
        full = src[src <= known - 2] if known < n - 1 else src
        assert np.allclose(got[: len(full)], expected[full])
    back = np.arange(n - 2, -1, -1)  # the ping-pong's backward pass
    assert np.allclose(track.boxes(back), expected[back])


def test_smoothing_stops_at_a_cut(astronaut) -> None:
    """The head drifts 3 px a frame, then a cut puts it elsewhere (as in ``moving_face_video``):
    no crop is averaged across the cut; each side is clamped there like a clip end."""
    _, p = astronaut
    at = np.array(MOVING_HEAD_AT, dtype=np.float32)
    seq = p[None] + (at - at[0])[:, None, :]
    raw = face_boxes(seq)
    got = smooth_boxes(raw)
    cut = 30
    for i in range(len(raw)):
        first, last = (0, cut - 1) if i < cut else (cut, len(raw) - 1)
        window = [raw[min(max(j, first), last)] for j in range(i - 2, i + 3)]
        assert np.allclose(got[i], np.mean(window, axis=0))
    # A steady drift is followed exactly, away from the cut too: a centred mean has no lag.
    assert np.allclose(got[2 : cut - 2], raw[2 : cut - 2])
    assert np.allclose(CropTrack(seq).boxes(np.arange(len(raw))), got)


def test_engine_crops_match_the_smoothed_boxes_across_batches(
    astronaut, random_wav2lip: Path
) -> None:
    """The engine's crops, with a prepared avatar and without, batch after batch, then
    replayed backwards: the same rectangles for the same source frames."""
    _, p = astronaut
    n, size = 20, 512
    seq = jittered(p, n, seed=11)
    want = even_rects(smooth_boxes(face_boxes(seq)), size, size)
    prep = AvatarPrep(size, size, str(FPS), seq, np.ones(n, bool))
    order = np.concatenate([np.arange(n), np.arange(n - 2, 5, -1)])  # forward, then backward
    for prepared in (prep, None):
        engine = Wav2LipEngine(checkpoint=random_wav2lip)
        plan = plan_for(size, size, prepared)
        engine.prepare(plan)
        got = np.zeros((len(order), 4), np.int64)
        for start in range(0, len(order), 6):
            src = order[start : start + 6]
            out = np.arange(start, start + len(src))
            batch = FrameBatch(np.zeros((len(src), 1), np.uint8), out, src, size, size)
            batch.landmarks = seq[src]
            got[start : start + len(src)] = engine.crop_rects(plan, batch)
        same = np.all(got == want[order], axis=1)
        if prepared is not None:
            assert same.all()
        else:
            # Only forward-pass frames at a batch's end (5, 11, 17 and the frame before) may
            # differ, by the clamped window; every replayed frame has the full one.
            assert same[n:].all()
            assert set(np.flatnonzero(~same)) <= {4, 5, 10, 11, 16, 17}


# --------------------------------------------------------------------------- the paste


def above_the_nose(p: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(height, width)`` bool: pixels above the line through the nose base (landmark 2)
    across the face (perpendicular to landmark 10 -> 152)."""
    down = p[lm.CHIN] - p[lm.FOREHEAD_TOP]
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    nose = p[lm.NOSE_BASE]
    return (cols - nose[0]) * down[0] + (rows - nose[1]) * down[1] < 0


def across(y: np.ndarray, rect: np.ndarray, k: int) -> float:
    """Mean |step| of ``y`` across the line ``k`` px inside (k > 0), on (0) or outside (k < 0)
    the rectangle's four edges."""
    x0, y0, x1, y1 = (int(c) for c in rect)
    img = y.astype(np.float64)
    rows, cols = slice(y0, y1), slice(x0, x1)
    steps = [
        np.abs(img[rows, x0 + k] - img[rows, x0 + k - 1]),
        np.abs(img[rows, x1 - 1 - k] - img[rows, x1 - k]),
        np.abs(img[y0 + k, cols] - img[y0 + k - 1, cols]),
        np.abs(img[y1 - 1 - k, cols] - img[y1 - k, cols]),
    ]
    return float(np.concatenate(steps).mean())


@pytest.fixture(scope="module")
def pasted(astronaut, random_wav2lip: Path) -> dict[str, np.ndarray]:
    """The astronaut through the engine once: source and output planes, the crop rectangle,
    the mask, and the same prediction pasted hard (the original's ``f[y1:y2, x1:x2] = p``)."""
    rgb, p = astronaut
    h, w = rgb.shape[:2]
    engine = Wav2LipEngine(checkpoint=random_wav2lip)
    plan = plan_for(w, h)
    engine.prepare(plan)
    source = still_batch(rgb, p)
    src_y, src_u, src_v = (plane[0].copy() for plane in source.planes())
    rows, rects, faces = engine.predict(plan, still_batch(rgb, p))
    assert list(rows) == [0]
    x0, y0, x1, y1 = (int(c) for c in rects[0])
    patch = cv2.resize(faces[0], (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    hard = src_y.copy()
    hard[y0:y1, x0:x1] = cv2.cvtColor(patch, cv2.COLOR_BGR2YUV_I420)[: y1 - y0]
    batch = still_batch(rgb, p)
    engine.process(plan, batch)
    out_y, out_u, out_v = (plane[0] for plane in batch.planes())
    return {
        "src": src_y,
        "src_u": src_u,
        "src_v": src_v,
        "out": out_y,
        "out_u": out_u,
        "out_v": out_v,
        "hard": hard,
        "rect": rects[0],
        "alpha": lower_face_mask(p, rects[0]),
        "points": p,
    }


def test_paste_has_no_seam(pasted) -> None:
    rect, out, hard, src = pasted["rect"], pasted["out"], pasted["hard"], pasted["src"]
    x0, y0, x1, y1 = (int(c) for c in rect)
    assert np.abs(out.astype(int) - src)[y0:y1, x0:x1].mean() > 5  # the face did change
    blend = [across(out, rect, k) for k in (-5, -4, -3, -2, 0, 2, 3, 4, 5)]
    border, around = blend[4], blend[:4] + blend[5:]
    assert border <= max(np.mean(blend[:4]), np.mean(blend[5:]))
    assert border <= 1.05 * np.mean(around)
    # The same prediction pasted hard steps at the rectangle's edge.
    step = [across(hard, rect, k) for k in (-5, -4, -3, -2, 0, 2, 3, 4, 5)]
    assert step[4] > 2.5 * max(np.mean(step[:4]), np.mean(step[5:]))
    # And inside the rectangle the change fades in: where the mask starts (alpha <= 0.1) the
    # output is within a tenth of the full change of the source.
    alpha = pasted["alpha"]
    change = np.abs(out[y0:y1, x0:x1].astype(int) - src[y0:y1, x0:x1])
    full = np.abs(hard[y0:y1, x0:x1].astype(int) - src[y0:y1, x0:x1])
    rim = (alpha > 0) & (alpha <= 0.1)
    assert rim.sum() > 50
    assert change[rim].mean() <= 0.1 * full[rim].mean() + 1


def test_only_the_lower_face_changes(pasted) -> None:
    rect, alpha, p = pasted["rect"], pasted["alpha"], pasted["points"]
    x0, y0, x1, y1 = (int(c) for c in rect)
    out, src = pasted["out"], pasted["src"]
    # Outside the mask (and outside the crop) every luma pixel is the input's, bit for bit.
    untouched = np.ones(out.shape, bool)
    untouched[y0:y1, x0:x1] = alpha == 0
    assert np.array_equal(out[untouched], src[untouched])
    assert not np.array_equal(out[~untouched], src[~untouched])
    # So is every chroma sample whose four luma pixels are all outside it.
    still = np.ones(pasted["out_u"].shape, bool)
    still[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = chroma_alpha(alpha) == 0
    for plane in ("u", "v"):
        assert np.array_equal(pasted[f"out_{plane}"][still], pasted[f"src_{plane}"][still])
    # Above the nose base (the line across the face there) nothing changes at all, Y, U or V.
    above = above_the_nose(p, *out.shape)
    assert above[: int(p[lm.NOSE_BASE, 1]) - 4, x0:x1].all()  # (the face leans 3 degrees)
    assert np.array_equal(out[above], src[above])
    for plane in ("u", "v"):
        assert np.array_equal(
            pasted[f"out_{plane}"][above[::2, ::2]], pasted[f"src_{plane}"][above[::2, ::2]]
        )
    # The mask: zero on the crop's outermost pixels, full over the mouth.
    assert not alpha[[0, -1]].any() and not alpha[:, [0, -1]].any()
    for point in (lm.INNER_UPPER_LIP_MID, lm.INNER_LOWER_LIP_MID, lm.MOUTH_LEFT, lm.MOUTH_RIGHT):
        col, row = (p[point] - (x0, y0)).astype(int)
        assert alpha[row, col] == pytest.approx(1.0)


# --------------------------------------------------------------------------- end to end


def decode_luma(path: Path) -> np.ndarray:
    """All frames' Y planes ``(n, h, w)`` uint8."""
    with FrameReader(path) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(16)])
        return yuv_planes(frames, reader.width, reader.height)[0]


def test_renders_a_moving_face(
    tmp_path: Path, moving_face_video: Path, random_wav2lip: Path
) -> None:
    """A real clip (the head drifts 3 px a frame) through the whole pipeline, losslessly
    encoded so frames compare bit for bit: with a prepared avatar (as the job runner renders)
    and with the face tracked during the render."""
    # 12 frames (the model is slow on CPU): three whole batches of 4. The avatar is prepared
    # in batches of the render's size and tracked as a render without a prep tracks it (every
    # few frames, counting back from each batch's last one), so both paths have the same
    # landmarks.
    audio = write_wav(tmp_path / "vowel.wav", vowel(0.48))
    engine = get_engine("wav2lip", checkpoint=random_wav2lip)
    prep = prepare_avatar(moving_face_video, hooks=[engine], batch_size=4, stride=TRACK_STRIDE)
    source = decode_luma(moving_face_video)
    outputs = {}
    for name, prepared in (("prepared", prep), ("tracked", None)):
        out = tmp_path / f"{name}.mp4"
        result = engine.render(
            moving_face_video, audio, out, batch_size=4, prepared=prepared, crf=0
        )
        info = probe(out)
        assert info.has_video and info.has_audio and result.frames == 12
        assert abs(info.duration - probe(audio).duration) <= 1 / FPS
        outputs[name] = decode_luma(out)
    h, w = source.shape[1:]
    for rendered in outputs.values():
        for i, frame in enumerate(rendered):
            p = prep.landmarks[i]
            changed = frame != source[i]
            assert not changed[above_the_nose(p, h, w)].any()
            x0, y0, x1, y1 = face_boxes(p[None])[0]
            near = np.zeros((h, w), bool)
            near[int(y0) - 8 : int(y1) + 8, int(x0) - 8 : int(x1) + 8] = True
            assert not changed[~near].any()
            mouth = (slice(int(p[lm.INNER_UPPER_LIP_MID, 1]) - 3, int(p[lm.CHIN, 1]) - 5),
                     slice(int(p[lm.MOUTH_RIGHT, 0]), int(p[lm.MOUTH_LEFT, 0])))  # fmt: skip
            assert np.abs(frame.astype(int) - source[i])[mouth].mean() > 10  # the grey face
    # Both paths crop alike; they differ only where the tracked render could not see two
    # frames ahead yet (the last two of each batch of 4: frames 2, 3, 6, 7, 10, 11).
    same = [np.array_equal(a, b) for a, b in zip(*outputs.values(), strict=True)]
    assert all(same[i] for i in (0, 1, 4, 5, 8, 9))
    assert np.abs(outputs["prepared"].astype(int) - outputs["tracked"]).mean() < 0.5
