"""Where Wav2Lip looks: the original's face box, rebuilt from the face mesh, smoothed over time.

The original (``inference.py``, ``face_detect``) crops each frame with the S3FD detector's box
plus ``pads = [0, 10, 0, 0]`` (10 px more at the bottom, so the chin is in: S3FD boxes often stop
just above it), then averages every box over a window of 5 frames (``get_smoothened_boxes``).
Here the box comes from the frame's 468 mesh points (:func:`face_boxes`):

- **top**: where an SSD face detector puts its box top, a little above the eyebrows: the upper
  edge of the eyebrows raised by a quarter of the forehead (the eyebrows' line to landmark 10,
  the top of the mesh). On the astronaut test face (512 px picture) that is y = 80.9, exactly
  where our BlazeFace detector puts its box top (80.9), 5 px above the eyebrows (85.7) and 11 px
  below landmark 10 (69.7); the 96 x 96 input's middle row, where the model's masked lower half
  starts, then falls on the lower nose (130.7; nose base 133.9), as on the original's S3FD
  crops, whose lower half is the mouth and chin;
- **bottom**: the chin (lowest face-oval point, landmark 152 on a frontal face) plus the
  original's 10 px pad, taken as :data:`CHIN_PAD` of the box height (10 px of a ~250 px S3FD
  box, a face in a 720p talking-head video; the MuseTalk engine uses the same fraction for its
  release's 10 px ``extra_margin``);
- **left, right**: the face oval's extremes (cheek to cheek: S3FD pads nothing sideways).

**Smoothing** (:func:`smooth_boxes`): each box is the mean of the boxes of source frames
``i - 2 .. i + 2``, indices clamped to the clip (the first frame counts three times in frame 0's
window). The original's window is ``i .. i + 4``, which runs two frames ahead of a moving face;
centring it removes that lead. A cut (the box jumps by more than :data:`CUT_JUMP` of its height
from one frame to the next: far beyond tracking jitter or head motion) ends the window as the
clip's ends do, so no crop is averaged between two shots (the original's would be, misplaced by
up to half the jump). Boxes are smoothed per *source* frame (avatar frame), before clipping to
the frame, so a frame the ping-pong shows again gets the same crop.

Batches reach the engine in order, but a window crosses batch borders. :class:`CropTrack` keeps
the raw boxes of every source frame seen so far; with a prepared avatar (what the job runner
always passes) it starts with all of them, from the prep's landmarks, so every window is
complete. Without one, the frames seen so far are all that is known: the last two frames of a
batch in the first forward pass clamp their window at the newest frame, exactly as the clip's
last frames do (the replayed passes know every frame and use the full window).
"""

from __future__ import annotations

import numpy as np

from inference.face import landmarks as lm

#: Frames per smoothing window (centred), as the original's ``T=5``.
SMOOTH_FRAMES = 5
#: Upper edge of each eyebrow (MediaPipe's FACEMESH_RIGHT/LEFT_EYEBROW, outer to inner).
EYEBROWS_TOP = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)
#: How far above the eyebrows the box starts, as a share of the forehead (eyebrows to
#: landmark 10). See the module docstring.
FOREHEAD_SHARE = 0.25
#: The original's bottom pad (10 px below an S3FD box ~250 px tall), as a share of the box height.
CHIN_PAD = 0.04
#: A box edge moving more than this share of the box height between two frames is a cut.
CUT_JUMP = 0.3

_OVAL = np.array(lm.FACE_OVAL)
_BROWS = np.array(EYEBROWS_TOP)


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """Crop boxes ``(n, 4)`` float64 ``[x0, y0, x1, y1]`` (frame px, not clipped) of the faces
    whose mesh points are ``landmarks`` ``(n, 468, 2 or 3)``: the original's padded S3FD box
    (see the module docstring)."""
    xy = np.asarray(landmarks, dtype=np.float64)[..., :2].reshape(-1, 468, 2)
    forehead, chin = xy[:, lm.FOREHEAD_TOP], xy[:, lm.CHIN]
    axis = forehead - chin  # up the face, so a tilted head is measured along itself
    up = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-6)
    brows = xy[:, _BROWS]
    forehead_height = np.einsum("nj,nj->n", forehead - brows.mean(axis=1), up).clip(0, None)
    raised = brows + (FOREHEAD_SHARE * forehead_height)[:, None, None] * up[:, None, :]
    oval = xy[:, _OVAL]
    top = raised[..., 1].min(axis=1)
    chin_y = oval[..., 1].max(axis=1)
    bottom = chin_y + CHIN_PAD * (chin_y - top)
    return np.stack([oval[..., 0].min(axis=1), top, oval[..., 0].max(axis=1), bottom], axis=1)


