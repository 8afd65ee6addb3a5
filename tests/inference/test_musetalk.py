"""The MuseTalk 1.5 engine end to end on the CPU, with tiny random weights in the release layout.

An untrained network paints noise, which is what these tests want: every pixel it may touch
changes, so the ones that must not change are easy to check.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import catalog
from inference.engines import MuseTalkEngine, RenderPlan, get_engine, list_engines
from inference.engines.musetalk import AvatarLatents, crop_boxes, lower_face_masks
from inference.engines.musetalk import engine as engine_module
from inference.engines.musetalk.blending import NOSE_Y
from inference.engines.musetalk.models import audio_windows, positional_encoding
from inference.engines.pipeline import FrameBatch
from inference.errors import EngineUnavailable, InferenceError
from inference.media import FrameReader, probe, yuv_planes
from tests.inference.conftest import FPS

# --------------------------------------------------------------------------- availability


def test_musetalk_is_refused_clearly_without_its_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, avatar: Path, speech: Path
) -> None:
    monkeypatch.delenv("MUSETALK_DIR", raising=False)
    for listing in (list_engines(), catalog.list_engines()):  # the engines and the torch-free list
        info = {e.name: e for e in listing}["musetalk"]
        assert not info.available
        assert "set MUSETALK_DIR to a folder holding musetalkV15/ (unet.pth" in info.reason
    with pytest.raises(EngineUnavailable, match="set MUSETALK_DIR"):
        get_engine("musetalk")
    with pytest.raises(EngineUnavailable, match="which is not a folder"):
        get_engine("musetalk", musetalk_dir=tmp_path / "nowhere")

    engine = get_engine("musetalk", require_available=False)
    with pytest.raises(EngineUnavailable, match="MUSETALK_DIR"):
        engine.render(avatar, speech, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_each_missing_piece_is_named(tmp_path: Path, musetalk_dir: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(musetalk_dir, folder)
    (folder / "musetalkV15" / "unet.pth").unlink()
    (folder / "sd-vae" / "diffusion_pytorch_model.bin").unlink()
    (folder / "whisper" / "preprocessor_config.json").unlink()
    info = {e.name: e for e in list_engines(musetalk_dir=folder)}["musetalk"]
    assert not info.available
    assert info.reason.startswith(f"the MuseTalk folder {folder} is missing ")
    assert "musetalkV15/unet.pth (the MuseTalk 1.5 UNet weights)" in info.reason
    assert (
        "sd-vae/diffusion_pytorch_model.safetensors or sd-vae/diffusion_pytorch_model.bin "
        "(the sd-vae-ft-mse VAE weights)" in info.reason
    )
    assert "whisper/preprocessor_config.json (the Whisper feature extractor" in info.reason
    for present in ("musetalk.json", "sd-vae/config.json", "whisper/config.json"):
        assert present not in info.reason
    assert get_engine("musetalk", musetalk_dir=musetalk_dir).info().available


# --------------------------------------------------------------------------- geometry and audio


def test_crop_boxes_follow_the_release_geometry() -> None:
    # A mesh box: forehead top at y=100, chin at y=300, cheeks at x=100..260.
    rects = crop_boxes(np.array([[100, 100, 160, 200], [-40, 5, 100, 200]]), 640, 360)
    x0, y0, x1, y1 = rects[0]
    assert (x0, x1) == (100, 260)  # cheek to cheek
    assert y1 == 308  # the chin plus 4 % of the face
    assert abs((y0 + 300) / 2 - (100 + NOSE_Y * 200)) <= 1  # the middle of the box is the nose
    assert (rects % 2 == 0).all()  # even: the chroma planes are half size
    assert rects[1].tolist()[:2] == [0, 0]  # clipped to the frame

    # With mesh points, the nose line is measured: 2/3 of the way down the bridge.
    points = np.zeros((1, 468, 2), np.float32)
    points[0, 168, 1], points[0, 1, 1] = 150, 180
    (lx0, ly0, lx1, ly1) = crop_boxes(np.array([[100, 100, 160, 200]]), 640, 360, points)[0]
    assert (lx0, lx1, ly1) == (100, 260, 308)
    assert abs((ly0 + 300) / 2 - 170) <= 1


def test_the_blend_mask_is_zero_above_the_nose_and_on_the_edges() -> None:
    luma, chroma = lower_face_masks(120, 96)
    assert luma.shape == (120, 96) and chroma.shape == (60, 48)
    for mask in (luma, chroma):
        h = mask.shape[0]
        assert not mask[: h // 2].any()  # the upper face is never touched
        assert not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
        assert mask.max() == pytest.approx(1.0)  # the mouth is fully redrawn
        assert 0 < (mask > 0).mean() < 0.4
    # Feathered: the falloff spans ~8 % of the crop, no step between neighbours comes near
    # the 1.0 of a hard edge.
    assert np.abs(np.diff(luma, axis=0)).max() < 0.2
    assert np.abs(np.diff(luma, axis=1)).max() < 0.2


def test_audio_windows_follow_the_release_indexing() -> None:
    layers, width, total = 3, 4, 20
    features = torch.arange(1, total + 1, dtype=torch.float32)[:, None, None].expand(
        total, layers, width
    )
    out = audio_windows(features, 25.0, np.array([0, 3, 9]))
    assert out.shape == (3, 10 * layers, width)
    raw = (out - positional_encoding(width, 10 * layers)).reshape(3, 10, layers, width)
    per_step = raw[:, :, 0, 0].round().int().tolist()
    # Frame i reads features 2i-4 .. 2i+5 (1-based values here); zeros outside the audio.
    assert per_step[0] == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert per_step[1] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert per_step[2] == [15, 16, 17, 18, 19, 20, 0, 0, 0, 0]


# --------------------------------------------------------------------------- rendering


@dataclass
class Recorded:
    """Per output frame: the Y plane and the U, V planes before and after, the avatar frame."""

    y_before: list[np.ndarray] = field(default_factory=list)
    y_after: list[np.ndarray] = field(default_factory=list)
    uv_before: list[np.ndarray] = field(default_factory=list)
    uv_after: list[np.ndarray] = field(default_factory=list)
    src: list[int] = field(default_factory=list)


class RecordingEngine(MuseTalkEngine):
    """The engine, keeping each frame as it was before and after :meth:`process`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.recorded = Recorded()

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        before = batch.frames.copy()
        super().process(plan, batch)
        y0, u0, v0 = yuv_planes(before, batch.width, batch.height)
        y1, u1, v1 = yuv_planes(batch.frames, batch.width, batch.height)
        rec = self.recorded
        for k in range(len(batch)):
            rec.y_before.append(y0[k].copy())
            rec.y_after.append(y1[k].copy())
            rec.uv_before.append(np.stack([u0[k], v0[k]]))
            rec.uv_after.append(np.stack([u1[k], v1[k]]))
            rec.src.append(int(batch.src_index[k]))


