"""Thumbnails: one frame of a video saved as a small JPEG/PNG/WebP image.

Kept apart from the frame pipes because it decodes a single RGB frame with a one-shot ffmpeg
run and needs Pillow, which nothing else in the media package does.
"""

from __future__ import annotations

import os
from pathlib import Path

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.media.frames import even
from inference.media.outputs import AtomicOutput
from inference.media.probing import MediaInfo, _input_args, _run, probe


def make_thumbnail(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    width: int = 320,
    *,
    at: float | None = None,
    info: MediaInfo | None = None,
) -> Path:
    """Save one frame of the video, ``width`` pixels wide, as JPEG/PNG/WebP (by suffix).

    The frame (the one mid-way through the video, or the one ``at`` seconds in; the first one
    when that cannot be decoded) comes through an ffmpeg pipe as RGB and is written with
    Pillow, atomically. Returns ``out_path``.
    """
    from PIL import Image

    src = Path(video_path)
    info = info or probe(src)
    if not info.has_video or not info.width or not info.height:
        raise MediaError("The file has no video stream to take a thumbnail from.", path=str(src))
    width = max(2, even(int(width)))
    height = max(2, even(round(width * info.height / info.width)))
    # The middle shows the avatar speaking; the first second is often a still lead-in.
    t = at if at is not None else info.duration / 2
    size = width * height * 3
    data = b""
    for start in (t, 0.0):
        cmd = [
            ffmpeg_bin.find_ffmpeg(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-ss",
            f"{max(0.0, start):.3f}",
            *_input_args(src),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            f"scale={width}:{height}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ]
        proc = _run(cmd, timeout=60)
        data = proc.stdout
        if len(data) >= size:
            break
    if len(data) < size:
        raise MediaError("No frame could be decoded for the thumbnail.", path=str(src))
    image = Image.frombuffer("RGB", (width, height), data[:size], "raw", "RGB", 0, 1)
    out = Path(out_path)
    fmt = {".png": "PNG", ".webp": "WEBP"}.get(out.suffix.lower(), "JPEG")
    with AtomicOutput(out) as tmp:
        image.save(tmp.path, format=fmt, **({"quality": 85} if fmt != "PNG" else {}))
        tmp.commit()
    return out
