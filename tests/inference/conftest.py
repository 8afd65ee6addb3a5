"""Fixtures of the inference tests: real media, made on the fly with ffmpeg, kept tiny.

Nothing here needs Django or a database. Media are built once per session (per xdist worker).
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from inference import ffmpeg_bin

FPS = 25
SAMPLE_RATE = 16000


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, failing the test with its stderr."""
    cmd = [ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Save float samples in [-1, 1] as 16-bit mono PCM (stdlib only)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
    return path


def vowel(seconds: float, rate: int = SAMPLE_RATE, pitch: float = 140.0) -> np.ndarray:
    """A loud, speech-like sustained vowel: harmonics of ``pitch`` shaped by two formants."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for k in range(1, 30):
        f = pitch * k
        if f > rate / 2:
            break
        gain = np.exp(-(((f - 700) / 250) ** 2)) + 0.6 * np.exp(-(((f - 1200) / 300) ** 2)) + 0.05
        out += gain * np.sin(2 * np.pi * f * t)
    return 0.5 * out / np.abs(out).max()


def make_avatar(
    path: Path, png: Path, *, size: str, seconds: float, counter: bool = False, pix_fmt="yuv420p"
) -> Path:
    """Loop the still into a ``seconds`` long video; ``counter`` paints the frame number (x4)
    as the brightness of a 16x16 corner block, to follow the frame order through a render."""
    vf = f"scale={size}:flags=area,format={pix_fmt}"
    if counter:
        vf += ",geq=lum='if(lt(X,16)*lt(Y,16),16+N*4,lum(X,Y))':cb='cb(X,Y)':cr='cr(X,Y)'"
    ffmpeg(
        "-loop", "1", "-framerate", str(FPS), "-i", str(png), "-t", f"{seconds}",
        "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-g", "25",
        "-pix_fmt", pix_fmt, str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session folder for generated media."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def astronaut_png(media: Path) -> Path:
    """scikit-image's astronaut (a frontal face the Haar cascade finds) as a PNG."""
    from PIL import Image
    from skimage import data

    path = media / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def avatar(media: Path, astronaut_png: Path) -> Path:
    """2 s of 256x256 25 fps H.264 showing the astronaut (no audio)."""
    return make_avatar(media / "avatar.mp4", astronaut_png, size="256:256", seconds=2.0)


@pytest.fixture(scope="session")
def odd_avatar(media: Path, astronaut_png: Path) -> Path:
    """1 s of 255x257 video (4:4:4, the only way x264 takes odd sizes): must be handled."""
    return make_avatar(
        media / "odd.mkv", astronaut_png, size="255:257", seconds=1.0, pix_fmt="yuv444p"
    )


@pytest.fixture(scope="session")
def counter_avatar(media: Path, astronaut_png: Path) -> Path:
    """1 s (25 frames) with the frame number painted in the top-left corner."""
    return make_avatar(
        media / "counter.mp4", astronaut_png, size="256:256", seconds=1.0, counter=True
    )


@pytest.fixture(scope="session")
def blank_video(media: Path) -> Path:
    """1 s of plain grey video: no face anywhere."""
    path = media / "blank.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=gray:s=128x128:r={FPS}:d=1",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def silence_then_vowel(media: Path) -> Path:
    """1.0 s of digital silence, then 1.2 s of a loud vowel (WAV, 16 kHz mono)."""
    samples = np.concatenate([np.zeros(SAMPLE_RATE), vowel(1.2)])
    return write_wav(media / "silence_then_vowel.wav", samples)


@pytest.fixture(scope="session")
def speech(media: Path) -> Path:
    """About 2 s of speech from espeak-ng when installed, else vowel bursts and pauses."""
    path = media / "speech.wav"
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak:
        raw = media / "speech_raw.wav"
        proc = subprocess.run(
            [espeak, "-s", "170", "-w", str(raw), "Hello there, how are you today?"],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0 and raw.exists():
            # Resample to 16 kHz mono PCM (espeak writes 22.05 kHz).
            ffmpeg("-i", str(raw), "-ac", "1", "-ar", str(SAMPLE_RATE), str(path))
            return path
    bursts = [vowel(0.25) if i % 2 == 0 else np.zeros(SAMPLE_RATE // 8) for i in range(10)]
    return write_wav(path, np.concatenate(bursts))


@pytest.fixture(scope="session")
def long_audio(media: Path) -> Path:
    """3.3 s of alternating vowel and silence (longer than the 1 s avatars: ping-pong)."""
    parts = [vowel(0.3) if i % 2 == 0 else np.zeros(int(0.25 * SAMPLE_RATE)) for i in range(12)]
    return write_wav(media / "long.wav", np.concatenate(parts))


@pytest.fixture(scope="session")
def speech_video(media: Path, avatar: Path, speech: Path) -> Path:
    """The avatar with the speech muxed in (a video whose audio track is the speech)."""
    path = media / "with_audio.mp4"
    ffmpeg(
        "-i", str(avatar), "-i", str(speech), "-map", "0:v", "-map", "1:a",
        "-c:v", "copy", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


# --------------------------------------------------------------------------- faces (landmarks)

#: The astronaut's head and shoulders, cut from scikit-image's 512 x 512 picture (x0, y0, x1, y1).
HEAD_CROP = (110, 20, 340, 300)
#: Background colour of the synthetic frames the head is pasted into.
BACKDROP = (70, 88, 110)


def astronaut_head() -> np.ndarray:
    """The astronaut's head (RGB uint8, 280 x 230)."""
    from skimage import data

    x0, y0, x1, y1 = HEAD_CROP
    return np.ascontiguousarray(data.astronaut()[y0:y1, x0:x1])


def head_frame(
    width: int = 1280, height: int = 720, *, at: tuple[int, int] = (500, 150), scale: float = 1.0
) -> np.ndarray:
    """A ``width`` x ``height`` RGB frame with the astronaut's head (scaled) pasted at ``at``."""
    import cv2

    head = astronaut_head()
    if scale != 1.0:
        head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BACKDROP
    x, y = at
    h, w = min(head.shape[0], height - y), min(head.shape[1], width - x)
    frame[y : y + h, x : x + w] = head[:h, :w]
    return frame


def write_rgb_video(path: Path, frames: list[np.ndarray] | np.ndarray) -> Path:
    """Encode RGB frames (all the same size) as H.264 yuv420p at :data:`FPS`, through ffmpeg."""
    stack = np.ascontiguousarray(np.stack(frames))
    _, h, w, _ = stack.shape
    cmd = [
        ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS), "-i", "pipe:0",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=stack.tobytes(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return path


#: Where the head is in each frame of ``moving_face_video``: 3 px right and 1 px down per frame
#: for 30 frames, then a cut to another place for 20 frames.
MOVING_HEAD_AT = [(40 + 3 * n, 30 + n) if n < 30 else (380, 60) for n in range(50)]


@pytest.fixture(scope="session")
def moving_face_video(media: Path) -> Path:
    """2 s of 640x360: the head drifts (see :data:`MOVING_HEAD_AT`), then a cut moves it."""
    frames = [head_frame(640, 360, at=at) for at in MOVING_HEAD_AT]
    return write_rgb_video(media / "moving_face.mp4", frames)


@pytest.fixture(scope="session")
def noisy_still_face_video(media: Path) -> Path:
    """2 s of 640x360: the head does not move, but every frame has fresh grain (jitter)."""
    rng = np.random.default_rng(7)
    still = head_frame(640, 360, at=(200, 40)).astype(np.int16)

    def grainy() -> np.ndarray:
        return np.clip(still + rng.normal(0, 25, still.shape), 0, 255).astype(np.uint8)

    return write_rgb_video(media / "noisy_still_face.mp4", [grainy() for _ in range(50)])


@pytest.fixture(scope="session")
def small_face_720p(media: Path) -> Path:
    """1 s of 1280x720 where the head is small (~60 px from forehead to chin)."""
    return write_rgb_video(media / "small_face.mp4", [head_frame(scale=0.6)] * 25)


@pytest.fixture(scope="session")
def large_face_720p(media: Path) -> Path:
    """1 s of 1280x720 with the head large enough (~150 px from forehead to chin)."""
    return write_rgb_video(media / "large_face.mp4", [head_frame(at=(500, 100), scale=1.4)] * 25)


@pytest.fixture(scope="session")
def turned_face_video(media: Path) -> Path:
    """1 s of scikit-image's cameraman (a real three-quarter view, his face large), 520x520."""
    import cv2
    from skimage import data

    face = cv2.resize(data.camera()[40:300, 100:360], (520, 520), interpolation=cv2.INTER_CUBIC)
    return write_rgb_video(media / "turned_face.mp4", [cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)] * 25)


# --------------------------------------------------------------------------- MuseTalk weights


def write_tiny_musetalk(root: Path, *, seed: int = 0) -> Path:
    """Randomly initialised MuseTalk 1.5 networks, shrunk, in the release layout under ``root``.

    The files are the release's: ``musetalkV15/unet.pth`` (a plain state dict) +
    ``musetalk.json``, ``sd-vae/`` (config.json + diffusion_pytorch_model.bin) and ``whisper/``
    (config.json + pytorch_model.bin + preprocessor_config.json). The UNet has two blocks of
    16/32 channels, the VAE four of 8/16 (so its latents are 32x32 like the real one's), and
    Whisper two 32-wide layers (real Whisper front end: 80 mels, 1500 positions).
    """
    import json

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(seed)
    width = 32
    unet_config = {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.6.0.dev0",
        "act_fn": "silu",
        "attention_head_dim": 2,
        "block_out_channels": [16, 32],
        "center_input_sample": False,
        "cross_attention_dim": width,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 8,
        "layers_per_block": 1,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 8,
        "out_channels": 4,
        "sample_size": 32,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    }
    (root / "musetalkV15").mkdir(parents=True, exist_ok=True)
    (root / "musetalkV15" / "musetalk.json").write_text(json.dumps(unet_config, indent=2))
    torch.save(UNet2DConditionModel(**unet_config).state_dict(), root / "musetalkV15" / "unet.pth")

    vae = AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 16, 16],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=256,
    )
    (root / "sd-vae").mkdir(exist_ok=True)
    vae.save_config(root / "sd-vae")
    torch.save(vae.state_dict(), root / "sd-vae" / "diffusion_pytorch_model.bin")

    whisper_config = WhisperConfig(
        d_model=width,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        vocab_size=64,
        max_target_positions=16,
        num_mel_bins=80,
        max_source_positions=1500,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    (root / "whisper").mkdir(exist_ok=True)
    whisper_config.save_pretrained(root / "whisper")
    torch.save(WhisperModel(whisper_config).state_dict(), root / "whisper" / "pytorch_model.bin")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    return root


@pytest.fixture(scope="session")
def musetalk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MuseTalk folder in the release layout with tiny random weights (nothing downloaded)."""
    return write_tiny_musetalk(tmp_path_factory.mktemp("musetalk"))


# --------------------------------------------------------------------------- talking-head avatars

#: The astronaut's head and neck, cut square from scikit-image's picture (x0, y0, x1, y1).
TALKING_HEAD = (65, 20, 385, 340)
#: Side of the talking-head avatars (the face is ~110 px from forehead to chin).
TALKING_SIZE = 288


def talking_head(size: int = TALKING_SIZE) -> np.ndarray:
    """The astronaut's smiling head (teeth showing), RGB uint8 ``size`` x ``size``."""
    import cv2
    from skimage import data

    x0, y0, x1, y1 = TALKING_HEAD
    return cv2.resize(data.astronaut()[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def close_mouth(rgb: np.ndarray) -> np.ndarray:
    """The same face with its lips closed, found with the face mesh: the inner-lip region is
    painted with the lips' own colour, the lower lip moved up to meet the upper one.

    Painting alone leaves a pale band where the teeth were that the mesh still reads as a
    gap, so each column of the lower lip (and the skin under it, tapering to nothing 0.6 mouth
    widths lower) is pulled up until its inner edge meets the upper lip's; the teeth left
    between the contours are covered with the lower lip's colour, and a soft darker line is
    drawn where the lips meet.
    """
    import cv2

    from inference.face import find_face_rgb
    from inference.face import landmarks as lm

    face = find_face_rgb(rgb)
    assert face is not None, "no face to close the mouth of"
    p = face.xy.astype(np.float64)
    width = lm.mouth_width(face.points)
    h, w = rgb.shape[:2]

    def contour(indices: tuple[int, ...], xs: np.ndarray) -> np.ndarray:
        pts = p[list(indices)]
        order = np.argsort(pts[:, 0])
        return np.interp(xs, pts[order, 0], pts[order, 1])

    xs = np.arange(w, dtype=np.float64)
    left, right = p[list(lm.OUTER_LIP), 0].min(), p[list(lm.OUTER_LIP), 0].max()
    upper = contour(lm.INNER_LIP_UPPER, xs)
    lower = np.maximum(contour(lm.INNER_LIP_LOWER, xs), upper)
    # The pull fades out at the corners, so the face outside the mouth does not move.
    t = np.clip(np.minimum(xs - left, right - xs) / (0.08 * width), 0, 1)
    gap = (lower - upper) * t * t * (3 - 2 * t)
    bottom = contour(lm.OUTER_LIP_LOWER, xs).max() + 0.6 * width
    rows = np.arange(h, dtype=np.float64)[:, None]
    fade = np.clip((bottom - rows) / np.maximum(bottom - upper, 1e-6), 0, 1)
    map_y = (rows + np.where(rows >= upper, gap * fade, 0.0)).astype(np.float32)
    map_x = np.broadcast_to(xs.astype(np.float32), (h, w))
    closed = cv2.remap(rgb, map_x, np.ascontiguousarray(map_y), cv2.INTER_LINEAR)
    # Whatever of the teeth is still between the contours takes the lower lip's colour.
    inner = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inner, [np.round(p[list(lm.INNER_LIP)] * 8).astype(np.int32)], 1, shift=3)
    lip = (p[list(lm.INNER_LIP_LOWER)][3:8] + p[list(lm.OUTER_LIP_LOWER)][3:8]) / 2
    colour = np.median(rgb[lip[:, 1].round().astype(int), lip[:, 0].round().astype(int)], axis=0)
    teeth = (inner > 0) & (closed.astype(int).sum(axis=2) > int(colour.sum()) + 40)
    out = closed.astype(np.float32)
    out[teeth] = colour
    line = np.zeros((h, w), np.float32)
    inside = (xs >= left) & (xs <= right)
    seam = np.round(np.stack([xs[inside], upper[inside]], axis=1) * 4).astype(np.int32)
    cv2.polylines(line, [seam], False, 1.0, max(1, round(width * 0.02)), cv2.LINE_AA, shift=2)
    line = cv2.GaussianBlur(line, (0, 0), 0.8)
    return np.clip(out * (1 - 0.35 * line[..., None]) + 0.5, 0, 255).astype(np.uint8)


def espeak_wav(path: Path, text: str, voice: str = "en") -> Path:
    """espeak-ng's speech of ``text`` (word gaps of 60 ms, as people pause), 16 kHz mono WAV;
    the test is skipped when espeak-ng is not installed."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (make test-deps)")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        [espeak, "-v", voice, "-s", "170", "-g", "6", "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    ffmpeg("-i", str(raw), "-ac", "1", "-ar", str(SAMPLE_RATE), str(path))
    raw.unlink()
    return path


@pytest.fixture(scope="session")
def smile_avatar(media: Path) -> Path:
    """3 s of the smiling astronaut (teeth showing), 288x288 25 fps H.264."""
    return write_rgb_video(media / "smile.mp4", [talking_head()] * (3 * FPS))


@pytest.fixture(scope="session")
def closed_avatar(media: Path) -> Path:
    """3 s of the astronaut with her mouth closed (see :func:`close_mouth`), 288x288."""
    return write_rgb_video(media / "closed.mp4", [close_mouth(talking_head())] * (3 * FPS))


@pytest.fixture(scope="session")
def english_sentence(media: Path) -> Path:
    """About 3 s of English from espeak-ng, with the pauses of a spoken sentence."""
    return espeak_wav(media / "english.wav", "Hello, and welcome. The weather is warm today.")
