"""Benchmark: how well an engine's lips follow the voice, judged by the face landmark model.

Makes three 1280x720 25 fps test avatars from scikit-image's astronaut (face ~40% of the
height): smiling with teeth, the same with the mouth closed, and the smiling one drifting (a
slow pan and zoom, ~2-3 px per frame); and two sentences of espeak-ng speech with pauses,
English and Mandarin (tone-numbered pinyin). Renders every avatar with every sentence through
the engine, then reads each output frame with the 468-point face mesh and prints, per video:

* the lip opening (inner-lip gap 13-14 over the mouth width) per frame, and its Pearson r with
  the voice's loudness per frame (RMS dB over the frame's window, floored at the noise level)
  at lag 0 and at the best lag within +-8 frames (positive: the mouth moves after the voice);
  the same r on the untouched avatar, as the baseline of the judge itself;
* the mouth box's mean absolute change (grey levels) against the avatar frame the output frame
  came from, in loud frames (and in the pauses);
* the seam at the border of the changed region: gradient across the border over the gradient
  just inside and outside it (~1 seamless; a hard rectangular paste reads well above 1).

LAST line: ``sync r: X.XX lag: N frames``, the worst video's r at lag 0 and its best lag.

    python bench/sync.py [--engine warp] [--seconds S] [--out DIR] [--tiles DIR]
                         [--avatars smile,closed,drift] [--docs DIR] [--crop mouth|face]
    python bench/sync.py --engine wav2lip --random-weights --avatars smile --docs docs/sync

``--tiles`` writes detailed mouth tiles per avatar; ``--docs`` one summary sheet per avatar
(``<engine>-<avatar>.png``: the avatar, pauses, loud frames, and where the loudest differs
from its avatar frame). ``--random-weights`` runs wav2lip or musetalk with tiny random weights
made on the fly (no checkpoint): its sheet (``<engine>-blend.png``) shows where the prediction
is pasted and how it is blended, not lip sync.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# sync_media sits next to this script: bench/ is sys.path[0] when it runs.
import sync_media as sm
import sync_tiles as st

from inference import ffmpeg_bin
from inference.audio import SAMPLE_RATE, load_audio
from inference.catalog import DEFAULT_ENGINE
from inference.errors import EngineUnavailable
from inference.face import FaceImage, FaceTracker, find_face_rgb
from inference.face import landmarks as lm
from inference.media import FrameReader, probe, yuv_planes

if TYPE_CHECKING:
    from inference.engines.base import Engine

WIDTH, HEIGHT, FPS = 1280, 720, 25
#: Forehead-to-chin height of the face as a fraction of the frame height.
FACE_SHARE = 0.40
MAX_LAG = 8
#: Loud frames: within this many dB of the clip's 95th percentile. Pauses: within 1 dB of the
#: floor.
LOUD_WITHIN_DB = 10.0
#: Tiles: frames per row, and each crop's size.
TILE_FRAMES = 6
CROP_W, CROP_H = 176, 124
#: The summary sheets (``--docs``): loud and pause frames per language, each crop this large.
SHEET_LOUD, SHEET_QUIET = 4, 2
SHEET_W, SHEET_H = 264, 186

#: espeak-ng voice, speed (words per minute), text. espeak-ng 1.51's ``cmn`` voice reads tone
#: numbers aloud ("ni three"); ``cmn-latn-pinyin`` reads them as tones.
SENTENCES = {
    "en": ("en", "170", "Hello, and welcome. The weather is warm today... See you soon!"),
    "cmn": (
        "cmn-latn-pinyin",
        "170",
        "ni3 hao3, huan1 ying2 ni3. jin1 tian1 tian1 qi4 hen3 hao3. ming2 tian1 jian4!",
    ),
}
#: Silence after each sentence (and between repeats when ``--seconds`` asks for more).
TAIL_SECONDS = 0.4


def run(cmd: list[str]) -> None:
    """Run a command, failing loudly with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd[:6])} ...\n{proc.stderr.decode(errors='replace')}")


# --------------------------------------------------------------------------- test avatars