def smooth_boxes(boxes: np.ndarray, window: int = SMOOTH_FRAMES) -> np.ndarray:
    """Centred moving average of a box sequence ``(n, 4)`` over ``window`` frames (odd), the
    indices clamped at both ends (``[0, 0, 0, 1, 2]`` for the first frame of a 5-frame window)
    and at cuts (see the module docstring)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return _smoothed(boxes, np.arange(len(boxes)), window)


def _smoothed(raw: np.ndarray, src: np.ndarray, window: int = SMOOTH_FRAMES) -> np.ndarray:
    """The smoothed boxes of frames ``src`` of the box sequence ``raw`` (see above)."""
    n = len(raw)
    if n == 0 or not len(src):
        return np.zeros((len(src), 4))
    # A cut before frame k: the box moved by more than CUT_JUMP of its height from frame k - 1.
    height = np.maximum(raw[:, 3] - raw[:, 1], 1e-6)
    jump = np.abs(np.diff(raw, axis=0)).max(axis=1) > CUT_JUMP * np.minimum(height[1:], height[:-1])
    starts = np.concatenate([[0], np.flatnonzero(jump) + 1, [n]])  # NaN rows never jump
    shot = np.searchsorted(starts, src, side="right") - 1
    first, last = starts[shot], starts[shot + 1] - 1
    half = window // 2
    idx = np.clip(src[:, None] + np.arange(-half, half + 1)[None, :], first[:, None], last[:, None])
    frames = raw[idx]  # (len(src), window, 4); NaN rows: frames not seen (never in order)
    return np.nanmean(frames, axis=1) if np.isnan(frames).any() else frames.mean(axis=1)


def even_rects(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes ``[x0, y0, x1, y1]`` as int64 rectangles on even pixels (the chroma planes are half
    size), grown outwards to them and clipped to the ``width`` x ``height`` frame."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rect = np.stack(
        [
            np.floor(boxes[:, 0] / 2) * 2,
            np.floor(boxes[:, 1] / 2) * 2,
            np.ceil(boxes[:, 2] / 2) * 2,
            np.ceil(boxes[:, 3] / 2) * 2,
        ],
        axis=1,
    )
    rect[:, [0, 2]] = rect[:, [0, 2]].clip(0, width - width % 2)
    rect[:, [1, 3]] = rect[:, [1, 3]].clip(0, height - height % 2)
    return rect.astype(np.int64)


class CropTrack:
    """The smoothed crop box of every source frame of one render (see the module docstring).

    ``CropTrack(prepared_landmarks)`` knows every frame from the start; ``CropTrack()`` learns
    them from the batches (:meth:`observe`). :meth:`boxes` then gives the smoothed boxes of any
    frames observed (or prepared).
    """

    def __init__(self, landmarks: np.ndarray | None = None) -> None:
        self._raw = np.full((0, 4), np.nan)
        if landmarks is not None and len(landmarks):
            self._raw = face_boxes(landmarks)

    def __len__(self) -> int:
        return len(self._raw)

    def observe(self, src_index: np.ndarray, landmarks: np.ndarray) -> None:
        """Record the raw boxes of source frames ``src_index`` from their ``landmarks``."""
        src = np.asarray(src_index, dtype=np.int64)
        if not len(src):
            return
        end = int(src.max()) + 1
        if end > len(self._raw):
            grown = np.full((end, 4), np.nan)
            grown[: len(self._raw)] = self._raw
            self._raw = grown
        self._raw[src] = face_boxes(landmarks)

    def boxes(self, src_index: np.ndarray) -> np.ndarray:
        """Smoothed boxes ``(n, 4)`` float64 of source frames ``src_index`` (each must have been
        observed or prepared; frames past the last known one count as the last)."""
        src = np.minimum(np.asarray(src_index, dtype=np.int64), len(self._raw) - 1)
        return _smoothed(self._raw, src)
