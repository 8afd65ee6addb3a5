"""The Wav2Lip generator (Prajwal et al., 2020) as released, and its checkpoint loader.

The module and parameter names below are those of the original ``models/wav2lip.py`` and
``models/conv.py``, so the released ``wav2lip.pth`` / ``wav2lip_gan.pth`` files load as they
are (a dict whose ``state_dict`` keys may carry the ``module.`` prefix of DataParallel).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.errors import EngineUnavailable

#: The generator's face size (96 x 96) and mel window (80 x 16 per video frame).
IMG_SIZE = 96
MEL_STEP = 16


class Conv2d(nn.Module):
    """Conv + BatchNorm + ReLU, optionally residual (``models/conv.py``)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int | tuple[int, int],
        padding: int,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    """Transposed conv + BatchNorm + ReLU (``models/conv.py``)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> Conv2d:
    return Conv2d(c, c, kernel_size=3, stride=1, padding=1, residual=True)


class Wav2Lip(nn.Module):
    """The Wav2Lip generator: face encoder, audio encoder, face decoder with skip links."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(6, 16, kernel_size=7, stride=1, padding=3)),  # 96
                nn.Sequential(Conv2d(16, 32, 3, 2, 1), _res(32), _res(32)),  # 48
                nn.Sequential(Conv2d(32, 64, 3, 2, 1), _res(64), _res(64), _res(64)),  # 24
                nn.Sequential(Conv2d(64, 128, 3, 2, 1), _res(128), _res(128)),  # 12
                nn.Sequential(Conv2d(128, 256, 3, 2, 1), _res(256), _res(256)),  # 6
                nn.Sequential(Conv2d(256, 512, 3, 2, 1), _res(512)),  # 3
                nn.Sequential(Conv2d(512, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0)),  # 1
            ]
        )
        self.audio_encoder = nn.Sequential(
            Conv2d(1, 32, kernel_size=3, stride=1, padding=1),
            _res(32),
            _res(32),
            Conv2d(32, 64, kernel_size=3, stride=(3, 1), padding=1),
            _res(64),
            _res(64),
            Conv2d(64, 128, kernel_size=3, stride=3, padding=1),
            _res(128),
            _res(128),
            Conv2d(128, 256, kernel_size=3, stride=(3, 2), padding=1),
            _res(256),
            Conv2d(256, 512, kernel_size=3, stride=1, padding=0),
            Conv2d(512, 512, kernel_size=1, stride=1, padding=0),
        )
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(512, 512, kernel_size=1, stride=1, padding=0)),
                nn.Sequential(Conv2dTranspose(1024, 512, 3, 1, 0), _res(512)),  # 3
                nn.Sequential(Conv2dTranspose(1024, 512, 3, 2, 1, 1), _res(512), _res(512)),  # 6
                nn.Sequential(Conv2dTranspose(768, 384, 3, 2, 1, 1), _res(384), _res(384)),  # 12
                nn.Sequential(Conv2dTranspose(512, 256, 3, 2, 1, 1), _res(256), _res(256)),  # 24
                nn.Sequential(Conv2dTranspose(320, 128, 3, 2, 1, 1), _res(128), _res(128)),  # 48
                nn.Sequential(Conv2dTranspose(160, 64, 3, 2, 1, 1), _res(64), _res(64)),  # 96
            ]
        )
        self.output_block = nn.Sequential(
            Conv2d(80, 32, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 80, 16)`` mel windows + ``(B, 6, 96, 96)`` faces -> ``(B, 3, 96, 96)``.

        5-D inputs (``(B, T, 1, 80, 16)`` and ``(B, 6, T, 96, 96)``) work as in the original.
        """
        batch = audio_sequences.size(0)
        five_d = face_sequences.dim() > 4
        if five_d:
            audio_sequences = torch.cat(
                [audio_sequences[:, i] for i in range(audio_sequences.size(1))], dim=0
            )
            face_sequences = torch.cat(
                [face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0
            )
        audio_embedding = self.audio_encoder(audio_sequences)  # (B, 512, 1, 1)
        feats = []
        x = face_sequences
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = audio_embedding
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        x = self.output_block(x)
        if five_d:
            return torch.stack(torch.split(x, batch, dim=0), dim=2)
        return x


def release_state_dict(model: Wav2Lip) -> dict[str, Any]:
    """A checkpoint dict in the release's layout (``{"state_dict": {"module." + k: v}}``)."""
    return {"state_dict": OrderedDict(("module." + k, v) for k, v in model.state_dict().items())}


def load_wav2lip(checkpoint: str | os.PathLike[str], device: torch.device | str) -> Wav2Lip:
    """Load a Wav2Lip generator checkpoint (release format) onto ``device``, in eval mode.

    The file is read with ``torch.load(weights_only=True)``: a checkpoint is data, and pickled
    code in a file a user supplied must not run. Raises :class:`EngineUnavailable` with a
    readable reason when the file is missing, unreadable or not a 96x96 Wav2Lip generator.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise EngineUnavailable(f"The Wav2Lip checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EngineUnavailable(
            f"The Wav2Lip checkpoint {path.name} could not be read ({exc.__class__.__name__}). "
            "Use the released wav2lip.pth or wav2lip_gan.pth."
        ) from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise EngineUnavailable(
            f"{path.name} is not a Wav2Lip checkpoint (no state_dict inside). Use the released "
            "wav2lip.pth or wav2lip_gan.pth."
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = Wav2Lip()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EngineUnavailable(
            f"{path.name} does not match the Wav2Lip 96x96 generator (is it the SyncNet "
            "expert, the discriminator or an HD variant?). Use the released wav2lip.pth or "
            "wav2lip_gan.pth."
        ) from exc
    return model.to(device).eval()