@dataclass
class Scene:
    """The astronaut scaled so her face fills FACE_SHARE of the frame height; frames are
    windows of ``image`` at an offset (and zoom about the face)."""

    image: np.ndarray  # RGB, larger than the frame
    face_xy: tuple[float, float]  # face centre in ``image``

    @classmethod
    def astronaut(cls) -> Scene:
        from skimage import data

        still = data.astronaut()
        face = find_face_rgb(still)
        if face is None:
            sys.exit("the face model finds no face in the astronaut (are the models installed?)")
        scale = FACE_SHARE * HEIGHT / lm.face_height(face.points)
        image = cv2.resize(still, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        cx, cy = face.xy[[lm.FOREHEAD_TOP, lm.CHIN]].mean(axis=0) * scale
        return cls(image, (float(cx), float(cy)))

    def frame(self, dx: float = 0.0, dy: float = 0.0, zoom: float = 1.0) -> np.ndarray:
        """The 1280x720 window at offset ``(dx, dy)``, zoomed by ``zoom`` about the face."""
        cx, cy = self.face_xy
        m = np.array([[zoom, 0, cx - zoom * cx + dx], [0, zoom, cy - zoom * cy + dy]])
        return cv2.warpAffine(
            self.image, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )


def close_mouth(rgb: np.ndarray) -> np.ndarray:
    """The same face with the lips closed over the teeth.

    Along each column of the mouth the lower lip (from the inner-lip contour down, and the chin
    under it, tapering to nothing 0.6 mouth widths below the lower lip) is pulled up until its
    inner edge meets the upper lip's inner edge; the teeth between the two inner contours are
    covered by lip, and a soft darker line is drawn where the lips meet. (Painting the inner
    region with lip colour instead left a pale band that the face mesh still read as a gap of
    0.14 mouth widths, against 0.17 with the teeth; this reads ~0.06.)
    """
    face = find_face_rgb(rgb)
    if face is None:
        sys.exit("no face found to close the mouth of")
    xy = face.xy.astype(np.float64)
    width = lm.mouth_width(face.points)

    def contour(indices: tuple[int, ...], xs: np.ndarray) -> np.ndarray:
        pts = xy[list(indices)]
        order = np.argsort(pts[:, 0])
        return np.interp(xs, pts[order, 0], pts[order, 1])

    x0 = int(np.floor(xy[list(lm.OUTER_LIP), 0].min()))
    x1 = int(np.ceil(xy[list(lm.OUTER_LIP), 0].max()))
    xs = np.arange(x0, x1 + 1, dtype=np.float64)
    upper = contour(lm.INNER_LIP_UPPER, xs)
    lower = np.maximum(contour(lm.INNER_LIP_LOWER, xs), upper)
    bottom = contour(lm.OUTER_LIP_LOWER, xs).max() + 0.6 * width
    rows = np.arange(rgb.shape[0], dtype=np.float64)[:, None]
    band = (rows >= upper) & (rows <= bottom)
    # Output row `upper` shows source row `lower`; row `bottom` shows itself; linear between.
    source_rows = lower + (rows - upper) * (bottom - lower) / np.maximum(bottom - upper, 1e-6)
    map_x, map_y = np.meshgrid(
        np.arange(rgb.shape[1], dtype=np.float32), np.arange(rgb.shape[0], dtype=np.float32)
    )
    map_y[:, x0 : x1 + 1] = np.where(band, source_rows, rows).astype(np.float32)
    closed = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR).astype(np.float32)
    line = np.zeros(rgb.shape[:2], np.float32)
    seam = np.round(np.stack([xs, upper], axis=1) * 4).astype(np.int32)
    cv2.polylines(line, [seam], False, 1.0, max(1, round(width * 0.015)), cv2.LINE_AA, shift=2)
    line = cv2.GaussianBlur(line, (0, 0), 1.0 + width * 0.01)
    return np.clip(closed * (1 - 0.3 * line[..., None]) + 0.5, 0, 255).astype(np.uint8)


