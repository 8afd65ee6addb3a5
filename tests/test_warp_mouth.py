"""What the warp engine's opened mouth shows, on a large still face (no video, pixel-exact): the
mouth opens under the avatar's upper teeth, its own teeth show above and below the cavity, the
cavity is shaded darker towards the back, and no pale streak of teeth or lip is left across it
towards the corners.

The frames are scikit-image's astronaut (smiling, teeth showing) and the same face with its
lips closed, 576 x 576, as yuv420p planes; places in the mouth are found with the engine's own
mouth geometry (:mod:`inference.engines.warp.geometry`) from the face mesh's landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from inference.engines.warp.engine import amounts, warp_frames
from inference.engines.warp.field import LOWER_REACH, TEAR_BAND
from inference.engines.warp.geometry import (
    INNER_LOWER,
    INNER_UPPER,
    KNOTS,
    SPLIT_LINE,
    MouthFrames,
    lip_colour,
    mouth_frames,
)
from inference.engines.warp.interior import RED, kept_weight, paleness
from inference.engines.warp.teeth import find_split
from inference.face import find_face_rgb
from tests.inference.conftest import close_mouth, talking_head

SIZE = 576
CPU = torch.device("cpu")


class Face:
    """One still frame as planes ``(1, h, w)`` / ``(1, h/2, w/2)``, its landmarks and lip."""

    def __init__(self, rgb: np.ndarray) -> None:
        face = find_face_rgb(rgb)
        assert face is not None
        self.points = face.points[None, :, :2].astype(np.float32)
        i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        h, w = rgb.shape[:2]
        self.y = i420[:h][None].copy()
        self.u = i420[h : h + h // 4].reshape(1, h // 2, w // 2).copy()
        self.v = i420[h + h // 4 :].reshape(1, h // 2, w // 2).copy()
        self.lip = lip_colour(self.points, self.y, self.u, self.v, np.array([0]))[0]

    def geometry(self) -> MouthFrames:
        """The mouth as the engine measures it, split line found on the pixels."""
        geom = mouth_frames(self.points)
        find_split(geom, self.y, self.u, self.v, np.array([0]), self.lip[None])
        return geom

    def opened(self, opening: float) -> tuple[np.ndarray, np.ndarray]:
        """The Y and V planes ``(h, w)``, ``(h/2, w/2)`` with the mouth opened that much."""
        y, u, v = self.y.copy(), self.u.copy(), self.v.copy()
        warp_frames(y, u, v, np.array([0]), self.points, np.array([opening]), np.zeros(1), CPU)
        return y[0], v[0]


def sample(geom: MouthFrames, u: np.ndarray, v: np.ndarray, y: np.ndarray, v_pl: np.ndarray):
    """Y and V of the frame at mouth coordinates ``u``, ``v`` (same shape, nearest pixel)."""
    xy = geom.to_frame(u[None], v[None])[0]
    xs = np.clip(np.rint(xy[..., 0]).astype(int), 0, y.shape[1] - 1)
    ys = np.clip(np.rint(xy[..., 1]).astype(int), 0, y.shape[0] - 1)
    return y[ys, xs].astype(float), v_pl[ys // 2, xs // 2].astype(float)


def teeth_like(luma: np.ndarray, red: np.ndarray, lip: np.ndarray) -> np.ndarray:
    """Brighter than the lip and clearly less red: what the engine takes for teeth."""
    return (luma > lip[0]) & (lip[2] - red > RED[1])


def columns(geom: MouthFrames, low: float, high: float) -> np.ndarray:
    """Knot indices whose ``u`` is between ``low`` and ``high`` inner half widths from the
    mouth's middle (either side)."""
    u = geom.knots_start[0] + geom.knots_step[0] * np.arange(KNOTS)
    across = np.abs(u) / geom.inner_half[0]
    return np.flatnonzero((across >= low) & (across <= high))


@pytest.fixture(scope="module")
def smile() -> Face:
    return Face(talking_head(SIZE))


@pytest.fixture(scope="module")
def closed() -> Face:
    return Face(close_mouth(talking_head(SIZE)))


def test_the_mouth_opens_under_the_upper_teeth(smile: Face, closed: Face) -> None:
    geom = smile.geometry()
    knots = columns(geom, 0.0, 0.5)
    u = (geom.knots_start[0] + geom.knots_step[0] * knots).astype(float)
    split = geom.tables[0, SPLIT_LINE, knots].astype(float)
    gap = geom.tables[0, INNER_LOWER, knots] - geom.tables[0, INNER_UPPER, knots]
    above = teeth_like(*sample(geom, u, split - 2, smile.y[0], smile.v[0]), smile.lip)
    below = teeth_like(*sample(geom, u, split + 2, smile.y[0], smile.v[0]), smile.lip)
    # Teeth just above the line, none just under it: the line is their biting edge, low in
    # the gap the mesh reports (its lower contour runs a little into the lower lip).
    assert above.mean() > 0.8 and below.mean() < 0.2
    frac = (split - geom.tables[0, INNER_UPPER, knots]) / gap
    assert 0.6 < np.median(frac) < 0.97
    # A closed mouth shows no teeth: the line stays where the lips meet (the prior).
    closed_geom = mouth_frames(closed.points)
    prior = closed_geom.tables[0, SPLIT_LINE].copy()
    find_split(closed_geom, closed.y, closed.u, closed.v, np.array([0]), closed.lip[None])
    assert np.array_equal(closed_geom.tables[0, SPLIT_LINE], prior)


