"""Wav2Lip (Prajwal et al., 2020): the released 96x96 generator, driven by a user's checkpoint.

The module and parameter names below are those of the original ``models/wav2lip.py`` and
``models/conv.py``, so the released ``wav2lip.pth`` / ``wav2lip_gan.pth`` files load as they
are (a dict whose ``state_dict`` keys may carry the ``module.`` prefix of DataParallel).

Per output frame: the face crop (face box extended down to the chin) is taken from the Y, U
and V planes and converted to BGR - only that crop - and resized to 96x96; its lower half is
masked; the model sees the masked and the reference crop (6 channels, 0..1) with the 80x16 mel
window of that frame, and the predicted 96x96 face is resized back, converted to YUV and
pasted into the planes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch import nn

from inference.audio import mel_windows, wav2lip_mel
from inference.catalog import SPECS, checkpoint_problem, resolve_checkpoint
from inference.engines.base import Engine, RenderPlan
from inference.engines.pipeline import FrameBatch
from inference.errors import EngineUnavailable

#: Environment variable read when no checkpoint is passed explicitly.
IMG_SIZE = 96
MEL_STEP = 16
#: Face crop relative to the Haar box: it stops near the lower lip, Wav2Lip wants the chin.
CROP_PAD = (0.0, 0.25, 0.05, 0.05)  # top, bottom, left, right (fractions of box size)


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


class Wav2LipEngine(Engine):
    """Wav2Lip lip sync from a user-supplied generator checkpoint."""

    name: ClassVar[str] = "wav2lip"
    label: ClassVar[str] = SPECS["wav2lip"].label
    description: ClassVar[str] = SPECS["wav2lip"].description
    default_batch_size: ClassVar[int] = 16

    def __init__(self, *, checkpoint: str | os.PathLike[str] | None = None) -> None:
        self.checkpoint = resolve_checkpoint(checkpoint)
        self._model: Wav2Lip | None = None
        self._model_key: tuple[str, float, str] | None = None
        self._mel: torch.Tensor | None = None

    def availability(self) -> tuple[bool, str]:
        """Available when the checkpoint file exists (it is only loaded when rendering)."""
        reason = checkpoint_problem(self.checkpoint)
        return not reason, reason

    def model(self, device: torch.device) -> Wav2Lip:
        """The loaded generator (cached while the checkpoint file is unchanged)."""
        assert self.checkpoint is not None
        key = (str(self.checkpoint), self.checkpoint.stat().st_mtime, str(device))
        if self._model is None or self._model_key != key:
            self._model = load_wav2lip(self.checkpoint, device)
            self._model_key = key
        return self._model

    def prepare(self, plan: RenderPlan) -> None:
        """Load the model and compute the whole clip's mel spectrogram."""
        self.model(plan.device)
        self._mel = wav2lip_mel(plan.samples, plan.device)

    def _crop_boxes(self, plan: RenderPlan, boxes: np.ndarray) -> np.ndarray:
        """Even-aligned crop rectangles ``[x0, y0, x1, y1]`` (int) inside the frame."""
        top, bottom, left, right = CROP_PAD
        x, y, w, h = boxes.T
        x0 = np.floor((x - w * left) / 2) * 2
        x1 = np.ceil((x + w * (1 + right)) / 2) * 2
        y0 = np.floor((y - h * top) / 2) * 2
        y1 = np.ceil((y + h * (1 + bottom)) / 2) * 2
        rect = np.stack([x0, y0, x1, y1], axis=1)
        rect[:, [0, 2]] = rect[:, [0, 2]].clip(0, plan.width)
        rect[:, [1, 3]] = rect[:, [1, 3]].clip(0, plan.height)
        return rect.astype(int)

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Regenerate the face crops of ``batch`` with the model and paste them back."""
        assert self._mel is not None and batch.boxes is not None
        model = self.model(plan.device)
        y_pl, u_pl, v_pl = batch.planes()
        rects = self._crop_boxes(plan, batch.boxes)
        faces = np.empty((len(batch), IMG_SIZE, IMG_SIZE, 3), dtype=np.uint8)
        keep = []
        for k, (x0, y0, x1, y1) in enumerate(rects):
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            faces[k] = cv2.resize(
                self._crop_bgr(y_pl[k], u_pl[k], v_pl[k], x0, y0, x1, y1),
                (IMG_SIZE, IMG_SIZE),
                interpolation=cv2.INTER_AREA,
            )
            keep.append(k)
        if not keep:
            return
        faces = faces[keep]
        mel = mel_windows(self._mel, plan.fps_value, batch.out_index[keep], MEL_STEP)
        img = torch.from_numpy(faces).to(plan.device).permute(0, 3, 1, 2).float() / 255.0
        masked = img.clone()
        masked[:, :, IMG_SIZE // 2 :] = 0
        with torch.inference_mode():
            pred = model(mel.to(plan.device), torch.cat([masked, img], dim=1))
        pred_np = (pred.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).byte().cpu().numpy()
        for j, k in enumerate(keep):
            x0, y0, x1, y1 = rects[k]
            patch = cv2.resize(pred_np[j], (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            self._paste_bgr(patch, y_pl[k], u_pl[k], v_pl[k], x0, y0, x1, y1)

    @staticmethod
    def _crop_bgr(
        y: np.ndarray, u: np.ndarray, v: np.ndarray, x0: int, y0: int, x1: int, y1: int
    ) -> np.ndarray:
        """BGR image of one even-aligned rectangle of a yuv420p frame (only that region)."""
        w, h = x1 - x0, y1 - y0
        packed = np.empty((h * 3 // 2, w), dtype=np.uint8)
        packed[:h] = y[y0:y1, x0:x1]
        flat = packed[h:].reshape(-1)
        quarter = (h // 2) * (w // 2)
        flat[:quarter] = u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
        flat[quarter:] = v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].reshape(-1)
        return cv2.cvtColor(packed, cv2.COLOR_YUV2BGR_I420)

    @staticmethod
    def _paste_bgr(
        bgr: np.ndarray,
        y: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        x0: int,
        y0: int,
        x1: int,
        y1: int,
    ) -> None:
        """Write a BGR patch back into an even-aligned rectangle of the Y, U, V planes."""
        w, h = x1 - x0, y1 - y0
        packed = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (h * 3 / 2, w)
        y[y0:y1, x0:x1] = packed[:h]
        flat = packed[h:].reshape(-1)
        quarter = (h // 2) * (w // 2)
        u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = flat[:quarter].reshape(h // 2, w // 2)
        v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = flat[quarter:].reshape(h // 2, w // 2)