@dataclass
class Render:
    engine: RecordingEngine
    out: Path
    frames: int
    progress: list[tuple[int, int]]


@pytest.fixture(scope="module")
def render(
    tmp_path_factory: pytest.TempPathFactory, musetalk_dir: Path, avatar: Path, speech: Path
) -> Render:
    """One render of the 2 s avatar to speech, with every frame recorded around ``process``."""
    engine = RecordingEngine(musetalk_dir=musetalk_dir)
    out = tmp_path_factory.mktemp("musetalk_out") / "talk.mp4"
    calls: list[tuple[int, int]] = []
    result = engine.render(
        avatar, speech, out, lambda d, t: calls.append((d, t)), device="cpu", batch_size=8
    )
    assert result.engine == "musetalk" and result.device == "cpu"
    return Render(engine, out, result.frames, calls)


def decode_luma(path: Path) -> np.ndarray:
    with FrameReader(path) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(16)])
        return yuv_planes(frames, reader.width, reader.height)[0]


def test_musetalk_renders_an_mp4_as_long_as_the_audio(render: Render, speech: Path) -> None:
    info = probe(render.out)
    audio_seconds = probe(speech).duration
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.audio_codec, info.width, info.height) == (
        "h264",
        "aac",
        256,
        256,
    )
    assert abs(info.duration - audio_seconds) <= 1 / FPS
    assert render.frames == math.ceil(audio_seconds * FPS - 1e-6)
    assert len(decode_luma(render.out)) == render.frames
    assert render.progress[0] == (0, render.frames)
    assert render.progress[-1] == (render.frames, render.frames)


