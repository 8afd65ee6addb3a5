"""Tiles of ``bench/sync.py``: crops of output frames laid out with labels (numpy and OpenCV).

- :func:`pick_frames`: the loudest frames (spread out in time) and evenly spaced pause frames;
- :func:`labelled`: a crop with a caption bar above it;
- :func:`difference`: where an output differs from its avatar frame, as a picture (how far a
  paste reaches, and whether its edge is feathered or hard);
- :func:`sheet`: rows of labelled cells under a title, padded to one width.

Images are RGB ``(h, w, 3)`` uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# sync_media sits next to this module: bench/ is on sys.path when the benches run.
from sync_media import spread_pick

#: Caption bar height (px) and text scale.
BAR = 18
TEXT_SCALE = 0.42
#: Grey levels of change that read as white in :func:`difference`.
DIFF_FULL_SCALE = 64.0


def pick_frames(
    loudness: np.ndarray, usable: np.ndarray, quiet: np.ndarray, n_loud: int, n_quiet: int
) -> tuple[list[int], list[int]]:
    """``(loud, quiet)`` frame numbers: the ``n_loud`` loudest usable frames at least 3 frames
    apart, and ``n_quiet`` usable pause frames evenly spread over the clip's pauses."""
    order = np.argsort(-np.asarray(loudness), kind="stable")
    loud = spread_pick(order[np.asarray(usable)[order]], n_loud, apart=3)
    pauses = np.flatnonzero(np.asarray(quiet) & np.asarray(usable))
    if n_quiet <= 0 or pauses.size == 0:
        return loud, []
    picks = np.linspace(0, pauses.size - 1, min(n_quiet, pauses.size) + 2)[1:-1]
    return loud, [int(pauses[int(p + 0.5)]) for p in picks]


def labelled(img: np.ndarray, text: str, *, dark: bool = True) -> np.ndarray:
    """``img`` with a caption bar above it (white on black, or black on white)."""
    fg, bg = ((255, 255, 255), 0) if dark else ((0, 0, 0), 255)
    bar = np.full((BAR, img.shape[1], 3), bg, np.uint8)
    cv2.putText(bar, text, (4, BAR - 5), cv2.FONT_HERSHEY_SIMPLEX, TEXT_SCALE, fg, 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def difference(out: np.ndarray, src: np.ndarray) -> np.ndarray:
    """|out - src| (per pixel, largest channel) as a grey RGB picture, DIFF_FULL_SCALE white."""
    diff = np.abs(out.astype(np.int16) - src.astype(np.int16)).max(axis=2)
    grey = np.clip(diff * (255.0 / DIFF_FULL_SCALE), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def sheet(
    rows: Sequence[Sequence[np.ndarray]], title: str | None = None, gap: int = 4
) -> np.ndarray:
    """The cells of each row side by side, rows under each other (``gap`` px of white between
    everything), under a title bar per line of ``title`` when given."""
    lines = []
    for cells in rows:
        height = max(c.shape[0] for c in cells)
        padded = [np.pad(c, ((0, height - c.shape[0]), (0, gap), (0, 0)), constant_values=255)
                  for c in cells]  # fmt: skip
        lines.append(np.hstack(padded)[:, :-gap] if gap else np.hstack(padded))
    width = max(line.shape[1] for line in lines)
    blocks = [
        np.pad(line, ((0, gap), (0, width - line.shape[1]), (0, 0)), constant_values=255)
        for line in lines
    ]
    body = np.vstack(blocks)[:-gap] if gap else np.vstack(blocks)
    for line in reversed((title or "").splitlines()):
        body = labelled(body, line, dark=False)
    return body