def test_the_opened_mouth_shows_upper_and_lower_teeth(smile: Face, closed: Face) -> None:
    counts = {}
    for name, face in (("smile", smile), ("closed", closed)):
        geom = face.geometry()
        amt = amounts(geom, np.ones(1), np.zeros(1))
        luma, red = face.opened(1.0)
        knots = columns(geom, 0.0, LOWER_REACH[0])
        u = (geom.knots_start[0] + geom.knots_step[0] * knots).astype(float)
        split = geom.tables[0, SPLIT_LINE, knots].astype(float)
        bottom = geom.tables[0, INNER_LOWER, knots].astype(float) + amt.drop[0]
        # Upper teeth: just above the split line, lifted with the upper lip.
        upper = teeth_like(*sample(geom, u, split - amt.lift[0] - 2, luma, red), face.lip)
        # Lower teeth: just above the dropped lower lip.
        lower = teeth_like(*sample(geom, u, bottom - 3, luma, red), face.lip)
        # Between them, the cavity.
        middle = teeth_like(*sample(geom, u, (split + bottom) / 2, luma, red), face.lip)
        counts[name] = (upper.mean(), lower.mean(), middle.mean())
    upper, lower, middle = counts["smile"]
    assert upper > 0.8 and lower > 0.5 and middle < 0.1, counts
    # A closed mouth has no teeth to show, above or below.
    assert max(counts["closed"]) < 0.1, counts


def test_the_cavity_is_darker_towards_the_back(closed: Face) -> None:
    geom = closed.geometry()
    amt = amounts(geom, np.ones(1), np.zeros(1))
    luma, _ = closed.opened(1.0)
    knots = columns(geom, 0.0, 0.4)
    u = (geom.knots_start[0] + geom.knots_step[0] * knots).astype(float)
    split = geom.tables[0, SPLIT_LINE, knots].astype(float)
    top = split - amt.lift[0] + TEAR_BAND
    bottom = split + amt.drop[0] - TEAR_BAND
    depth = bottom - top

    def mean_luma(at: float) -> float:
        return float(sample(geom, u, top + at * depth, luma, luma)[0].mean())

    upper, middle, lower = mean_luma(0.2), mean_luma(0.5), mean_luma(0.8)
    # Dark under the palate, lighter towards the floor (the tongue), all darker than the lip.
    assert upper < middle < lower < closed.lip[0] - 40, (upper, middle, lower)
    assert upper < 16 + 0.15 * (closed.lip[0] - 16)
    # Darker towards the corners too (the cheeks' shadow), at the same depth.
    side = columns(geom, 0.6, 0.75)
    us = (geom.knots_start[0] + geom.knots_step[0] * side).astype(float)
    s_split = geom.tables[0, SPLIT_LINE, side].astype(float)
    s_top = s_split - amt.lift[0] * 0.5
    s_bottom = s_split + amt.drop[0] * 0.5
    side_luma = sample(geom, us, (s_top + s_bottom) / 2, luma, luma)[0].mean()
    assert side_luma < middle


def test_what_the_opened_mouth_keeps_of_the_avatars_lip_gap() -> None:
    """Which pixels of the avatar's own lip gap stay in the opened mouth (the rest is cavity).
    The streaks across opened corners were pixels kept where they did not belong: the ends and
    the soft biting edge of the upper teeth dropped with the jaw, lip lifted with the teeth."""
    lip = torch.tensor([[175.0, 120.0, 151.0]])  # the lower lip's Y, U, V
    kinds = {  # Y, V of typical pixels of a smile (the test avatar's values)
        "teeth": (225.0, 133.0),
        "soft edge": (190.0, 143.0),  # the upper teeth's biting edge, blurred into the lip
        "lip": (175.0, 152.0),
        "dark": (60.0, 140.0),
    }
    luma = torch.tensor([[[y for y, _ in kinds.values()]]])
    pale = paleness(torch.tensor([[[v for _, v in kinds.values()]]]), lip)

    def kept(below: float, near_split: float, central: float) -> dict[str, float]:
        maps = [torch.full_like(luma, x) for x in (below, near_split, central)]
        weights = kept_weight(luma, pale, *maps, lip[:, 0])[0, 0].tolist()
        return dict(zip(kinds, weights, strict=True))

    upper = kept(below=0, near_split=0, central=1)  # the upper part of the gap
    assert upper["teeth"] > 0.95 and upper["lip"] > 0.95 and upper["dark"] < 0.05
    near = kept(below=0, near_split=1, central=1)  # just above the split line
    assert near["teeth"] > 0.95 and near["lip"] < 0.05  # lip there is the lower lip's
    lower = kept(below=1, near_split=0, central=1)  # under the tear, mid-mouth
    assert lower["teeth"] > 0.95 and lower["lip"] > 0.95  # own lower teeth; the lower lip
    assert lower["soft edge"] < 0.5 and lower["dark"] < 0.05
    corner = kept(below=1, near_split=0, central=0)  # under the tear, towards the corners
    assert corner["teeth"] < 0.05 and corner["lip"] > 0.95 and corner["soft edge"] < 0.5