def drifting(scene: Scene, n: int) -> Iterator[np.ndarray]:
    """``n`` frames of a slow pan (x +-40 px over 4 s, y +-15 px over 3 s: up to ~2.5 px per
    frame) and zoom (1.00-1.05 over 5 s)."""
    for i in range(n):
        t = i / FPS
        yield scene.frame(
            dx=-45 + 40 * math.sin(2 * math.pi * t / 4),
            dy=-20 + 15 * math.sin(2 * math.pi * t / 3 + 1),
            zoom=1.025 + 0.025 * math.sin(2 * math.pi * t / 5),
        )


def write_video(path: Path, frames: Iterable[np.ndarray]) -> None:
    """Encode RGB frames as H.264 yuv420p (CRF 18) at FPS, streamed through ffmpeg's stdin."""
    cmd = [
        ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
        "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError):
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    err = proc.stderr.read()
    if proc.wait() != 0:
        sys.exit(f"ffmpeg could not encode {path.name}:\n{err.decode(errors='replace')}")


#: The test avatars (:func:`make_avatars`).
AVATARS = ("smile", "closed", "drift")
#: The judge's own check: a video whose mouth opens with the voice this many frames late.
CHECK_LAG = 3


def make_avatars(folder: Path, seconds: float, speech: Path) -> tuple[dict[str, Path], Path]:
    """The three test avatars, ``seconds`` long ({name: path}), and the judge's check video:
    the closed avatar cross-faded to the smiling one by the loudness of ``speech``, CHECK_LAG
    frames late (a mouth that opens with the voice, known to lag)."""
    scene = Scene.astronaut()
    n = math.ceil(seconds * FPS)
    smile = scene.frame()
    closed = close_mouth(smile)
    avatars = {"smile": folder / "smile.mp4", "closed": folder / "closed.mp4"}
    write_video(avatars["smile"], (smile for _ in range(n)))
    write_video(avatars["closed"], (closed for _ in range(n)))
    avatars["drift"] = folder / "drift.mp4"
    write_video(avatars["drift"], drifting(scene, n))
    samples = load_audio(speech)
    loudness, floor = sm.frame_loudness(
        samples, SAMPLE_RATE, FPS, math.ceil(samples.size * FPS / SAMPLE_RATE)
    )
    opening = np.clip((loudness - floor) / max(loudness.max() - floor, 1e-6), 0, 1)
    opening = np.concatenate([np.zeros(CHECK_LAG), opening[:-CHECK_LAG]])
    check = folder / "check.mp4"
    a, b = closed.astype(np.float32), smile.astype(np.float32)
    write_video(check, (np.clip(a + (b - a) * x + 0.5, 0, 255).astype(np.uint8) for x in opening))
    return avatars, check


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if not found:
        sys.exit("espeak-ng is missing: apt-get install espeak-ng (the Makefile's TEST_DEBS)")
    return found


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(SAMPLE_RATE)
        fh.writeframes(pcm.tobytes())


def make_speech(folder: Path, language: str, seconds: float | None) -> Path:
    """The sentence in ``language`` as 16 kHz mono WAV with TAIL_SECONDS of silence after it;
    with ``seconds``, repeated (or cut, with a 50 ms fade) to exactly that long."""
    voice, speed, text = SENTENCES[language]
    raw = folder / f"speech-{language}-espeak.wav"
    run([espeak_binary(), "-v", voice, "-s", speed, "-g", "6", "-w", str(raw), text])
    once = np.concatenate([load_audio(raw), np.zeros(round(TAIL_SECONDS * SAMPLE_RATE))])
    raw.unlink()
    if seconds is None:
        samples = once
    else:
        total = round(seconds * SAMPLE_RATE)
        samples = np.tile(once, math.ceil(total / once.size))[:total].copy()
        fade = min(total, SAMPLE_RATE // 20)
        samples[total - fade :] *= np.linspace(1, 0, fade)
    path = folder / f"speech-{language}.wav"
    write_wav(path, samples.astype(np.float32))
    return path


# --------------------------------------------------------------------------- reading videos


def frames_of(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The ``(y, u, v)`` planes of each frame (copies)."""
    with FrameReader(path) as reader:
        for batch in reader.batches(16):
            ys, us, vs = yuv_planes(batch, reader.width, reader.height)
            for y, u, v in zip(ys, us, vs, strict=True):
                yield y.copy(), u.copy(), v.copy()


def to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def clamp_box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    return (
        max(0, round(x0)),
        max(0, round(y0)),
        min(WIDTH, round(x1)),
        min(HEIGHT, round(y1)),
    )


def mouth_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """The lips' box with room for a jaw that drops: 0.2 mouth widths to the sides and above,
    0.4 below."""
    xy = points[list(lm.OUTER_LIP), :2]
    w = lm.mouth_width(points)
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return clamp_box(x0 - 0.2 * w, y0 - 0.2 * w, x1 + 0.2 * w, y1 + 0.4 * w)


#: What the tiles show: the mouth and chin (the warp's work), or the lower face, cheek to
#: cheek and under the chin (where a pasted prediction's blend border lies).
CROP_KINDS = ("mouth", "face")


def tile_box(points: np.ndarray, kind: str = "mouth") -> tuple[int, int, int, int]:
    """A crop for the tiles (CROP_W:CROP_H): around the mouth, chin included, or (``kind``
    "face") the lower face from the eyes' level to under the chin."""
    if kind == "face":
        xy = points[:, :2]
        cx = float(xy[:, 0].min() + xy[:, 0].max()) / 2
        w = 1.25 * float(xy[:, 0].max() - xy[:, 0].min())
        h = w * CROP_H / CROP_W
        cy = float(points[lm.CHIN, 1]) + 0.12 * h - h / 2
        return clamp_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    cx, cy = lm.mouth_center(points)
    w = 1.9 * lm.mouth_width(points)
    h = w * CROP_H / CROP_W
    cy += 0.12 * w
    return clamp_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def face_window(points: np.ndarray) -> tuple[int, int, int, int]:
    """The face's box with a margin of 15% of its height: where the engines change things."""
    xy = points[:, :2]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    m = 0.15 * (y1 - y0)
    return clamp_box(x0 - m, y0 - m, x1 + m, y1 + m)


def crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box, resized to SHEET_W x SHEET_H (the detail tiles shrink it to CROP_W x CROP_H)."""
    x0, y0, x1, y1 = box
    return cv2.resize(rgb[y0:y1, x0:x1], (SHEET_W, SHEET_H), interpolation=cv2.INTER_AREA)


def small(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (CROP_W, CROP_H), interpolation=cv2.INTER_AREA)


@dataclass
class Source:
    """The avatar as decoded: grey frames, landmarks, gaps, tile crops."""

    grey: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray | None] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    crops: list[np.ndarray | None] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path, kind: str = "mouth") -> Source:
        """Decode and measure ``path``; tile crops of ``kind`` (see :func:`tile_box`)."""
        src = cls()
        tracker = FaceTracker(fps=FPS)
        for y, u, v in frames_of(path):
            tracker.update(FaceImage.from_yuv(y, u, v))
            face = tracker.raw  # unsmoothed: the judge must not add lag of its own
            src.grey.append(y)
            if face is None:
                src.points.append(None)
                src.gap.append(math.nan)
                src.crops.append(None)
                continue
            src.points.append(face.points.copy())
            src.gap.append(lm.lip_gap(face.points))
            src.crops.append(crop(to_rgb(y, u, v), tile_box(face.points, kind)))
        return src

    def index(self, out_frame: int) -> int | None:
        """The avatar frame output frame ``out_frame`` was made from: the same one, as the
        avatars outlast the speech (the engines would play a shorter avatar backwards).
        None past the avatar's end."""
        return out_frame if out_frame < len(self.grey) else None


@dataclass
class Verdict:
    """What the judge measured on one output video."""

    avatar: str
    language: str
    loudness: np.ndarray
    floor: float
    gap: np.ndarray  # per output frame, NaN where no face was found
    source_gap: np.ndarray  # the avatar frame's, per output frame
    change: np.ndarray  # mouth box mean |out - src|, per output frame
    seam: np.ndarray  # per output frame, NaN where nothing changed
    crops: list[tuple[np.ndarray, np.ndarray] | None]
    render_seconds: float = 0.0
    device: str = ""

    @property
    def loud(self) -> np.ndarray:
        return self.loudness >= np.percentile(self.loudness, 95) - LOUD_WITHIN_DB

    @property
    def quiet(self) -> np.ndarray:
        return self.loudness <= self.floor + 1.0

    def r(self) -> dict[int, float]:
        return sm.lagged_r(self.gap, self.loudness, MAX_LAG)

    @property
    def swing(self) -> float:
        """Mean lip gap in loud frames minus in the pauses (mouth widths): how far the mouth
        opens, which r does not say (a 2 px wobble can correlate as well as a real opening)."""
        return nanmean(self.gap[self.loud]) - nanmean(self.gap[self.quiet])


def judge(
    avatar: str, language: str, out: Path, source: Source, speech: Path, kind: str = "mouth"
) -> Verdict:
    """Read ``out`` frame by frame against its avatar and the voice (tile crops of ``kind``)."""
    gap, source_gap, change, seam = [], [], [], []
    crops: list[tuple[np.ndarray, np.ndarray] | None] = []
    tracker = FaceTracker(fps=FPS)
    for i, (y, u, v) in enumerate(frames_of(out)):
        tracker.update(FaceImage.from_yuv(y, u, v))
        face = tracker.raw  # unsmoothed, as for the avatar
        gap.append(lm.lip_gap(face.points) if face is not None else math.nan)
        s = source.index(i)
        points = None if s is None else source.points[s]
        source_gap.append(math.nan if s is None else source.gap[s])
        if s is None or points is None:
            change.append(math.nan)
            seam.append(math.nan)
            crops.append(None)
            continue
        change.append(sm.mean_abs_change(y, source.grey[s], mouth_box(points)))
        x0, y0, x1, y1 = face_window(points)
        region = sm.modified_region(y[y0:y1, x0:x1], source.grey[s][y0:y1, x0:x1])
        seam.append(sm.seam_ratio(y[y0:y1, x0:x1], region) if region is not None else math.nan)
        src_crop = source.crops[s]
        crops.append(
            None if src_crop is None else (crop(to_rgb(y, u, v), tile_box(points, kind)), src_crop)
        )
    loudness, floor = sm.frame_loudness(load_audio(speech), SAMPLE_RATE, FPS, len(gap))
    return Verdict(
        avatar,
        language,
        loudness,
        floor,
        np.array(gap),
        np.array(source_gap),
        np.array(change),
        np.array(seam),
        crops,
    )


def seam_calibration(source: Source) -> tuple[float, float]:
    """The seam measure on this avatar for a made-up paste of its mouth box, 12 grey levels
    brighter: ``(hard-edged, feathered)`` - what "a seam" and "no seam" read on these faces."""
    s = next(i for i, p in enumerate(source.points) if p is not None)
    points, grey = source.points[s], source.grey[s]
    assert points is not None
    x0, y0, x1, y1 = mouth_box(points)
    alpha = np.zeros(grey.shape, np.float32)
    alpha[y0:y1, x0:x1] = 1
    feathered = cv2.GaussianBlur(alpha, (0, 0), 0.08 * lm.mouth_width(points))
    wx0, wy0, wx1, wy1 = face_window(points)
    ratios = []
    for a in (alpha, feathered):
        pasted = np.clip(grey + 12 * a + 0.5, 0, 255).astype(np.uint8)
        win, ref = pasted[wy0:wy1, wx0:wx1], grey[wy0:wy1, wx0:wx1]
        region = sm.modified_region(win, ref)
        ratios.append(sm.seam_ratio(win, region) if region is not None else math.nan)
    return ratios[0], ratios[1]


# --------------------------------------------------------------------------- report and tiles


def fmt(x: float, spec: str = ".2f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def nanmean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def report(v: Verdict) -> None:
    n = v.gap.size
    rs = v.r()
    lag, r_best = sm.best_lag(rs)
    base = sm.pearson(v.source_gap, v.loudness)
    loud, quiet = v.loud, v.quiet
    seen = np.isfinite(v.gap)
    print(
        f"{v.avatar} / {v.language}: {n} frames ({n / FPS:.2f} s), face in {seen.sum()}/{n}; "
        f"loud {loud.sum()}, pauses {quiet.sum()} (floor {v.floor:.0f} dBFS); "
        f"rendered in {v.render_seconds:.1f} s on {v.device}"
    )
    gaps = v.gap[seen]
    print(
        f"  lip gap (13-14 / mouth width): loud {fmt(nanmean(v.gap[loud]), '.3f')}, "
        f"pauses {fmt(nanmean(v.gap[quiet]), '.3f')}, range "
        f"{fmt(gaps.min() if gaps.size else math.nan, '.3f')}-"
        f"{fmt(gaps.max() if gaps.size else math.nan, '.3f')}; swing {fmt(v.swing, '+.3f')}; "
        f"avatar {fmt(nanmean(v.source_gap), '.3f')}"
    )
    print(
        f"  r(lip gap, loudness): lag 0 {fmt(rs[0])}, best lag {lag:+d} frames {fmt(r_best)}"
        f"   (the avatar itself: {fmt(base)})"
    )
    print(
        f"  mouth change vs avatar frame (grey levels): loud {fmt(nanmean(v.change[loud]), '.1f')}"
        f", pauses {fmt(nanmean(v.change[quiet]), '.1f')}"
    )
    seams = v.seam[loud & np.isfinite(v.seam)]
    if seams.size:
        print(
            f"  seam (border/around gradient): median {np.median(seams):.2f}, p90 "
            f"{np.percentile(seams, 90):.2f}, max {seams.max():.2f} over {seams.size} loud frames "
            f"with a changed region ({int(loud.sum()) - seams.size} without)"
        )
    else:
        print("  seam: no loud frame has a changed region")


def label(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((16, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def tile_row(v: Verdict, frames: list[int], title: str) -> np.ndarray:
    cells = []
    for i in frames:
        pair = v.crops[i]
        if pair is None:
            continue
        out, src = small(pair[0]), small(pair[1])
        both = np.hstack([out, np.full((CROP_H, 2, 3), 255, np.uint8), src])
        cells.append(label(both, f"f{i} {v.loudness[i]:.0f}dB gap {fmt(v.gap[i], '.2f')} | avatar"))
    gap = np.full((CROP_H + 16, 8, 3), 255, np.uint8)
    row = np.hstack([c for cell in cells for c in (cell, gap)]) if cells else gap
    return label(row, title)


def write_tiles(folder: Path, avatar: str, verdicts: list[Verdict]) -> Path:
    """One PNG per avatar: per language, the 6 loudest and the 6 quietest frames, each as the
    output's mouth next to the avatar frame's."""
    rows = []
    for v in verdicts:
        order = np.argsort(-v.loudness, kind="stable")
        loud = sm.spread_pick(order[np.isfinite(v.gap[order])], TILE_FRAMES)
        quiet_frames = np.flatnonzero(v.quiet & np.isfinite(v.gap))
        step = max(1, quiet_frames.size // TILE_FRAMES)
        quiet = [int(i) for i in quiet_frames[step // 2 :: step][:TILE_FRAMES]]
        rows.append(tile_row(v, loud, f"{avatar} / {v.language}: loudest frames (output | avatar)"))
        rows.append(tile_row(v, quiet, f"{avatar} / {v.language}: pauses (output | avatar)"))
    width = max(r.shape[1] for r in rows)
    padded = [
        np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
    ]
    path = folder / f"sync-{avatar}.png"
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(padded), cv2.COLOR_RGB2BGR))
    return path


def write_sheet(
    path: Path,
    avatar: str,
    verdicts: list[Verdict],
    title: str,
    *,
    n_loud: int = SHEET_LOUD,
    n_quiet: int = SHEET_QUIET,
) -> Path:
    """A summary sheet for the docs: per language the avatar, ``n_quiet`` pause frames and
    ``n_loud`` loud frames (each the output's crop, labelled with frame, loudness and lip
    gap), and where the loudest frame differs from its avatar frame (|output - avatar|)."""
    rows = []
    for v in verdicts:
        usable = np.array([c is not None for c in v.crops])
        loud, quiet = st.pick_frames(v.loudness, usable, v.quiet, n_loud, n_quiet)
        if not loud:
            continue
        out0, src0 = v.crops[loud[0]]  # type: ignore[misc]
        cells = [st.labelled(src0, f"{v.language}: avatar")]
        for kind, frames in (("quiet", quiet), ("loud", loud)):
            for i in frames:
                out, _ = v.crops[i]  # type: ignore[misc]
                text = f"{v.language}: {kind} f{i} {v.loudness[i]:.0f} dB gap {fmt(v.gap[i])}"
                cells.append(st.labelled(out, text))
        diff_text = f"|out - avatar| f{loud[0]} ({st.DIFF_FULL_SCALE:.0f} = white)"
        cells.append(st.labelled(st.difference(out0, src0), diff_text))
        rows.append(cells)
    if not rows:
        sys.exit(f"no frame of {avatar} shows a face: nothing to put in {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = cv2.cvtColor(st.sheet(rows, title), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def write_sheet_for(
    args: argparse.Namespace, engine: str, avatar: str, verdicts: list[Verdict]
) -> Path:
    """The ``--docs`` sheet of one avatar, named and titled for what it shows."""
    if args.random_weights:
        title = (
            f"{engine} with RANDOM weights: shows only where the prediction goes and its "
            "feathered blend (no seam), NOT lip quality\n"
            f"bench/sync.py --engine {engine} --random-weights --avatars {avatar} --docs DIR"
        )
        # One language, few frames: random weights paint the same whatever the voice.
        return write_sheet(
            args.docs / f"{engine}-blend.png", avatar, verdicts[:1], title, n_loud=2, n_quiet=1
        )
    title = (
        f"{engine} on the {avatar} avatar: the avatar, pauses and the loudest frames, English "
        f"and Mandarin - bench/sync.py --engine {engine} --docs DIR"
    )
    return write_sheet(args.docs / f"{engine}-{avatar}.png", avatar, verdicts, title)


def random_weights_engine(name: str, folder: Path) -> Engine:
    """``name`` (wav2lip or musetalk) with tiny randomly initialised weights written to
    ``folder`` in the release's format (as the tests make them): for looking at where an
    engine pastes its prediction and how it blends it, not at lip quality."""
    import torch

    from inference.engines import get_engine

    torch.manual_seed(0)
    if name == "wav2lip":
        from inference.engines.wav2lip import Wav2Lip, release_state_dict

        checkpoint = folder / "wav2lip_random.pth"
        torch.save(release_state_dict(Wav2Lip()), checkpoint)
        return get_engine(name, checkpoint=checkpoint)
    if name == "musetalk":
        # The tests' writer of a shrunken release layout (diffusers UNet + VAE, Whisper).
        from tests.inference.conftest import write_tiny_musetalk

        return get_engine(name, musetalk_dir=write_tiny_musetalk(folder / "musetalk"))
    sys.exit(f"--random-weights is for wav2lip and musetalk, not {name}")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of every clip: the sentence repeated or cut to it (default: each "
        "sentence once, ~4-6 s, plus 0.4 s of silence)",
    )
    parser.add_argument("--out", type=Path, default=None, help="keep avatars, speech, renders here")
    parser.add_argument("--tiles", type=Path, default=None, help="write mouth tiles (PNG) here")
    parser.add_argument("--device", default=None, help="render device (default: the engine's)")
    parser.add_argument(
        "--avatars",
        default=",".join(AVATARS),
        help=f"comma-separated test avatars to render (default: all of {', '.join(AVATARS)})",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="write a summary sheet per avatar here: <engine>-<avatar>.png (with "
        "--random-weights: <engine>-blend.png of the first avatar)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="wav2lip / musetalk with tiny random weights made on the fly (no checkpoint "
        "needed): the sheets then show where the prediction goes and its blend, not lip sync",
    )
    parser.add_argument(
        "--crop",
        choices=CROP_KINDS,
        default=None,
        help="what the tiles show: the mouth (default for warp) or the lower face (default "
        "with --random-weights)",
    )
    args = parser.parse_args()
    chosen = [a.strip() for a in args.avatars.split(",") if a.strip()]
    if not chosen or any(a not in AVATARS for a in chosen):
        sys.exit(f"--avatars takes some of {', '.join(AVATARS)}")
    kind = args.crop or ("face" if args.random_weights else "mouth")

    from inference.engines import get_engine

    work = Path(tempfile.mkdtemp(prefix="bench_sync_"))
    try:
        if args.random_weights:
            engine = random_weights_engine(args.engine, work)
        else:
            engine = get_engine(args.engine)
    except EngineUnavailable as exc:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(str(exc))
    try:
        folder = args.out or work
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        speech = {lang: make_speech(folder, lang, args.seconds) for lang in SENTENCES}
        longest = max(probe(p).duration or 0 for p in speech.values())
        # Longer than every clip, so output frame i is made from avatar frame i (Source.index).
        avatars, check = make_avatars(folder, longest + 0.5, speech["en"])
        version = subprocess.run(
            [espeak_binary(), "--version"], capture_output=True, text=True, check=False
        ).stdout.split("Data")[0]
        print(
            f"engine: {engine.name} ({engine.label}); media made in {time.perf_counter() - t0:.1f}"
            f" s: {WIDTH}x{HEIGHT} @ {FPS} fps, face {FACE_SHARE:.0%} of the height; "
            f"{version.strip()}"
        )
        for lang, path in speech.items():
            print(f"speech {lang}: {probe(path).duration:.2f} s, espeak-ng -v {SENTENCES[lang][0]}")
        verdicts: dict[str, list[Verdict]] = {}
        for name, avatar in avatars.items():
            if name not in chosen:
                continue
            source = Source.read(avatar, kind)
            hard, soft = seam_calibration(source)
            print(
                f"avatar {name}: {len(source.grey)} frames, face in "
                f"{sum(p is not None for p in source.points)}, lip gap "
                f"{fmt(nanmean(np.array(source.gap)), '.3f')}; seam of a made-up paste of the "
                f"mouth box (+12 grey levels): hard {fmt(hard)}, feathered {fmt(soft)}"
            )
            for lang, audio in speech.items():
                out = folder / f"{args.engine}-{name}-{lang}.mp4"
                start = time.perf_counter()
                result = engine.render(avatar, audio, out, None, device=args.device)
                seconds = time.perf_counter() - start
                verdict = judge(name, lang, out, source, audio, kind)
                verdict.render_seconds, verdict.device = seconds, result.device
                report(verdict)
                verdicts.setdefault(name, []).append(verdict)
            if name == "closed":
                checked = judge("check", "en", check, source, speech["en"], kind)
                lag, best = sm.best_lag(checked.r())
                print(
                    f"  judge's check (the closed avatar cross-faded to the smile by loudness, "
                    f"{CHECK_LAG} frames late): r lag 0 {fmt(checked.r()[0])}, best lag "
                    f"{lag:+d} frames {fmt(best)}, swing {fmt(checked.swing, '+.3f')}"
                )
            if args.tiles:
                args.tiles.mkdir(parents=True, exist_ok=True)
                print(f"  tiles: {write_tiles(args.tiles, name, verdicts[name])}")
            if args.docs and not (args.random_weights and name != chosen[0]):
                print(f"  sheet: {write_sheet_for(args, engine.name, name, verdicts[name])}")
            del source
        print()
        print(
            f"{'video':<14} {'r lag 0':>8} {'best lag':>9} {'r there':>8} {'swing':>7} "
            f"{'change':>7} {'seam':>6}"
        )
        summary = []
        for vs in verdicts.values():
            for v in vs:
                rs = v.r()
                lag, best = sm.best_lag(rs)
                seams = v.seam[v.loud & np.isfinite(v.seam)]
                seam = float(np.median(seams)) if seams.size else math.nan
                print(
                    f"{v.avatar + ' / ' + v.language:<14} {fmt(rs[0]):>8} {lag:>+9d} "
                    f"{fmt(best):>8} {fmt(v.swing, '+.3f'):>7} "
                    f"{fmt(nanmean(v.change[v.loud]), '.1f'):>7} {fmt(seam):>6}"
                )
                # NaN (a mouth that never moves) counts as the worst.
                summary.append((rs[0] if math.isfinite(rs[0]) else -math.inf, rs[0], lag))
        _, worst_r, worst_lag = min(summary, key=lambda s: s[0])
        print(f"sync r: {worst_r:.2f} lag: {worst_lag} frames")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
