"""MuseTalk 1.5's three networks, loaded from the release layout, and the math between them.

Per output frame (the release's ``scripts/inference.py``, whose numbers these functions match):

* audio: the clip, cut into 30 s pieces, goes through Whisper's feature extractor and encoder;
  every hidden state (the embeddings and each layer's output) is kept, stacked: ``(T, L, d)`` at
  50 features per second. A frame gets the 10 features around its time (2 frames' worth of
  padding left and right, zeros beyond the audio), flattened to ``(10 * L, d)`` - 50 x 384 for
  whisper-tiny - plus a sinusoidal positional encoding;
* image: the 256x256 face crop with its lower half blacked out and the crop itself go through
  the VAE encoder; their latents (sampled, times the scaling factor) make 8 channels;
* one pass of the UNet at timestep 0 predicts the face's latents, which the VAE decodes.

diffusers and transformers are imported only when a model is loaded: importing the engines (a
render worker listing them) must not pay for them, and the web process never imports this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from inference.audio import SAMPLE_RATE
from inference.catalog import musetalk_problem
from inference.errors import EngineUnavailable

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

#: Whisper features per second of audio (its encoder's frame rate).
AUDIO_FPS = 50
#: The release's ``audio_padding_length_left`` / ``_right`` (in video frames).
PAD_LEFT = 2
PAD_RIGHT = 2
#: Whisper features per video frame.
WINDOW = 2 * (PAD_LEFT + PAD_RIGHT + 1)
#: Whisper reads audio 30 s at a time.
SEGMENT_SECONDS = 30
#: Whisper segments encoded together.
SEGMENT_BATCH = 4
#: Seed of the per-frame noise the VAE's latents are sampled with (the release samples them
#: too, from the global generator); one seed per avatar frame keeps them independent of batching.
LATENT_SEED = 0x4D54


def positional_encoding(d_model: int, length: int, max_len: int = 5000) -> torch.Tensor:
    """The release's sinusoidal ``PositionalEncoding`` table, first ``length`` rows: ``(length,
    d_model)`` float32 (sin on even, cos on odd channels)."""
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe[:length]


@dataclass
class MuseTalkModels:
    """The loaded networks and what the engine needs to know about them."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    whisper: WhisperEncoder
    features: WhisperFeatureExtractor
    device: torch.device
    dtype: torch.dtype  # float16 on CUDA, float32 on the CPU
    scaling_factor: float
    #: Identifies the VAE weights: cached avatar latents are only valid for the same VAE.
    vae_key: str


def _libraries() -> tuple[Any, Any, Any, Any]:
    # A render worker must never reach the Hugging Face hub: everything is local files.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperFeatureExtractor, WhisperModel

    return UNet2DConditionModel, AutoencoderKL, WhisperModel, WhisperFeatureExtractor


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hush the libraries while loading: their progress bars and advice (install accelerate,
    prefer safetensors...) say nothing to whoever reads a render worker's log."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])
        if bars:
            transformers_logging.enable_progress_bar()


def _unavailable(message: str, exc: BaseException) -> EngineUnavailable:
    # The exception's class says enough to the reader; its text (paths, library advice) goes
    # to the log through the chained exception.
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 8:  # the libraries wrap torch's error
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(isinstance(e, pickle.UnpicklingError) for e in chain):
        reason = "it holds pickled objects besides tensors, which are never loaded"
    else:
        reason = exc.__class__.__name__
    return EngineUnavailable(f"{message} ({reason}).")


def load_unet(folder: Path, unet_cls: Any) -> Any:
    """The UNet of ``musetalkV15/`` (config + ``unet.pth``, read with ``weights_only=True``)."""
    config_path = folder / "musetalkV15" / "musetalk.json"
    weights = folder / "musetalkV15" / "unet.pth"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        # Built without storage (the real one has 0.9 G parameters: initialising them at
        # random only to overwrite them costs seconds); the weights are assigned below.
        with torch.device("meta"):
            unet = unet_cls(**config)
    except (OSError, ValueError, TypeError) as exc:
        raise _unavailable(
            "musetalkV15/musetalk.json in the MuseTalk folder is not a UNet2DConditionModel "
            "config: use the one of the MuseTalk 1.5 release",
            exc,
        ) from exc
    try:
        # A checkpoint is data: pickled code in a file someone supplied must not run.
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _unavailable(
            "The MuseTalk UNet weights musetalkV15/unet.pth could not be read: use the "
            "released file",
            exc,
        ) from exc
    if not isinstance(state, dict):
        raise EngineUnavailable(
            "musetalkV15/unet.pth holds no state dict: use the file of the MuseTalk 1.5 release."
        )
    try:
        unet.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise EngineUnavailable(
            "musetalkV15/unet.pth does not match the UNet described by musetalk.json (is it "
            "the MuseTalk 1.0 model, or another model's file?)."
        ) from exc
    return unet


