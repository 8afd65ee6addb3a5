"""Audio decoding (16 kHz mono) and Wav2Lip's log-mel features.

Everything after decoding runs in torch on the render device. What the ``warp`` engine reads
from the voice per frame (opening, lip shape) is :mod:`inference.articulation`.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import torch

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.media.probing import _explain_failure, _input_args

#: Sample rate every feature here works at (Wav2Lip's too).
SAMPLE_RATE = 16000

# Wav2Lip's hparams.py (the release's values; the checkpoints were trained on exactly these).
MEL_BANDS = 80
MEL_N_FFT = 800
MEL_HOP = 200
MEL_WIN = 800
MEL_FMIN = 55.0
MEL_FMAX = 7600.0
MEL_PREEMPHASIS = 0.97
MEL_REF_LEVEL_DB = 20.0
MEL_MIN_LEVEL_DB = -100.0
MEL_MAX_ABS = 4.0
#: Mel frames per second (16000 / 200).
MEL_FPS = SAMPLE_RATE / MEL_HOP


def load_audio(
    path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE, timeout: float = 600
) -> np.ndarray:
    """Decode the first audio stream of ``path`` (an audio file or a video) to mono float32.

    Returns samples in [-1, 1] at ``sample_rate``; raises :class:`MediaError` when there is no
    audio stream or it cannot be decoded.
    """
    src = Path(path)
    cmd = [
        ffmpeg_bin.find_ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        *_input_args(src),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "f32le",
        "pipe:1",
    ]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaError("Decoding the audio took too long; the file is probably damaged.") from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise MediaError(
                "The file has no audio track. Upload an audio file, or a video with sound.",
                path=str(src),
                detail=stderr,
            )
        raise _explain_failure(stderr, src)
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)  # writable copy
    if samples.size == 0:
        raise MediaError("The audio track is empty (no sound samples).", path=str(src))
    return samples


# --------------------------------------------------------------------------- Wav2Lip mel


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    log_part = min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


@functools.lru_cache(maxsize=4)
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = MEL_N_FFT,
    n_mels: int = MEL_BANDS,
    fmin: float = MEL_FMIN,
    fmax: float = MEL_FMAX,
) -> np.ndarray:
    """Slaney-style, area-normalised mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``.

    The same matrix as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (librosa's
    defaults ``htk=False, norm="slaney"``), which Wav2Lip's checkpoints were trained with.
    """
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


def wav2lip_mel(
    samples: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Wav2Lip's normalised log-mel spectrogram of 16 kHz mono ``samples``: ``(80, T)``.

    Pre-emphasis 0.97, STFT n_fft 800 / hop 200 / Hann window 800 (centered, reflect padding,
    as librosa did), Slaney mel 55-7600 Hz, ``20*log10(max(1e-5, x)) - 20`` dB, then mapped
    from [-100, 0] dB onto [-4, 4] and clipped: the values of the original ``audio.py``.
    """
    device = torch.device(device)
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32), device=device).flatten()
    if x.numel() == 0:
        raise MediaError("The audio track is empty (no sound samples).")
    x = torch.cat([x[:1], x[1:] - MEL_PREEMPHASIS * x[:-1]])
    if x.numel() <= MEL_N_FFT // 2:  # reflect padding needs more samples than the pad
        x = torch.nn.functional.pad(x, (0, MEL_N_FFT // 2 + 1 - x.numel()))
    window = torch.hann_window(MEL_WIN, device=device)
    spec = torch.stft(
        x,
        MEL_N_FFT,
        hop_length=MEL_HOP,
        win_length=MEL_WIN,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    basis = torch.from_numpy(mel_filterbank()).to(device)
    mel = basis @ spec
    min_level = 10 ** (MEL_MIN_LEVEL_DB / 20)
    db = 20 * torch.log10(mel.clamp(min=min_level)) - MEL_REF_LEVEL_DB
    norm = (2 * MEL_MAX_ABS) * ((db - MEL_MIN_LEVEL_DB) / -MEL_MIN_LEVEL_DB) - MEL_MAX_ABS
    return norm.clamp(-MEL_MAX_ABS, MEL_MAX_ABS)


def mel_windows(
    mel: torch.Tensor, fps: float, frame_indices: np.ndarray | torch.Tensor, step: int = 16
) -> torch.Tensor:
    """Wav2Lip's audio input for video frames: a ``(n, 1, 80, step)`` batch of mel windows.

    Frame ``i``'s window starts at mel column ``int(i * 80 / fps)`` (``mel_idx_multiplier``);
    past the end, the last ``step`` columns are used, as the original ``inference.py`` does.
    """
    total = mel.shape[1]
    if total < step:
        mel = torch.nn.functional.pad(mel, (0, step - total), value=-MEL_MAX_ABS)
        total = step
    idx = torch.as_tensor(np.asarray(frame_indices), dtype=torch.float64)
    starts = torch.floor(idx * (MEL_FPS / fps)).long().clamp(max=total - step)
    cols = starts[:, None] + torch.arange(step)[None, :]  # (n, step)
    windows = mel[:, cols.to(mel.device)]  # (80, n, step)
    return windows.permute(1, 0, 2).unsqueeze(1).contiguous()