def test_only_the_lower_face_changes_without_a_seam(render: Render) -> None:
    rec, cache = render.engine.recorded, render.engine.avatar_latents
    assert cache is not None and len(rec.src) == render.frames
    for k in range(render.frames):
        x0, y0, x1, y1 = (int(c) for c in cache.get(rec.src[k])[0])
        nose = (y0 + y1) // 2
        luma = rec.y_after[k].astype(int) - rec.y_before[k]
        chroma = rec.uv_after[k].astype(int) - rec.uv_before[k]

        # Bit-identical outside the crop and anywhere above the nose, on every plane.
        outside = np.ones(luma.shape, bool)
        outside[y0:y1, x0:x1] = False
        assert not luma[outside].any()
        assert not luma[:nose].any()
        assert not chroma[:, : nose // 2].any()
        outside_c = np.ones(chroma.shape[1:], bool)
        outside_c[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = False
        assert not chroma[:, outside_c].any()

        # The mouth is redrawn...
        h, w = y1 - y0, x1 - x0
        mouth = luma[
            y0 + int(0.65 * h) : y0 + int(0.85 * h), x0 + int(0.35 * w) : x0 + int(0.65 * w)
        ]
        assert np.abs(mouth).mean() > 5

        # ...and fades out before the crop's edges: a 2 px band inside them is untouched, so
        # the image's gradient across each edge is the source's (no rectangular seam), while
        # inside the face it is not.
        band = np.zeros(luma.shape, bool)
        band[y0:y1, x0:x1] = True
        band[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = False
        assert not luma[band].any()
        before = rec.y_before[k].astype(float)
        after = rec.y_after[k].astype(float)
        grad_change = np.abs(np.abs(np.diff(after, axis=0)) - np.abs(np.diff(before, axis=0)))
        edges = np.concatenate(
            [grad_change[y1 - 2 : y1 + 1, x0:x1].ravel(), grad_change[y0:y1, [x0, x1 - 1]].ravel()]
        )
        assert edges.max() == 0
        assert grad_change[y0 + int(0.6 * h) : y0 + int(0.9 * h), x0:x1].mean() > 1


def test_the_encoded_output_keeps_the_upper_face(render: Render, avatar: Path) -> None:
    rec, cache = render.engine.recorded, render.engine.avatar_latents
    assert cache is not None
    source = decode_luma(avatar).astype(int)
    rendered = decode_luma(render.out).astype(int)
    x0, y0, x1, y1 = (int(c) for c in cache.get(rec.src[0])[0])
    nose = (y0 + y1) // 2
    h = y1 - y0
    for k in range(0, render.frames, 5):
        src = rec.src[k]
        assert np.abs(rendered[k, : nose - 4] - source[src, : nose - 4]).mean() < 1.5
        mouth = (slice(y0 + int(0.65 * h), y0 + int(0.85 * h)), slice(x0 + 10, x1 - 10))
        assert np.abs(rendered[k][mouth] - source[src][mouth]).mean() > 4


def test_avatar_latents_are_kept_stored_and_reused(
    render: Render,
    tmp_path: Path,
    musetalk_dir: Path,
    avatar: Path,
    speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = render.engine.avatar_latents
    assert first is not None
    assert first.frames() == sorted(set(render.engine.recorded.src))  # each frame encoded once
    stored = tmp_path / "avatar.latents.npz"
    first.save(stored)
    loaded = AvatarLatents.load(stored)
    assert loaded.frames() == first.frames()
    assert loaded.matches((256, 256), first.vae_key) and not loaded.matches((128, 128), "x")

    encoded: list[int] = []
    real_encode = engine_module.encode_faces

    def counting_encode(models, faces, src_indices):  # type: ignore[no-untyped-def]
        encoded.extend(int(s) for s in src_indices)
        return real_encode(models, faces, src_indices)

    monkeypatch.setattr(engine_module, "encode_faces", counting_encode)
    again = RecordingEngine(musetalk_dir=musetalk_dir, avatar_latents=loaded)
    again.render(avatar, speech, tmp_path / "again.mp4", device="cpu", batch_size=8)
    assert encoded == []  # no VAE encoding: the stored latents served every frame
    for a, b in zip(again.recorded.y_after, render.engine.recorded.y_after, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(again.recorded.uv_after, render.engine.recorded.uv_after, strict=True):
        assert np.array_equal(a, b)

    junk = tmp_path / "junk.latents"
    torch.save({"format": "something else"}, junk)  # a pickle: never unpickled
    with pytest.raises(InferenceError, match="could not be read"):
        AvatarLatents.load(junk)


def test_a_prepared_avatar_carries_the_latents(
    render: Render,
    tmp_path: Path,
    musetalk_dir: Path,
    avatar: Path,
    speech: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the prepared-avatar hook of the render pipeline (``Engine.prepare_avatar``), the
    latents go into the prep file and a render given it encodes nothing."""
    prepare = pytest.importorskip("inference.engines.prepare")
    engine = RecordingEngine(musetalk_dir=musetalk_dir)
    if not hasattr(engine, "prepare_avatar"):
        pytest.skip("the render pipeline has no prepared avatars")
    # Tracked as the render without a prep tracks it (a prep measures every frame by
    # default), so that the two renders can be compared bit for bit.
    prep = prepare.prepare_avatar(
        avatar,
        hooks=[engine],
        batch_size=engine.default_batch_size,
        out=tmp_path / "avatar.prep.npz",
        stride=prepare.TRACK_STRIDE,
    )
    assert prep.extra["musetalk"]["frames"].tolist() == list(range(prep.frame_count))
    loaded = prepare.AvatarPrep.load(tmp_path / "avatar.prep.npz")
    assert loaded.extra["musetalk"]["latents"].shape == (prep.frame_count, 8, 32, 32)

    encoded: list[int] = []
    real_encode = engine_module.encode_faces
    monkeypatch.setattr(
        engine_module,
        "encode_faces",
        lambda models, faces, src: encoded.extend(src.tolist()) or real_encode(models, faces, src),
    )
    again = RecordingEngine(musetalk_dir=musetalk_dir)
    again.render(avatar, speech, tmp_path / "prepared.mp4", device="cpu", prepared=loaded)
    assert encoded == []
    for a, b in zip(again.recorded.y_after, render.engine.recorded.y_after, strict=True):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- bad weights


def test_unsafe_or_mismatched_weights_are_refused(
    tmp_path: Path, musetalk_dir: Path, avatar: Path, speech: Path
) -> None:
    folder = tmp_path / "models"
    shutil.copytree(musetalk_dir, folder)
    unet = folder / "musetalkV15" / "unet.pth"
    good = unet.read_bytes()

    # weights_only: a pickle carrying anything but tensors and plain data is not unpickled.
    torch.save({"conv_in.weight": torch.zeros(1), "payload": Fraction(1, 3)}, unet)
    engine = get_engine("musetalk", musetalk_dir=folder)
    with pytest.raises(
        EngineUnavailable, match=r"unet.pth could not be read.*pickled objects besides tensors"
    ):
        engine.render(avatar, speech, tmp_path / "a.mp4", device="cpu")

    torch.save({"conv_in.weight": torch.zeros(3)}, unet)
    with pytest.raises(EngineUnavailable, match="does not match the UNet described"):
        engine.render(avatar, speech, tmp_path / "b.mp4", device="cpu")

    unet.write_bytes(good)
    vae = folder / "sd-vae" / "diffusion_pytorch_model.bin"
    good_vae = vae.read_bytes()
    torch.save({"payload": Fraction(1, 3)}, vae)
    with pytest.raises(
        EngineUnavailable,
        match=r"The VAE in sd-vae/ could not be loaded \(it holds pickled objects",
    ):
        engine.render(avatar, speech, tmp_path / "c.mp4", device="cpu")

    vae.write_bytes(good_vae)
    torch.save({"payload": Fraction(1, 3)}, folder / "whisper" / "pytorch_model.bin")
    with pytest.raises(
        EngineUnavailable,
        match=r"Whisper in whisper/ could not be loaded \(it holds pickled objects",
    ):
        engine.render(avatar, speech, tmp_path / "d.mp4", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
