"""The Wav2Lip engine: crop from the landmarks, run the generator per batch, blend it back.

Per output frame: the smoothed crop of its source frame (:mod:`~inference.engines.wav2lip.crops`)
is taken from the Y, U and V planes and converted to BGR - only that crop - and resized to
96 x 96; its lower half is masked; the model sees the masked and the reference crop (6 channels,
0..1) with the 80 x 16 mel window of that frame, and the predicted 96 x 96 face is resized back
to the crop and blended into the planes through the frame's lower-face mask
(:mod:`~inference.engines.wav2lip.blending`).
"""

from __future__ import annotations

import os
from typing import ClassVar

import cv2
import numpy as np
import torch

from inference.audio import mel_windows, wav2lip_mel
from inference.catalog import SPECS, checkpoint_problem, resolve_checkpoint
from inference.engines.base import Engine, RenderPlan
from inference.engines.pipeline import FrameBatch
from inference.engines.wav2lip.blending import crop_bgr, lower_face_mask, paste_bgr
from inference.engines.wav2lip.crops import CropTrack, even_rects
from inference.engines.wav2lip.model import IMG_SIZE, MEL_STEP, Wav2Lip, load_wav2lip

#: Crops smaller than this (px, either side) are left alone: no face to speak of.
MIN_CROP = 4


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
        self._crops = CropTrack()

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
        """Load the model, compute the whole clip's mel spectrogram, and start the crop track:
        from the prepared avatar's landmarks when there is one (every window complete), else
        empty (filled from the batches)."""
        self.model(plan.device)
        self._mel = wav2lip_mel(plan.samples, plan.device)
        prepared = plan.prepared
        self._crops = CropTrack(prepared.landmarks if prepared is not None else None)

    def crop_rects(self, plan: RenderPlan, batch: FrameBatch) -> np.ndarray:
        """The even-aligned crop rectangles ``(n, 4)`` int ``[x0, y0, x1, y1]`` of ``batch``'s
        frames: their source frames' smoothed boxes, clipped to the frame."""
        assert batch.landmarks is not None
        self._crops.observe(batch.src_index, batch.landmarks)
        return even_rects(self._crops.boxes(batch.src_index), plan.width, plan.height)

    def predict(
        self, plan: RenderPlan, batch: FrameBatch
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's faces for ``batch`` (one forward pass): ``(rows, rects, faces)``, the
        batch rows that have a usable crop, their crop rectangles ``(m, 4)`` and the predicted
        96 x 96 BGR faces ``(m, 96, 96, 3)`` uint8."""
        assert self._mel is not None
        model = self.model(plan.device)
        y_pl, u_pl, v_pl = batch.planes()
        rects = self.crop_rects(plan, batch)
        sizes = rects[:, 2:] - rects[:, :2]
        rows = np.flatnonzero((sizes >= MIN_CROP).all(axis=1))
        if not len(rows):
            return rows, rects[rows], np.zeros((0, IMG_SIZE, IMG_SIZE, 3), np.uint8)
        faces = np.stack(
            [
                cv2.resize(
                    crop_bgr(y_pl[k], u_pl[k], v_pl[k], rects[k]),
                    (IMG_SIZE, IMG_SIZE),
                    interpolation=cv2.INTER_AREA,
                )
                for k in rows
            ]
        )
        mel = mel_windows(self._mel, plan.fps_value, batch.out_index[rows], MEL_STEP)
        img = torch.from_numpy(faces).to(plan.device).permute(0, 3, 1, 2).float() / 255.0
        masked = img.clone()
        masked[:, :, IMG_SIZE // 2 :] = 0
        with torch.inference_mode():
            pred = model(mel.to(plan.device), torch.cat([masked, img], dim=1))
        pred_np = (pred.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).byte().cpu().numpy()
        return rows, rects[rows], pred_np

    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Regenerate the lower faces of ``batch`` (:meth:`predict`) and blend each one back
        through its frame's lower-face mask."""
        assert batch.landmarks is not None
        rows, rects, faces = self.predict(plan, batch)
        y_pl, u_pl, v_pl = batch.planes()
        for k, rect, face in zip(rows, rects, faces, strict=True):
            x0, y0, x1, y1 = (int(c) for c in rect)
            patch = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            alpha = lower_face_mask(batch.landmarks[k], rect)
            paste_bgr(patch, alpha, y_pl[k], u_pl[k], v_pl[k], rect)
