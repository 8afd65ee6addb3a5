"""The measures of bench/sync.py (bench/sync_media.py) on synthetic signals and pictures whose
answer is known: a shifted signal, a tone burst, a hard and a feathered paste."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# The benches are scripts (bench/ has no package): import the module the way they do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import sync_media
import sync_tiles

RATE, FPS = 16000, 25


def speechlike(n: int, seed: int = 3) -> np.ndarray:
    """A slowly varying positive signal (syllable-like bumps), ``n`` frames."""
    rng = np.random.default_rng(seed)
    return np.convolve(rng.random(n) ** 3, np.hanning(7), mode="same")


@pytest.mark.parametrize("shift", [0, 3, -5])
def test_lag_finder_recovers_a_known_shift(shift):
    loud = speechlike(200)
    mouth = np.roll(loud, shift)  # mouth[t] = loud[t - shift]: the mouth follows by `shift`
    mouth = mouth + np.random.default_rng(1).normal(0, 0.02 * loud.std(), loud.size)
    rs = sync_media.lagged_r(mouth, loud, max_lag=8)
    lag, r = sync_media.best_lag(rs)
    assert lag == shift
    assert r > 0.95
    if shift:
        assert rs[0] < r - 0.1  # at lag 0 the shifted mouth reads clearly worse


def test_lag_finder_ignores_missing_frames_and_anticorrelation():
    loud = speechlike(150)
    mouth = -np.roll(loud, 2)
    mouth[[10, 40, 41, 90]] = np.nan  # frames without a face
    rs = sync_media.lagged_r(mouth, loud)
    assert rs[2] == pytest.approx(-1.0, abs=1e-9)
    lag, r = sync_media.best_lag(rs)
    assert lag != 2 and r < 0.5
    assert math.isnan(sync_media.pearson(np.ones(20), loud[:20]))


def test_loudness_of_a_tone_burst_is_high_during_it_and_at_the_floor_outside():
    t = np.arange(int(3 * RATE)) / RATE
    burst = (t >= 1.0) & (t < 2.0)
    samples = np.where(burst, 0.5 * np.sin(2 * np.pi * 220 * t), 0.0)
    db, floor = sync_media.frame_loudness(samples, RATE, FPS, 80)  # 5 frames past the end
    assert floor == sync_media.MIN_DB
    # A sine of amplitude 0.5 has an RMS of 0.354: -9.0 dBFS.
    assert db[26:49] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.1)
    assert np.all(db[:25] == floor) and np.all(db[50:] == floor)


def test_loudness_floor_is_the_noise_of_the_pauses():
    rng = np.random.default_rng(5)
    t = np.arange(int(3 * RATE)) / RATE
    noise = rng.normal(0, 10 ** (-45 / 20), t.size)  # -45 dBFS hiss
    samples = noise + np.where((t >= 1) & (t < 2), 0.3 * np.sin(2 * np.pi * 300 * t), 0)
    db, floor = sync_media.frame_loudness(samples, RATE, FPS, 75)
    assert -46.5 < floor < -44.5
    assert db[:25].max() - floor < 1.5
    assert db[30:45].min() > floor + 30


def texture(h: int = 200, w: int = 260, seed: int = 0) -> np.ndarray:
    """A grey, skin-like textured picture (blurred noise, mean ~120)."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    return np.clip(120 + 12 * noise / noise.std(), 0, 255).astype(np.uint8)


def paste(src: np.ndarray, *, feather: float) -> np.ndarray:
    """``src`` with a brighter (+40) 90 x 120 patch of texture pasted in the middle, its edge
    hard (``feather`` 0) or blended over ~``feather`` pixels."""
    patch = texture(seed=1).astype(np.float32) + 40
    alpha = np.zeros(src.shape, np.float32)
    alpha[55:145, 70:190] = 1
    if feather:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    out = src * (1 - alpha) + patch * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def test_seam_is_high_for_a_hard_paste_and_low_for_a_feathered_one():
    src = texture()
    hard, soft = paste(src, feather=0), paste(src, feather=8)
    hard_region = sync_media.modified_region(hard, src)
    soft_region = sync_media.modified_region(soft, src)
    assert hard_region is not None and soft_region is not None
    # The hard paste's region is its rectangle.
    ys, xs = np.nonzero(hard_region)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (55, 144, 70, 189)
    hard_ratio = sync_media.seam_ratio(hard, hard_region)
    soft_ratio = sync_media.seam_ratio(soft, soft_region)
    assert hard_ratio > 2.5
    assert soft_ratio < 1.4


def test_no_region_when_only_coding_noise_differs():
    src = texture()
    rng = np.random.default_rng(2)
    noisy = np.clip(src + rng.normal(0, 2, src.shape), 0, 255).astype(np.uint8)
    assert sync_media.modified_region(noisy, src) is None
    assert sync_media.mean_abs_change(noisy, src, (0, 0, 260, 200)) < 2.5


def test_spread_pick_keeps_frames_apart():
    order = np.array([10, 11, 12, 30, 9, 50, 31, 70])
    assert sync_media.spread_pick(order, 4, apart=3) == [10, 30, 50, 70]


def test_sheet_frames_are_the_loudest_apart_and_pauses_spread_out():
    loudness = np.array([-60, -60, -10, -11, -60, -12, -30, -60, -60, -9, -60, -60], float)
    usable = np.ones(12, bool)
    usable[9] = False  # no face there
    quiet = loudness <= -60
    loud, pauses = sync_tiles.pick_frames(loudness, usable, quiet, 2, 3)
    assert loud == [2, 5]  # 9 is unusable, 3 too close to 2
    assert pauses == [4, 7, 10]  # of the pauses 0 1 4 7 8 10 11, evenly inside
    assert sync_tiles.pick_frames(loudness, usable, np.zeros(12, bool), 1, 2) == ([2], [])


def test_difference_shows_where_and_how_much_a_frame_changed():
    src = np.full((20, 30, 3), 100, np.uint8)
    out = src.copy()
    out[5:10, 5:10] = 132  # +32 grey levels: half of full scale
    out[12:15, 20:25, 1] = 255  # one channel far off: white
    diff = sync_tiles.difference(out, src)
    assert diff.shape == src.shape and (diff[..., 0] == diff[..., 2]).all()
    assert diff[0, 0, 0] == 0 and abs(int(diff[7, 7, 0]) - 127) <= 1 and diff[13, 22, 0] == 255


def test_sheet_lays_labelled_cells_out_in_rows_under_a_title():
    cell = sync_tiles.labelled(np.zeros((30, 40, 3), np.uint8), "f12 -13 dB")
    assert cell.shape == (30 + sync_tiles.BAR, 40, 3)
    assert cell[: sync_tiles.BAR].max() > 200  # white text on the black bar
    sheet = sync_tiles.sheet([[cell, cell, cell], [cell]], "title\nsubtitle", gap=4)
    # The widest row sets the width; rows and cells are 4 px apart; a title bar per line on top.
    top = 2 * sync_tiles.BAR
    assert sheet.shape == (top + 2 * cell.shape[0] + 4, 3 * 40 + 2 * 4, 3)
    assert (sheet[top + cell.shape[0] : top + cell.shape[0] + 4] == 255).all()
