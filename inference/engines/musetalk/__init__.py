"""MuseTalk 1.5 (Zhang et al., 2024): lip sync by one latent-UNet pass per frame, from a user's
model folder in the release layout (``MUSETALK_DIR``).

* :mod:`.blending` - the 256x256 crop box, the feathered lower-face mask, YUV crop and paste;
* :mod:`.models` - loading the UNet, the VAE and Whisper, and the math between them;
* :mod:`.engine` - :class:`MuseTalkEngine` and the per-avatar latents it can reuse.

None of the release's code is used; its numbers are (see :mod:`.models`).
"""

from __future__ import annotations

from inference.engines.musetalk.blending import crop_boxes, lower_face_masks
from inference.engines.musetalk.engine import AvatarLatents, MuseTalkEngine
from inference.engines.musetalk.models import MuseTalkModels, load_models

__all__ = [
    "AvatarLatents",
    "MuseTalkEngine",
    "MuseTalkModels",
    "crop_boxes",
    "load_models",
    "lower_face_masks",
]
