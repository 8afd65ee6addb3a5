"""Finished files: one-pass checksums and atomic, fsynced outputs.

Everything here works on plain files (no ffmpeg): :class:`AtomicOutput` makes an output appear
under its final name only when complete, and :func:`hash_file` / :class:`HashingWriter` take
size, SHA-256 and CRC-32 without a second read. :class:`RenderResult` describes a render.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import zlib
from pathlib import Path
from typing import BinaryIO

#: Suffix of temporary outputs, so a sweeper can recognise files left by a killed worker.
TEMP_SUFFIX = ".part"


@dataclasses.dataclass(frozen=True)
class FileDigest:
    """Size and checksums of a file, taken in one pass."""

    bytes: int
    sha256: str
    crc32: int


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """A finished render: where it is, what it weighs and its checksums, what it contains."""

    path: Path
    bytes: int
    sha256: str
    crc32: int
    duration: float
    width: int
    height: int
    frames: int
    fps: float
    engine: str = ""
    device: str = ""


class HashingWriter:
    """A binary file wrapper that updates SHA-256 and CRC-32 with every ``write``.

    For streams written from Python (e.g. an upload being saved), so the digests cost no
    second read. ``digest()`` returns a :class:`FileDigest` of everything written.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._sha = hashlib.sha256()
        self._crc = 0
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` to the wrapped file and fold it into the checksums."""
        self._sha.update(data)
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return self.raw.write(data)

    def digest(self) -> FileDigest:
        """Size, SHA-256 (hex) and CRC-32 of the bytes written so far."""
        return FileDigest(self._size, self._sha.hexdigest(), self._crc)


def hash_file(path: str | os.PathLike[str], *, fsync: bool = False) -> FileDigest:
    """Size, SHA-256 and CRC-32 of a file in ONE read pass (1 MiB chunks, bounded memory).

    With ``fsync=True`` the file is also flushed to disk in the same visit.
    """
    sha = hashlib.sha256()
    crc = 0
    size = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += n
        if fsync:
            os.fsync(fh.fileno())
    return FileDigest(size, sha.hexdigest(), crc)


class AtomicOutput:
    """Write to a temporary name in the destination folder, then rename into place.

    ::

        with AtomicOutput(out) as tmp:
            produce(tmp.path)          # ffmpeg, Pillow, ... write the file
            digest = tmp.commit()      # hash + fsync in one pass, then os.replace

    Leaving the block without :meth:`commit` (an error, a cancel) deletes the temporary file,
    so no half-written output ever carries the final name. Temporary names are
    ``.<name>.<random>.part`` so a sweeper can remove those a killed worker left behind.

    The checksums cannot be taken as ffmpeg writes, because the mp4 muxer rewrites the file
    for ``+faststart`` (moving the index to the front). They are taken in one read of the
    finished temp file (still in the page cache) that also fsyncs it, before the rename; the
    final file is never read again (exports use the recorded CRC-32/SHA-256).
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        self.path = self.final.parent / f".{self.final.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        self.committed = False

    def __enter__(self) -> AtomicOutput:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def commit(self) -> FileDigest:
        """Checksum and fsync the temp file in one pass, rename it to the final name."""
        digest = hash_file(self.path, fsync=True)
        os.replace(self.path, self.final)
        self.committed = True
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return digest