def load_models(folder: str | os.PathLike[str], device: torch.device) -> MuseTalkModels:
    """Load the UNet, the VAE and the Whisper encoder of a release folder onto ``device``.

    Half precision on CUDA, float32 on the CPU; nothing is ever downloaded. Raises
    :class:`EngineUnavailable` saying which piece is missing, unreadable or mismatched.
    """
    root = Path(folder)
    problem = musetalk_problem(root)
    if problem:
        raise EngineUnavailable(problem)
    unet_cls, vae_cls, whisper_cls, features_cls = _libraries()
    with _quiet_loading():
        return _load(root, device, unet_cls, vae_cls, whisper_cls, features_cls)


def _load(
    root: Path,
    device: torch.device,
    unet_cls: Any,
    vae_cls: Any,
    whisper_cls: Any,
    features_cls: Any,
) -> MuseTalkModels:
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    unet = load_unet(root, unet_cls)
    try:
        # The release ships diffusion_pytorch_model.bin (read with weights_only by diffusers):
        # say which file to take rather than have diffusers look for safetensors first.
        safetensors = (root / "sd-vae" / "diffusion_pytorch_model.safetensors").is_file()
        vae = vae_cls.from_pretrained(
            root / "sd-vae", local_files_only=True, use_safetensors=safetensors
        )
    except Exception as exc:
        raise _unavailable("The VAE in sd-vae/ could not be loaded", exc) from exc
    try:
        whisper = whisper_cls.from_pretrained(root / "whisper", local_files_only=True).get_encoder()
        features = features_cls.from_pretrained(root / "whisper", local_files_only=True)
    except Exception as exc:
        raise _unavailable("Whisper in whisper/ could not be loaded", exc) from exc
    if unet.config.in_channels != 2 * vae.config.latent_channels:
        raise EngineUnavailable(
            f"The UNet takes {unet.config.in_channels} channels but the VAE makes "
            f"{vae.config.latent_channels}-channel latents (x2 expected): wrong sd-vae?"
        )
    if unet.config.cross_attention_dim != whisper.config.d_model:
        raise EngineUnavailable(
            f"The UNet expects {unet.config.cross_attention_dim}-wide audio features but "
            f"Whisper makes {whisper.config.d_model}: MuseTalk 1.5 uses whisper-tiny"
        )
    vae_config = (root / "sd-vae" / "config.json").read_bytes()
    vae_weights = sorted((root / "sd-vae").glob("diffusion_pytorch_model.*"))
    vae_key = hashlib.sha256(
        vae_config + repr([(p.name, p.stat().st_size) for p in vae_weights]).encode()
    ).hexdigest()[:16]
    return MuseTalkModels(
        unet=unet.to(device=device, dtype=dtype).eval().requires_grad_(False),
        vae=vae.to(device=device, dtype=dtype).eval().requires_grad_(False),
        whisper=whisper.to(device=device, dtype=dtype).eval().requires_grad_(False),
        features=features,
        device=device,
        dtype=dtype,
        scaling_factor=float(vae.config.scaling_factor),
        vae_key=vae_key,
    )


# --------------------------------------------------------------------------- audio


