"""Wav2Lip (Prajwal et al., 2020): the released 96x96 generator, driven by a user's checkpoint,
placed by the face mesh.

- :mod:`~inference.engines.wav2lip.model`: the generator as released and its checkpoint loader
  (``torch.load(weights_only=True)``);
- :mod:`~inference.engines.wav2lip.crops`: the original's padded S3FD face box rebuilt from the
  landmarks, averaged over 5 frames;
- :mod:`~inference.engines.wav2lip.blending`: the feathered lower-face mask and the crop / blend
  on the yuv420p planes;
- :mod:`~inference.engines.wav2lip.engine`: :class:`Wav2LipEngine`.
"""

from __future__ import annotations

from inference.engines.wav2lip.blending import lower_face_mask, paste_bgr
from inference.engines.wav2lip.crops import CropTrack, face_boxes, smooth_boxes
from inference.engines.wav2lip.engine import Wav2LipEngine
from inference.engines.wav2lip.model import (
    IMG_SIZE,
    MEL_STEP,
    Wav2Lip,
    load_wav2lip,
    release_state_dict,
)

__all__ = [
    "IMG_SIZE",
    "MEL_STEP",
    "CropTrack",
    "Wav2Lip",
    "Wav2LipEngine",
    "face_boxes",
    "load_wav2lip",
    "lower_face_mask",
    "paste_bgr",
    "release_state_dict",
    "smooth_boxes",
]
