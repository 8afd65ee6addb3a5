"""Media I/O through ffmpeg: probing, frame pipes, thumbnails, atomic hashed outputs.

The package is split by job; this module re-exports the names callers use, so
``from inference.media import probe`` keeps working. Code inside ``inference/`` imports from
the submodule that defines a name:

- :mod:`inference.media.probing`: :class:`MediaInfo`, :func:`probe` and the shared ffmpeg helpers
  (``-format_whitelist`` of :data:`ALLOWED_FORMATS`, bounded runs, readable failure messages);
- :mod:`inference.media.frames`: raw yuv420p frames through pipes (:class:`FrameReader`,
  :class:`FrameWriter`, their ffmpeg command lines, frame geometry);
- :mod:`inference.media.thumbnails`: :func:`make_thumbnail`;
- :mod:`inference.media.outputs`: :class:`AtomicOutput`, one-pass checksums,
  :class:`RenderResult`.

Nothing here imports torch, so a web process can probe and make thumbnails cheaply.
"""

from __future__ import annotations

from inference.media.frames import (
    DEFAULT_AUDIO_BITRATE,
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FrameReader,
    FrameWriter,
    container_for,
    decode_args,
    encode_args,
    even,
    frame_size,
    yuv_planes,
)
from inference.media.outputs import (
    TEMP_SUFFIX,
    AtomicOutput,
    FileDigest,
    HashingWriter,
    RenderResult,
    hash_file,
)
from inference.media.probing import ALLOWED_FORMATS, MediaInfo, probe

# Private helpers that callers imported from ``inference.media`` before the split (the tests
# call ``_probe_with_ffprobe``); the ``as`` form marks them as deliberate re-exports.
from inference.media.probing import _explain_failure as _explain_failure
from inference.media.probing import _input_args as _input_args
from inference.media.probing import _probe_with_ffprobe as _probe_with_ffprobe
from inference.media.thumbnails import make_thumbnail

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_AUDIO_BITRATE",
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "TEMP_SUFFIX",
    "AtomicOutput",
    "FileDigest",
    "FrameReader",
    "FrameWriter",
    "HashingWriter",
    "MediaInfo",
    "RenderResult",
    "container_for",
    "decode_args",
    "encode_args",
    "even",
    "frame_size",
    "hash_file",
    "make_thumbnail",
    "probe",
    "yuv_planes",
]
