"""Face detection with MediaPipe's BlazeFace short-range model, run by OpenCV's dnn module.

The model looks at a 128 x 128 RGB image in [-1, 1] and scores 896 anchors (SSD layout:
16 x 16 cells x 2 anchors at stride 8, 8 x 8 cells x 6 anchors at stride 16), each with a box
and six keypoints (eyes, nose tip, mouth, ears) relative to the anchor. It is trained on faces
that fill a good part of the picture, so a frame is searched coarse to fine: first the whole
frame letterboxed, then square windows of the frame's height, then of half of it. The first
pass that sees a face large enough in its input to measure well decides, so a close-up costs
one ~2 ms inference, and a frame without a face ~30 ms (19 windows at 720p).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from inference.face.images import FaceImage
from inference.face.models import DETECTOR, load_net

INPUT_SIZE = 128
#: Keypoint order of the model (the subject's right eye is on the image's left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
#: MediaPipe's defaults: a face scores over 0.5; boxes overlapping over 0.3 are one face.
MIN_SCORE = 0.5
NMS_IOU = 0.3

#: A square part of the frame to search: ``(x0, y0, side)`` in frame pixels.
Window = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face found by the detector, in frame pixels."""

    score: float
    #: ``[x0, y0, x1, y1]``: the detector's box (about brows to chin, ear to ear).
    box: np.ndarray
    #: ``(6, 2)`` keypoints in :data:`KEYPOINTS` order.
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.box[3] - self.box[1])

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(cx, cy)``."""
        return float(self.box[0] + self.box[2]) / 2, float(self.box[1] + self.box[3]) / 2


@functools.cache
def ssd_anchors() -> np.ndarray:
    """Anchor centres ``(896, 2)`` in [0, 1], in the model's output order.

    MediaPipe's SsdAnchorsCalculator options for this model: 4 layers with strides 8, 16, 16,
    16; layers of equal stride share one grid, so the 16 x 16 grid gets 2 anchors per cell and
    the 8 x 8 grid 6; ``fixed_anchor_size`` makes every anchor 1 x 1 (offsets only).
    """
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = INPUT_SIZE // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
    anchors = np.concatenate(centres)
    assert anchors.shape == (896, 2)
    return anchors


def decode(scores: np.ndarray, regressors: np.ndarray) -> tuple[np.ndarray, ...]:
    """Raw outputs of one image -> ``(scores (n,), boxes (n, 4) [x0, y0, x1, y1], keypoints
    (n, 6, 2))`` in [0, 1] input coordinates, for the anchors scoring over :data:`MIN_SCORE`."""
    # float64: MediaPipe clips logits at +-100, whose exp overflows float32.
    logits = np.clip(scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    prob = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(prob >= MIN_SCORE)
    raw = regressors.reshape(-1, 16)[keep] / INPUT_SIZE
    anchors = ssd_anchors()[keep]
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    return prob[keep], boxes, keypoints


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou: float = NMS_IOU
) -> list[Detection]:
    """Merge overlapping candidates into faces (MediaPipe's WEIGHTED suppression).

    Each face takes the best candidate's score and the score-weighted mean of the boxes and
    keypoints of every candidate overlapping it: neighbouring anchors all see the same face,
    and averaging them steadies the box more than keeping only the best one.
    """
    order = np.argsort(-scores)
    scores, boxes, keypoints = scores[order], boxes[order], keypoints[order]
    faces = []
    remaining = np.arange(len(scores))
    while len(remaining):
        first = remaining[0]
        same = _iou(boxes[first], boxes[remaining]) > iou
        members = remaining[same]
        weights = scores[members][:, None]
        total = float(weights.sum())
        box = (boxes[members] * weights).sum(axis=0) / total
        points = (keypoints[members] * weights[:, :, None]).sum(axis=0) / total
        faces.append(Detection(float(scores[first]), box, points))
        remaining = remaining[~same]
    return faces


#: Faces under this many pixels of the model's input are left for a finer pass (the model
#: still fires on them, with poor boxes and scores).
MIN_RESOLVED_PX = 20


def search_windows(width: int, height: int) -> list[list[Window]]:
    """Square windows ``(x0, y0, side)`` to search, coarse to fine, one list per pass.

    Pass 1 is the whole frame (letterboxed); pass 2 squares of the short side across the long
    one; pass 3 squares of half the short side, so that a face of a tenth of the frame's
    height still spans ~25 px of the model's 128. Windows of a pass overlap by more than the
    largest face the pass before could not resolve, so every face is whole in one of them.
    """
    long_side, short_side = max(width, height), min(width, height)
    passes = [[((width - long_side) / 2, (height - long_side) / 2, float(long_side))]]
    previous = float(long_side)
    for side, wanted in ((float(short_side), long_side > short_side * 1.2),
                         (short_side / 2, short_side >= 2 * INPUT_SIZE)):  # fmt: skip
        if wanted:
            overlap = min(0.5, 1.15 * MIN_RESOLVED_PX / INPUT_SIZE * previous / side)
            passes.append(_tiles(width, height, side, overlap))
            previous = side
    return passes


def _tiles(width: int, height: int, side: float, overlap: float) -> list[Window]:
    def starts(extent: int) -> list[float]:
        if extent <= side:
            return [(extent - side) / 2]
        count = math.ceil((extent - side) / (side * (1 - overlap))) + 1
        return [float(x) for x in np.linspace(0.0, extent - side, count)]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


class BlazeFaceDetector:
    """Find faces in a :class:`FaceImage` (one OpenCV network per instance: not thread-safe).

    ``model_dir`` overrides the installed model folder.
    """

    def __init__(self, *, model_dir: Path | None = None) -> None:
        self._net = load_net(DETECTOR, model_dir)
        self._outputs = ["classificators", "regressors"]

    def run(self, image: FaceImage, windows: list[Window]) -> list[Detection]:
        """Faces found in the square ``windows`` ``(x0, y0, side)`` of ``image``, merged across
        windows, in frame pixels, best score first.

        A face cut by a window's edge inside the frame is dropped: the windows overlap, so a
        neighbour sees it whole (a cut face gives a shifted box that would spoil the merge).
        """
        found_scores, found_boxes, found_points = [], [], []
        for x0, y0, side in windows:
            crop = image.window(x0, y0, side, INPUT_SIZE)
            # NCHW float in [-1, 1]. One window per forward: a batch costs as much per image,
            # and the model's batched output interleaves its anchor layers.
            blob = crop.transpose(2, 0, 1)[None].astype(np.float32) * (2 / 255) - 1
            self._net.setInput(blob)
            scores, regressors = self._net.forward(self._outputs)
            s, boxes, points = decode(scores, regressors)
            whole = _inside_window(boxes, x0, y0, side, image.width, image.height)
            found_scores.append(s[whole])
            found_boxes.append(boxes[whole] * side + [x0, y0, x0, y0])
            found_points.append(points[whole] * side + [x0, y0])
        return weighted_nms(
            np.concatenate(found_scores),
            np.concatenate(found_boxes).reshape(-1, 4),
            np.concatenate(found_points).reshape(-1, 6, 2),
        )

    def candidates(self, image: FaceImage) -> Iterator[list[Detection]]:
        """Faces pass by pass (see :func:`search_windows`), largest first within a pass.

        Faces too small in a pass's input to be measured well are held back until the end,
        unless a finer pass finds them again. Callers stop when they have what they need, so
        the finer (costlier) passes run only when the coarse ones found nothing.
        """
        small: list[Detection] = []
        for windows in search_windows(image.width, image.height):
            side = windows[0][2]
            faces = self.run(image, windows)
            limit = MIN_RESOLVED_PX * side / INPUT_SIZE
            resolved = [f for f in faces if max(f.width, f.height) >= limit]
            small += [f for f in faces if max(f.width, f.height) < limit]
            if resolved:
                yield _largest_first(resolved)
        if small:
            yield _largest_first(small)

    def detect(self, image: FaceImage) -> Detection | None:
        """The main face: the largest of the first pass that finds any (None when none).

        Unverified: :func:`inference.face.find_face` also checks it with the mesh.
        """
        for faces in self.candidates(image):
            return faces[0]
        return None


def _largest_first(faces: list[Detection]) -> list[Detection]:
    return sorted(faces, key=lambda f: -f.width * f.height)


def _inside_window(
    boxes: np.ndarray, x0: float, y0: float, side: float, width: int, height: int
) -> np.ndarray:
    """Mask of boxes (window units) not crossing an edge of the window that lies inside the
    frame (edges on or beyond the frame's border cut nothing)."""
    keep = np.ones(len(boxes), dtype=bool)
    if x0 > 0:
        keep &= boxes[:, 0] > 0
    if y0 > 0:
        keep &= boxes[:, 1] > 0
    if x0 + side < width:
        keep &= boxes[:, 2] < 1
    if y0 + side < height:
        keep &= boxes[:, 3] < 1
    return keep
