"""Engines end to end: registry, warp (mouth moves, the rest stays), ping-pong, cancel, wav2lip."""

from __future__ import annotations

import hashlib
import itertools
import math
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inference.device import pick_device
from inference.engines import (
    EngineInfo,
    WarpEngine,
    Wav2LipEngine,
    get_engine,
    list_engines,
    pingpong_indices,
)
from inference.engines.wav2lip import Wav2Lip, release_state_dict
from inference.errors import (
    EngineUnavailable,
    InferenceError,
    MediaError,
    NoFaceError,
    RenderCanceled,
)
from inference.face import Box, FaceDetector, find_face_rgb, landmarks
from inference.media import FrameReader, probe, yuv_planes
from tests.inference.conftest import FPS, SAMPLE_RATE, vowel, write_wav


def decode_luma(path: Path) -> np.ndarray:
    """All frames' Y planes, ``(n, h, w)`` uint8."""
    with FrameReader(path) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(16)])
        return yuv_planes(frames, reader.width, reader.height)[0]


def assert_no_leftovers(folder: Path, *keep: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)


# --------------------------------------------------------------------------- registry


def test_registry_lists_engines_with_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAV2LIP_CHECKPOINT", raising=False)
    engines = {e.name: e for e in list_engines()}
    assert next(iter(engines)) == "warp"  # the default comes first
    assert engines["warp"] == EngineInfo("warp", WarpEngine.label, True, "", WarpEngine.description)
    wav2lip = engines["wav2lip"]
    assert not wav2lip.available
    assert "set WAV2LIP_CHECKPOINT to the path of wav2lip.pth / wav2lip_gan.pth" in wav2lip.reason


