"""Locate the ffmpeg and ffprobe executables.

An explicitly configured binary (``FFMPEG_BINARY``) wins; then the system binaries on
``PATH``; otherwise the static ffmpeg shipped in the
``imageio-ffmpeg`` wheel is used. That wheel ships no ffprobe, so ffprobe is optional and every
caller must cope with :func:`find_ffprobe` returning ``None``.
"""

from __future__ import annotations

import functools
import os
import shutil

from inference.errors import InferenceError


@functools.lru_cache(maxsize=1)
def find_ffmpeg() -> str:
    """Return the path of the ffmpeg executable, or raise :class:`InferenceError`."""
    return locate_ffmpeg()


def locate_ffmpeg(configured: str | None = None) -> str:
    """Find ffmpeg now (uncached): ``configured`` (default: the ``FFMPEG_BINARY`` environment
    variable) when set, else ``PATH``, else imageio-ffmpeg's binary."""
    if configured is None:
        configured = os.environ.get("FFMPEG_BINARY", "")
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise InferenceError(f"FFMPEG_BINARY={configured!r} is not an executable file.")
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    raise InferenceError(
        "ffmpeg was not found: install it (e.g. `apt-get install ffmpeg`) or the "
        "`imageio-ffmpeg` Python package."
    )


@functools.lru_cache(maxsize=1)
def find_ffprobe() -> str | None:
    """Return the path of ffprobe on ``PATH``, or ``None`` when there is none."""
    return shutil.which("ffprobe")


def ffmpeg_source() -> str:
    """Describe where ffmpeg comes from ("system" or "imageio-ffmpeg"), for system checks."""
    path = find_ffmpeg()
    return "system" if shutil.which("ffmpeg") == path else "imageio-ffmpeg"


def clear_cache() -> None:
    """Forget the located binaries (after changing ``PATH``, mainly in tests)."""
    find_ffmpeg.cache_clear()
    find_ffprobe.cache_clear()