@torch.inference_mode()
def whisper_features(models: MuseTalkModels, samples: np.ndarray) -> torch.Tensor:
    """Every Whisper hidden state of 16 kHz mono ``samples``: ``(T, L, d)`` at 50 per second.

    ``T`` is the audio's length at 50 Hz (the 30 s padding of the last segment is cut off), ``L``
    the encoder's layers + 1 (5 for whisper-tiny), ``d`` its width (384). On the model device
    and dtype.
    """
    samples = np.asarray(samples, dtype=np.float32)
    step = SEGMENT_SECONDS * SAMPLE_RATE
    mels = [
        models.features(
            samples[start : start + step], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        for start in range(0, max(len(samples), 1), step)
    ]
    parts = []
    for first in range(0, len(mels), SEGMENT_BATCH):
        batch = torch.cat(mels[first : first + SEGMENT_BATCH]).to(models.device, models.dtype)
        hidden = models.whisper(batch, output_hidden_states=True).hidden_states
        stacked = torch.stack(hidden, dim=2)  # (segments, 1500, L, d)
        parts.append(stacked.reshape(-1, *stacked.shape[2:]))
    length = math.floor(len(samples) / SAMPLE_RATE * AUDIO_FPS)
    return torch.cat(parts)[:length]


@torch.inference_mode()
def audio_windows(features: torch.Tensor, fps: float, frame_indices: np.ndarray) -> torch.Tensor:
    """The UNet's audio input for video frames: ``(n, 10 * L, d)``, positional encoding added.

    Frame ``i`` reads the 10 features from ``floor(i * 50 / fps) - pad`` on, with ``pad = 2 *
    ceil(50 / fps)``; features before 0 or past the audio's end are zeros.
    """
    per_frame = AUDIO_FPS / fps
    pad = math.ceil(per_frame) * PAD_LEFT
    idx = np.asarray(frame_indices, dtype=np.int64)
    starts = np.floor(idx * per_frame).astype(np.int64) - pad
    cols = torch.from_numpy(starts[:, None] + np.arange(WINDOW)[None, :])
    total = features.shape[0]
    valid = (cols >= 0) & (cols < total)
    # Row 0 of ``padded`` is the zero feature every out-of-range column reads.
    padded = torch.cat([features.new_zeros((1, *features.shape[1:])), features])
    picked = padded[torch.where(valid, cols + 1, 0).to(features.device)]  # (n, 10, L, d)
    flat = picked.reshape(len(idx), -1, features.shape[-1])
    pe = positional_encoding(flat.shape[-1], flat.shape[1]).to(flat.device, flat.dtype)
    return flat + pe


# --------------------------------------------------------------------------- image


def frame_noise(shape: tuple[int, ...], src_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two noise tensors (masked crop, crop) the latents of avatar frame ``src_index`` are
    sampled with: float32 on the CPU, the same whatever the batch or device."""
    generator = torch.Generator().manual_seed(LATENT_SEED + int(src_index))
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


@torch.inference_mode()
def encode_faces(
    models: MuseTalkModels, faces: np.ndarray, src_indices: np.ndarray
) -> torch.Tensor:
    """UNet input latents of RGB faces ``(n, 256, 256, 3)`` uint8: ``(n, 8, 32, 32)``, the
    masked face's latents then the whole face's, sampled with each frame's noise."""
    n, size = faces.shape[0], faces.shape[1]
    img = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float() / 255.0
    masked = img.clone()
    masked[:, :, size // 2 :] = 0  # the lower half, where the mouth is
    pixels = (torch.cat([masked, img]) - 0.5) / 0.5
    dist = models.vae.encode(pixels.to(models.device, models.dtype)).latent_dist
    shape = tuple(dist.mean.shape[1:])
    noise = [frame_noise(shape, int(s)) for s in src_indices]
    eps = torch.stack([a for a, _ in noise] + [b for _, b in noise]).to(dist.mean)
    latents = (dist.mean + dist.std * eps) * models.scaling_factor
    return torch.cat([latents[:n], latents[n:]], dim=1)


@torch.inference_mode()
def predict_latents(
    models: MuseTalkModels, latents: torch.Tensor, audio: torch.Tensor
) -> torch.Tensor:
    """One UNet pass at timestep 0: ``(n, 8, h, w)`` latents + ``(n, 10 * L, d)`` audio ->
    ``(n, 4, h, w)`` predicted face latents."""
    timesteps = torch.tensor([0], device=models.device)
    return models.unet(
        latents.to(models.device, models.dtype),
        timesteps,
        encoder_hidden_states=audio.to(models.device, models.dtype),
    ).sample


@torch.inference_mode()
def decode_faces(models: MuseTalkModels, latents: torch.Tensor) -> np.ndarray:
    """Decode predicted latents to RGB faces ``(n, 256, 256, 3)`` uint8 (on the CPU)."""
    image = models.vae.decode((1 / models.scaling_factor) * latents.to(models.dtype)).sample
    image = (image / 2 + 0.5).clamp(0, 1)
    image = image.permute(0, 2, 3, 1).float() * 255
    return image.round().to(torch.uint8).cpu().numpy()
