"""Real media made on the fly with ffmpeg: tiny, fast, and with a face the detector finds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from inference.ffmpeg_bin import find_ffmpeg


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def face_png(path: Path, size: tuple[int, int] = (256, 256)) -> Path:
    """The astronaut photo that ships with scikit-image (the Haar cascade finds her face)."""
    from skimage import data

    image = Image.fromarray(np.asarray(data.astronaut()))
    image.crop((96, 0, 352, 256)).resize(size).save(path)
    return path


def make_avatar(path: Path, *, seconds: float = 1.0, size=(256, 256), fps: int = 25) -> Path:
    png = face_png(path.with_suffix(".png"), size)
    _ffmpeg(
        "-loop", "1", "-framerate", str(fps), "-i", str(png), "-t", str(seconds),
        "-vf", "format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(path),
    )  # fmt: skip
    png.unlink()
    return path


def make_audio(path: Path, *, seconds: float = 1.0) -> Path:
    """Tone bursts and silences, so mouth openness goes up and down."""
    _ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=16000:duration={seconds}",
        "-af", "volume='if(lt(mod(t,0.4),0.2),1,0)':eval=frame", str(path),
    )  # fmt: skip
    return path


def make_faceless_video(path: Path, *, seconds: float = 1.0) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"color=c=gray:size=128x128:rate=25:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def make_video_with_sound(path: Path, *, seconds: float = 1.0) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=128x128:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(path),
    )  # fmt: skip
    return path


def variant_of(src: Path, target: Path, variant: int) -> Path:
    """The same media as ``src`` in other bytes: the container remuxed with a comment naming
    ``variant`` (no re-encode), written to ``target``."""
    out = target.with_name(target.name + src.suffix)
    _ffmpeg(
        "-i", str(src), "-map", "0", "-c", "copy", "-metadata", f"comment=variant {variant}",
        str(out),
    )  # fmt: skip
    out.replace(target)
    return target
