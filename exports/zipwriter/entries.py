"""What goes in and comes out: :class:`ZipEntry`, :class:`ZipResult`, the errors, name checks."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

LIMIT_32 = 0xFFFFFFFF  # a 32-bit field holding this value means "see the ZIP64 record"
LIMIT_16 = 0xFFFF


class ZipWriteError(Exception):
    """Base class of the errors this package raises on purpose."""


class FileChangedError(ZipWriteError):
    """A source file is missing, or its size is not the one recorded when it was rendered.

    ``entry`` is the entry's name and ``missing`` says whether the file is gone, so a caller
    can tell a person in their own language (the message is for logs)."""

    def __init__(self, message: str, *, entry: str = "", missing: bool = False) -> None:
        super().__init__(message)
        self.entry, self.missing = entry, missing


class ZipAborted(ZipWriteError):
    """``should_stop()`` returned true: the build was stopped (e.g. past its hard time limit)."""


class FirstEntryZip64Error(ZipWriteError, ValueError):
    """The first entry would need ZIP64, which Safari's Archive Utility cannot open."""


def _validate_name(name: str) -> bytes:
    """The UTF-8 bytes of an entry name, or ValueError when it is not a safe relative path."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"ZIP entry name must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"ZIP entry name contains NUL: {name!r}")
    if "\\" in name:
        raise ValueError(f"ZIP entry name contains a backslash: {name!r}")
    if name.startswith("/"):
        raise ValueError(f"ZIP entry name is absolute: {name!r}")
    parts = name.split("/")
    if ".." in parts:
        raise ValueError(f"ZIP entry name contains '..': {name!r}")
    if "" in parts:  # "a//b" or a trailing "/" (which readers take for a directory)
        raise ValueError(f"ZIP entry name has an empty path part: {name!r}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"ZIP entry name is not valid UTF-8: {name!r}") from exc
    if len(encoded) > LIMIT_16:
        raise ValueError(f"ZIP entry name is {len(encoded)} bytes in UTF-8 (at most 65535)")
    return encoded


@dataclass(frozen=True)
class ZipEntry:
    """One file in the archive: a file on disk (``source``), a stream (``opener``, e.g. an
    object in a bucket) or small in-memory ``data``.

    ``name`` is the path inside the ZIP, already sanitised by the caller; it is checked again
    here (relative, "/"-separated, no "..", no backslash, no NUL, at most 65535 UTF-8 bytes).
    ``size`` and ``crc32`` are the values recorded when the file was rendered: the writer
    trusts the CRC (it never reads a file to checksum it) and checks the size on disk.
    ``opener`` is called when the entry's turn comes and returns a binary stream with
    ``read(n)`` (closed afterwards); it must yield exactly ``size`` bytes, and raise
    ``FileNotFoundError`` when the object is gone.
    ``mtime`` defaults to the file's modification time, or the build time for ``data`` and
    streams.
    Build in-memory entries with :meth:`from_bytes`, which computes size and CRC.
    """

    name: str
    source: Path | None
    size: int
    crc32: int
    mtime: datetime | None = None
    data: bytes | None = None
    opener: Callable[[], BinaryIO] | None = None

    def __post_init__(self) -> None:
        _validate_name(self.name)
        given = [x is not None for x in (self.source, self.data, self.opener)]
        if sum(given) != 1:
            raise ValueError(f"{self.name}: give exactly one of source, data and opener")
        if not 0 <= self.size < 1 << 64:
            raise ValueError(f"{self.name}: size {self.size} out of range")
        if not 0 <= self.crc32 <= LIMIT_32:
            raise ValueError(f"{self.name}: CRC-32 {self.crc32} out of range")
        if self.data is not None:
            if len(self.data) != self.size:
                raise ValueError(f"{self.name}: size {self.size} != len(data) {len(self.data)}")
            if zlib.crc32(self.data) != self.crc32:
                raise ValueError(f"{self.name}: crc32 does not match data (use from_bytes)")

    @classmethod
    def from_bytes(cls, name: str, data: bytes, *, mtime: datetime | None = None) -> ZipEntry:
        """An in-memory entry (e.g. ``manifest.csv``) with its size and CRC-32 computed here."""
        data = bytes(data)
        return cls(name, None, len(data), zlib.crc32(data), mtime=mtime, data=data)


@dataclass(frozen=True)
class ZipResult:
    """What :func:`write_zip` wrote: archive length, entry count, whether ZIP64 was needed."""

    bytes_written: int
    entries: int
    zip64_used: bool
