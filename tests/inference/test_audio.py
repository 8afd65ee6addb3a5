"""Audio decoding and Wav2Lip's mel spectrogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.audio import (
    MEL_BANDS,
    load_audio,
    mel_filterbank,
    mel_windows,
    wav2lip_mel,
)
from inference.errors import MediaError
from tests.inference.conftest import SAMPLE_RATE, vowel


def test_load_audio_from_wav_and_from_a_video(speech: Path, speech_video: Path) -> None:
    samples = load_audio(speech)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 1.0 < len(samples) / SAMPLE_RATE < 4.0
    assert 0.05 < np.abs(samples).max() <= 1.0
    from_video = load_audio(speech_video)
    assert abs(len(from_video) - len(samples)) < SAMPLE_RATE * 0.1


def test_load_audio_refuses_a_silent_video(avatar: Path) -> None:
    with pytest.raises(MediaError, match="no audio track"):
        load_audio(avatar)


def test_mel_filterbank_shape_and_normalisation() -> None:
    bank = mel_filterbank()
    assert bank.shape == (MEL_BANDS, 401)
    assert (bank >= 0).all()
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # bands rise in frequency
    # 55 Hz .. 7600 Hz: nothing at DC or above fmax.
    freqs = np.linspace(0, 8000, 401)
    assert bank[:, freqs < 40].sum() == 0 and bank[:, freqs > 7700].sum() == 0
    # Slaney area normalisation: each triangle's area (weights x bin spacing) is about 1.
    areas = bank.sum(axis=1) * (freqs[1] - freqs[0])
    assert np.allclose(areas[10:], 1.0, atol=0.1)


def test_mel_filterbank_matches_librosa_when_installed() -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(mel_filterbank(), ref, rtol=1e-4, atol=1e-6)


def test_wav2lip_mel_values() -> None:
    samples = np.concatenate([np.zeros(8000), vowel(0.5)]).astype(np.float32)
    mel = wav2lip_mel(samples)
    assert mel.shape == (80, 1 + len(samples) // 200)
    assert float(mel.min()) >= -4.0 and float(mel.max()) <= 4.0
    assert float(mel[:, 5:35].max()) == -4.0  # digital silence sits on the floor
    assert float(mel[:, 45:75].mean()) > -2.0


def test_mel_windows_follow_wav2lip_indexing() -> None:
    mel = torch.arange(80 * 100, dtype=torch.float32).view(80, 100)
    windows = mel_windows(mel, 25.0, np.array([0, 1, 10, 40]), step=16)
    assert windows.shape == (4, 1, 80, 16)
    # Frame i starts at column int(i * 80 / 25); past the end the last 16 columns are used.
    for row, start in enumerate([0, 3, 32, 84]):
        assert torch.equal(windows[row, 0], mel[:, start : start + 16])