def test_wav2lip_is_refused_clearly_without_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, avatar: Path, speech: Path
) -> None:
    monkeypatch.delenv("WAV2LIP_CHECKPOINT", raising=False)
    with pytest.raises(EngineUnavailable, match="set WAV2LIP_CHECKPOINT"):
        get_engine("wav2lip")
    missing = tmp_path / "nowhere" / "wav2lip.pth"
    with pytest.raises(EngineUnavailable, match="does not exist"):
        get_engine("wav2lip", checkpoint=missing)
    engine = get_engine("wav2lip", require_available=False)
    with pytest.raises(EngineUnavailable, match="WAV2LIP_CHECKPOINT"):
        engine.render(avatar, speech, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_unknown_engine() -> None:
    with pytest.raises(EngineUnavailable, match=r"Unknown engine 'magic'.*warp"):
        get_engine("magic")


def test_pick_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("INFERENCE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(InferenceError, match="Unknown inference device"):
        pick_device("quantum")
    if not torch.cuda.is_available():
        with pytest.raises(InferenceError, match="CUDA is not available"):
            pick_device("cuda:0")


def test_pingpong_indices() -> None:
    assert pingpong_indices(np.arange(10), 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert pingpong_indices(np.arange(4), 1).tolist() == [0, 0, 0, 0]
    assert pingpong_indices(np.arange(5), 2).tolist() == [0, 1, 0, 1, 0]
    assert pingpong_indices([3], 10).tolist() == [3]


# --------------------------------------------------------------------------- warp


def test_warp_renders_speech_end_to_end(tmp_path: Path, avatar: Path, speech: Path) -> None:
    out = tmp_path / "out" / "result.mp4"
    calls: list[tuple[int, int]] = []
    result = get_engine("warp").render(avatar, speech, out, lambda d, t: calls.append((d, t)))

    info = probe(out)
    audio_seconds = probe(speech).duration
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(info.duration - audio_seconds) <= 1 / FPS
    assert (info.width, info.height) == (256, 256)

    assert result.path == out
    assert result.frames == round(audio_seconds * FPS + 0.499)
    assert (result.width, result.height, result.fps) == (256, 256, 25.0)
    assert result.duration == pytest.approx(info.duration)
    data = out.read_bytes()
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.crc32 == zlib.crc32(data)
    assert (result.engine, result.device) == ("warp", "cpu")

    assert calls[0] == (0, result.frames) and calls[-1] == (result.frames, result.frames)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    assert_no_leftovers(out.parent, "result.mp4")


def test_warp_moves_only_the_mouth(tmp_path: Path, avatar: Path, silence_then_vowel: Path) -> None:
    out = tmp_path / "mouth.mp4"
    get_engine("warp").render(avatar, silence_then_vowel, out, batch_size=8)
    source = decode_luma(avatar).astype(int)
    rendered = decode_luma(out).astype(int)
    assert len(rendered) == 55  # 2.2 s of audio at 25 fps (the 2 s avatar plays back)

    face = find_face_rgb(cv2.cvtColor(source[0].astype(np.uint8), cv2.COLOR_GRAY2RGB))
    assert face is not None
    box = Box.of(face)
    p = face.xy
    # The mouth, from its landmarks: corner to corner, nose base to chin.
    x0, x1 = int(p[landmarks.MOUTH_RIGHT, 0]), int(np.ceil(p[landmarks.MOUTH_LEFT, 0]))
    y0, y1 = int(p[landmarks.NOSE_BASE, 1]), int(np.ceil(p[landmarks.CHIN, 1]))
    mouth = (slice(y0, y1), slice(x0, x1))
    outside = np.ones(source[0].shape, bool)
    outside[
        int(box.y - 0.3 * box.h) : int(box.y + 1.6 * box.h),
        int(box.x - 0.3 * box.w) : int(box.x + 1.3 * box.w),
    ] = False

    silent, loud = 10, 40  # 0.4 s into the silence, 0.6 s into the vowel
    # In silence the output is the input (up to the encoder's noise), everywhere.
    assert np.abs(rendered[silent] - source[silent]).mean() < 1.5
    # While the vowel sounds the mouth region changes clearly...
    change = np.abs(rendered[loud] - rendered[silent])
    assert change[mouth].mean() > 4.0
    assert change[mouth].max() > 40
    # ...and the rest of the frame does not.
    assert change[outside].mean() < 1.0
    assert np.percentile(change[outside], 99) <= 6
    assert np.abs(rendered[loud] - source[loud])[outside].mean() < 1.5


def test_warp_handles_odd_frame_sizes(tmp_path: Path, odd_avatar: Path, speech: Path) -> None:
    result = get_engine("warp").render(odd_avatar, speech, tmp_path / "odd.mp4")
    info = probe(result.path)
    assert (info.width, info.height) == (254, 256)
    assert abs(info.duration - probe(speech).duration) <= 1 / FPS


@pytest.mark.parametrize(("mode", "seconds"), [("ring", 1.4), ("memory", 3.3), ("file", 3.3)])
def test_avatar_plays_forward_and_backward(
    mode: str, seconds: float, tmp_path: Path, counter_avatar: Path
) -> None:
    """The corner of each output frame carries the avatar frame number it came from."""
    pattern = [vowel(0.3) if i % 2 == 0 else np.zeros(SAMPLE_RATE // 4) for i in range(14)]
    audio = write_wav(tmp_path / "audio.wav", np.concatenate(pattern)[: int(seconds * SAMPLE_RATE)])
    engine = get_engine("warp")
    if mode == "file":
        engine.store_memory_limit = 1  # spill the kept frames to a temp file at once
    out_dir = tmp_path / "out"
    result = engine.render(counter_avatar, audio, out_dir / "pp.mp4", batch_size=4)
    expected_frames = math.ceil(seconds * FPS - 1e-9)
    assert result.frames == expected_frames
    corner = decode_luma(result.path)[:, 4:12, 4:12].mean(axis=(1, 2))
    shown = np.round((corner - 16) / 4).astype(int)
    expected = pingpong_indices(np.arange(expected_frames), 25)
    assert np.abs(shown - expected).max() <= 1
    assert (shown == expected).mean() > 0.9
    assert_no_leftovers(out_dir, "pp.mp4")


def test_every_batch_carries_landmarks_and_boxes(
    tmp_path: Path, counter_avatar: Path, long_audio: Path
) -> None:
    """Each avatar frame is tracked once, as decoded; the frames the ping-pong plays again get
    the same landmarks; the boxes engines crop with are the landmarks' bounding boxes."""
    seen: list[tuple[np.ndarray, np.ndarray, bool]] = []

    class Recording(WarpEngine):
        def process(self, plan, batch) -> None:
            assert batch.landmarks is not None and batch.boxes is not None
            assert batch.landmarks.shape == (len(batch), 468, 2)
            assert batch.landmarks.dtype == np.float32
            xy = batch.landmarks
            assert np.allclose(batch.boxes[:, :2], xy.min(axis=1))
            assert np.allclose(batch.boxes[:, 2:], xy.max(axis=1) - xy.min(axis=1))
            seen.append((batch.src_index.copy(), xy.copy(), batch.from_decoder))
            super().process(plan, batch)

    engine = Recording()
    engine.render(counter_avatar, long_audio, tmp_path / "x.mp4", batch_size=4)
    assert engine.tracked_frames == 25
    assert any(not from_decoder for *_, from_decoder in seen)
    by_frame: dict[int, list[np.ndarray]] = {}
    for src, points, _ in seen:
        for s, p in zip(src, points, strict=True):
            by_frame.setdefault(int(s), []).append(p)
    assert sorted(by_frame) == list(range(25))
    assert all(np.array_equal(ps[0], p) for ps in by_frame.values() for p in ps)


def test_cancel_leaves_no_file(tmp_path: Path, avatar: Path, speech: Path) -> None:
    asked: list[int] = []

    def should_cancel() -> bool:
        asked.append(1)
        return len(asked) >= 3

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(RenderCanceled):
        get_engine("warp").render(
            avatar, speech, out_dir / "x.mp4", batch_size=4, should_cancel=should_cancel
        )
    assert len(asked) == 3
    assert_no_leftovers(out_dir)

    with pytest.raises(RenderCanceled):
        get_engine("warp").render(avatar, speech, out_dir / "y.mp4", should_cancel=lambda: True)
    assert_no_leftovers(out_dir)


def test_no_face_is_a_clear_error(tmp_path: Path, blank_video: Path, speech: Path) -> None:
    with pytest.raises(NoFaceError, match="No face was found"):
        get_engine("warp").render(blank_video, speech, tmp_path / "x.mp4")
    assert_no_leftovers(tmp_path)


def test_bad_inputs_are_media_errors(tmp_path: Path, avatar: Path, speech: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(MediaError, match="not a readable audio or video file"):
        get_engine("warp").render(avatar, text, tmp_path / "a.mp4")
    with pytest.raises(MediaError, match="no video stream"):
        get_engine("warp").render(speech, speech, tmp_path / "b.mp4")
    with pytest.raises(MediaError, match="no audio track"):
        get_engine("warp").render(avatar, avatar, tmp_path / "c.mp4")
    assert_no_leftovers(tmp_path, "notes.wav")


# --------------------------------------------------------------------------- wav2lip


@pytest.fixture(scope="session")
def wav2lip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised generator saved in the release's format."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "wav2lip_random.pth"
    checkpoint = release_state_dict(Wav2Lip())
    checkpoint.update(global_step=0, global_epoch=0, optimizer=None)
    torch.save(checkpoint, path)
    return path


def test_wav2lip_architecture_matches_the_release() -> None:
    model = Wav2Lip().eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["face_encoder_blocks.0.0.conv_block.0.weight"] == (16, 6, 7, 7)
    assert shapes["face_encoder_blocks.6.1.conv_block.0.weight"] == (512, 512, 1, 1)
    assert shapes["audio_encoder.0.conv_block.0.weight"] == (32, 1, 3, 3)
    assert shapes["audio_encoder.12.conv_block.1.running_mean"] == (512,)
    assert shapes["face_decoder_blocks.1.0.conv_block.0.weight"] == (1024, 512, 3, 3)
    assert shapes["face_decoder_blocks.6.0.conv_block.0.weight"] == (160, 64, 3, 3)
    assert shapes["output_block.0.conv_block.0.weight"] == (32, 80, 3, 3)
    assert shapes["output_block.1.weight"] == (3, 32, 1, 1)
    params = sum(v.numel() for v in model.parameters())
    assert 36_000_000 < params < 37_000_000
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 80, 16), torch.zeros(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96)


def test_wav2lip_renders_with_a_release_format_checkpoint(
    tmp_path: Path, avatar: Path, wav2lip_checkpoint: Path
) -> None:
    speech = write_wav(tmp_path / "short.wav", vowel(0.3))  # 8 frames: the model is slow on CPU
    infos = {e.name: e for e in list_engines(checkpoint=wav2lip_checkpoint)}
    assert infos["wav2lip"].available
    engine = get_engine("wav2lip", checkpoint=wav2lip_checkpoint)
    assert isinstance(engine, Wav2LipEngine)
    out = tmp_path / "w2l.mp4"
    result = engine.render(avatar, speech, out, batch_size=8)
    info = probe(out)
    assert info.has_video and info.has_audio
    assert abs(info.duration - probe(speech).duration) <= 1 / FPS
    assert (
        result.engine == "wav2lip" and result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    )

    source = decode_luma(avatar).astype(int)
    rendered = decode_luma(out).astype(int)
    box = FaceDetector().detect(source[0].astype(np.uint8))
    assert box is not None
    face = (slice(int(box.y), int(box.y + box.h)), slice(int(box.x), int(box.x + box.w)))
    outside = np.ones(source[0].shape, bool)
    outside[
        int(box.y - 0.2 * box.h) : int(box.y + 1.5 * box.h),
        int(box.x - 0.2 * box.w) : int(box.x + 1.2 * box.w),
    ] = False
    # An untrained model paints noise over the face, and nothing else changes.
    assert np.abs(rendered[5] - source[5])[face].mean() > 5
    assert np.abs(rendered[5] - source[5])[outside].mean() < 1.5


def test_wav2lip_refuses_wrong_or_unsafe_checkpoints(
    tmp_path: Path, avatar: Path, speech: Path
) -> None:
    wrong = tmp_path / "syncnet.pth"
    torch.save({"state_dict": {"module.conv.weight": torch.zeros(3)}}, wrong)
    with pytest.raises(EngineUnavailable, match="does not match the Wav2Lip 96x96 generator"):
        get_engine("wav2lip", checkpoint=wrong).render(avatar, speech, tmp_path / "a.mp4")

    unsafe = tmp_path / "pickled_code.pth"
    torch.save({"state_dict": {}, "extra": Fraction(1, 3)}, unsafe)  # not plain tensors/data
    with pytest.raises(EngineUnavailable, match="could not be read"):
        get_engine("wav2lip", checkpoint=unsafe).render(avatar, speech, tmp_path / "b.mp4")

    text = tmp_path / "readme.pth"
    text.write_text("download the weights from ...")
    with pytest.raises(EngineUnavailable, match="could not be read"):
        get_engine("wav2lip", checkpoint=text).render(avatar, speech, tmp_path / "c.mp4")
    assert_no_leftovers(tmp_path, "syncnet.pth", "pickled_code.pth", "readme.pth")
