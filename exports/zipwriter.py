"""A ZIP writer for already-compressed videos whose CRC-32 and size are known in advance.

The render step records each output's size and CRC-32, so building a bundle never reads a video
to checksum it: every entry is STORED, its sizes and CRC go straight into the local header (no
data descriptors), and for a file destination the bytes are copied by the kernel
(``os.copy_file_range``, then ``os.sendfile``, then a 1 MiB ``readinto``/``write`` loop). Memory
stays bounded whatever the size of the bundle.

Three entry points, all taking the same list of :class:`ZipEntry`:

- :func:`zip_size` predicts the exact archive size without touching any file (for a
  ``Content-Length`` or to show the size before building);
- :func:`write_zip` writes the archive to a path, a file descriptor or a binary file object;
- :func:`iter_zip` yields the archive as ``bytes`` chunks of a fixed size (for an S3 multipart
  upload, whose parts must be at least 5 MiB). A socket or an upload part is not a file, so here
  file data goes through one reusable buffer filled with ``readinto``: the kernel-copy path is
  for file destinations only.

Format, chosen for the widest compatibility (Windows Explorer, macOS Archive Utility, Info-ZIP,
7-Zip, libarchive, Python):

- method 0 (STORED) for every entry, general-purpose flag bit 11 (UTF-8 names) always set;
- no data descriptors: sizes and CRC are in the local headers, so streaming readers work too;
- DOS date/time from ``mtime`` (local time, clamped to 1980..2107), Unix "made by" with
  regular-file mode 0o644 in the external attributes;
- ZIP64 extra fields only where a value does not fit (an entry of 4 GiB or more, an entry that
  starts 4 GiB or more into the archive) and the ZIP64 end records only when the entry count,
  central-directory size or offset do not fit. The first entry never carries ZIP64 (Safari's
  Archive Utility fails on that): :class:`FirstEntryZip64Error` is raised if it would. Putting
  ``manifest.csv`` first, as the exports service does, always avoids it.

Errors: anything that goes wrong raises (:class:`FileChangedError` when a file's size differs
from what was rendered or it shrinks while being copied, :class:`ZipAborted` when
``should_stop()`` says so) and leaves the destination as it is, partly written. The caller
writes to a temporary name and deletes it on failure, then fsyncs and renames on success.

This module is a plain library: standard library only, no Django, no project imports.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = [
    "FileChangedError",
    "FirstEntryZip64Error",
    "ZipAborted",
    "ZipEntry",
    "ZipResult",
    "ZipWriteError",
    "iter_zip",
    "write_zip",
    "zip_size",
]

MiB = 1 << 20
COPY_STEP = 64 * MiB  # kernel copies go in steps of this size; should_stop is polled between
BUFFER_SIZE = 1 * MiB  # the read/write fallback's buffer
DEFAULT_CHUNK_SIZE = 8 * MiB  # iter_zip's chunk size (an S3 part is at least 5 MiB)
HEADER_FLUSH = 1 * MiB  # small writes (headers, in-memory data) are gathered up to this size

LIMIT_32 = 0xFFFFFFFF  # a 32-bit field holding this value means "see the ZIP64 record"
LIMIT_16 = 0xFFFF

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header, 46 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory, 22 bytes
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # ZIP64 end of central directory, 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # ZIP64 end of central directory locator, 20 bytes
_EXTRA_HEADER = struct.Struct("<HH")
_ZIP64_EXTRA_ID = 0x0001

_VERSION_DEFAULT = 20  # 2.0: what zipfile and Info-ZIP write for STORED entries
_VERSION_ZIP64 = 45  # 4.5: ZIP64
_UNIX = 3  # "made by" host system: the external attributes hold a Unix mode
_FLAG_UTF8 = 0x0800  # general-purpose bit 11: the name is UTF-8
_STORED = 0
_FILE_MODE = stat.S_IFREG | 0o644

_DOS_MIN = (1980, 1, 1, 0, 0, 0)
_DOS_MAX = (2107, 12, 31, 23, 59, 58)

# errno values meaning "this copy method does not work for these two files": try the next one.
_FALLBACK_ERRNOS = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ETXTBSY}
)


class ZipWriteError(Exception):
    """Base class of the errors this module raises on purpose."""


class FileChangedError(ZipWriteError):
    """A source file is missing, or its size is not the one recorded when it was rendered."""


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


# --- layout: every offset and size, computed from the entries alone -------------------------------


@dataclass(frozen=True, slots=True)
class _Planned:
    entry: ZipEntry
    name: bytes
    offset: int  # of the local header, from the start of the archive

    @property
    def large(self) -> bool:
        """Sizes need ZIP64 (in the local header and the central directory)."""
        return self.entry.size >= LIMIT_32

    @property
    def far(self) -> bool:
        """The local header offset needs ZIP64 (central directory only)."""
        return self.offset >= LIMIT_32

    @property
    def version(self) -> int:
        return _VERSION_ZIP64 if self.large or self.far else _VERSION_DEFAULT

    @property
    def local_length(self) -> int:
        return _LOCAL.size + len(self.name) + (20 if self.large else 0)

    @property
    def central_length(self) -> int:
        fields = (2 if self.large else 0) + (1 if self.far else 0)
        return _CENTRAL.size + len(self.name) + (4 + 8 * fields if fields else 0)


@dataclass(frozen=True, slots=True)
class _Layout:
    planned: list[_Planned]
    cd_offset: int
    cd_size: int
    total: int

    @property
    def zip64_end(self) -> bool:
        """The ZIP64 end records are needed (entry count, CD size or CD offset overflow)."""
        return (
            len(self.planned) >= LIMIT_16 or self.cd_size >= LIMIT_32 or self.cd_offset >= LIMIT_32
        )

    @property
    def zip64_used(self) -> bool:
        return self.zip64_end or any(p.large or p.far for p in self.planned)


def _plan(entries: Iterable[ZipEntry]) -> _Layout:
    """Lay the archive out: validate, assign offsets, decide where ZIP64 is needed."""
    planned: list[_Planned] = []
    seen: set[str] = set()
    offset = 0
    for entry in entries:
        if not isinstance(entry, ZipEntry):
            raise TypeError(f"expected ZipEntry, got {type(entry).__name__}")
        if entry.name in seen:
            raise ValueError(f"duplicate ZIP entry name: {entry.name!r}")
        seen.add(entry.name)
        item = _Planned(entry, _validate_name(entry.name), offset)
        if not planned and item.large:
            raise FirstEntryZip64Error(
                f"{entry.name}: the first entry is {entry.size} bytes and would need ZIP64, "
                "which Safari's Archive Utility cannot open; put a small entry such as "
                "manifest.csv first"
            )
        planned.append(item)
        offset += item.local_length + entry.size
    cd_size = sum(p.central_length for p in planned)
    total = offset + cd_size + _EOCD.size
    layout = _Layout(planned, offset, cd_size, total)
    if layout.zip64_end:
        total += _EOCD64.size + _LOCATOR64.size
        layout = _Layout(planned, offset, cd_size, total)
    return layout


def _dos_datetime(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS format; aware datetimes are shown in the server's local time."""
    if moment.tzinfo is not None:
        moment = moment.astimezone()  # ZIP times are local wall-clock times
    fields = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    fields = max(_DOS_MIN, min(_DOS_MAX, fields))
    year, month, day, hour, minute, second = fields
    return (hour << 11 | minute << 5 | second // 2), ((year - 1980) << 9 | month << 5 | day)


def _local_header(item: _Planned, dos_time: int, dos_date: int) -> bytes:
    size = item.entry.size
    stored = LIMIT_32 if item.large else size
    extra = b""
    if item.large:  # a local ZIP64 extra carries both sizes
        extra = _EXTRA_HEADER.pack(_ZIP64_EXTRA_ID, 16) + struct.pack("<QQ", size, size)
    header = _LOCAL.pack(
        0x04034B50,
        item.version,
        _FLAG_UTF8,
        _STORED,
        dos_time,
        dos_date,
        item.entry.crc32,
        stored,
        stored,
        len(item.name),
        len(extra),
    )
    return header + item.name + extra


def _central_header(item: _Planned, dos_time: int, dos_date: int) -> bytes:
    size = item.entry.size
    values: list[int] = []
    if item.large:
        values += [size, size]
    if item.far:
        values.append(item.offset)
    extra = b""
    if values:
        extra = _EXTRA_HEADER.pack(_ZIP64_EXTRA_ID, 8 * len(values))
        extra += struct.pack(f"<{len(values)}Q", *values)
    stored = LIMIT_32 if item.large else size
    header = _CENTRAL.pack(
        0x02014B50,
        _UNIX << 8 | item.version,
        item.version,
        _FLAG_UTF8,
        _STORED,
        dos_time,
        dos_date,
        item.entry.crc32,
        stored,
        stored,
        len(item.name),
        len(extra),
        0,  # comment length
        0,  # disk number start
        0,  # internal attributes
        _FILE_MODE << 16,
        LIMIT_32 if item.far else item.offset,
    )
    return header + item.name + extra


def _end_records(layout: _Layout) -> bytes:
    count, cd_size, cd_offset = len(layout.planned), layout.cd_size, layout.cd_offset
    records = b""
    if layout.zip64_end:
        eocd64_offset = cd_offset + cd_size
        records += _EOCD64.pack(
            0x06064B50,
            _EOCD64.size - 12,  # size of the rest of the record
            _UNIX << 8 | _VERSION_ZIP64,
            _VERSION_ZIP64,
            0,
            0,
            count,
            count,
            cd_size,
            cd_offset,
        )
        records += _LOCATOR64.pack(0x07064B50, 0, eocd64_offset, 1)
    records += _EOCD.pack(
        0x06054B50,
        0,
        0,
        min(count, LIMIT_16),
        min(count, LIMIT_16),
        min(cd_size, LIMIT_32),
        min(cd_offset, LIMIT_32),
        0,  # comment length
    )
    return records


# --- producing the archive as a sequence of header bytes and file bodies --------------------------


class _Body(NamedTuple):
    """A source file to copy into the archive: open, size already checked."""

    file: io.FileIO | BinaryIO
    size: int
    name: str
    stream: bool = False  # not a file: read with read(n), no kernel copy, no fstat


class _Ticker:
    """Counts bytes; polls ``should_stop`` and reports ``progress`` about every 64 MiB."""

    def __init__(
        self,
        total: int,
        progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.total = total
        self.done = 0
        self._last = 0
        self._progress = progress
        self._should_stop = should_stop

    def check(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise ZipAborted("ZIP build stopped: should_stop() returned true")

    def report(self) -> None:
        self._last = self.done
        if self._progress is not None:
            self._progress(self.done, self.total)

    def advance(self, count: int) -> None:
        self.done += count
        if self.done - self._last >= COPY_STEP:
            self.check()
            self.report()

    def finish(self) -> None:
        self.done = self.total
        self.report()


def _changed(name: str, expected: int, found: int) -> FileChangedError:
    return FileChangedError(
        f"{name}: file changed since it was rendered (expected {expected} bytes, found {found})"
    )


def _segments(layout: _Layout, *, check_sizes: bool, ticker: _Ticker) -> Iterator[bytes | _Body]:
    """The archive in order: header and data bytes, and open source files to be copied.

    A yielded :class:`_Body` must be consumed (all ``size`` bytes copied) before the next item
    is requested; its file is closed when the generator moves on or is closed.
    """
    build_time = datetime.now()
    stamps: list[tuple[int, int]] = []
    for item in layout.planned:
        ticker.check()
        entry = item.entry
        if entry.data is not None:
            stamp = _dos_datetime(entry.mtime or build_time)
            stamps.append(stamp)
            yield _local_header(item, *stamp)
            yield entry.data
            continue
        if entry.opener is not None:
            yield from _stream_segments(item, entry, build_time, stamps)
            ticker.report()
            continue
        assert entry.source is not None
        try:
            source = open(entry.source, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise FileChangedError(
                f"{entry.name}: file is missing (removed since it was rendered)"
            ) from exc
        with source:
            info = os.fstat(source.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FileChangedError(f"{entry.name}: source is not a regular file")
            if check_sizes and info.st_size != entry.size:
                raise _changed(entry.name, entry.size, info.st_size)
            stamp = _dos_datetime(entry.mtime or datetime.fromtimestamp(info.st_mtime))
            stamps.append(stamp)
            yield _local_header(item, *stamp)
            yield _Body(source, entry.size, entry.name)
        ticker.report()
    ticker.check()
    pending = bytearray()
    for item, stamp in zip(layout.planned, stamps, strict=True):
        pending += _central_header(item, *stamp)
        if len(pending) >= HEADER_FLUSH:
            yield bytes(pending)
            pending.clear()
    yield bytes(pending) + _end_records(layout)


def _stream_segments(
    item: _Planned, entry: ZipEntry, build_time: datetime, stamps: list[tuple[int, int]]
) -> Iterator[bytes | _Body]:
    assert entry.opener is not None
    try:
        stream = entry.opener()
    except FileNotFoundError as exc:
        raise FileChangedError(
            f"{entry.name}: file is missing (removed since it was rendered)"
        ) from exc
    try:
        stamp = _dos_datetime(entry.mtime or build_time)
        stamps.append(stamp)
        yield _local_header(item, *stamp)
        yield _Body(stream, entry.size, entry.name, stream=True)
        if stream.read(1):
            raise FileChangedError(
                f"{entry.name}: file changed since it was rendered (expected {entry.size} "
                "bytes, found more)"
            )
    finally:
        stream.close()


def _read_stream(body: _Body, count: int) -> bytes:
    data = body.file.read(count)
    if not data:
        raise FileChangedError(
            f"{body.name}: file changed since it was rendered (expected {body.size} bytes, "
            "found fewer)"
        )
    return data


def _read_into(body: _Body, target: memoryview) -> int:
    """Fill the start of ``target`` from ``body``; raise if it has nothing more to give."""
    if body.stream:
        data = _read_stream(body, len(target))
        target[: len(data)] = data
        return len(data)
    got = body.file.readinto(target)
    if not got:
        raise _changed(body.name, body.size, os.fstat(body.file.fileno()).st_size)
    return got


# --- writing to a file descriptor -----------------------------------------------------------------


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Copier:
    """Copies byte ranges of a source file to ``out_fd`` at its current position.

    Tries ``copy_file_range``, then ``sendfile``, then a read/write loop, moving down for good
    (for this archive) when the kernel says a method does not apply to these files.
    """

    METHODS = ("copy_file_range", "sendfile", "readwrite")

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.method = next(m for m in self.METHODS if m == "readwrite" or hasattr(os, m))
        self._buffer: memoryview | None = None
        self._sparse = hasattr(os, "SEEK_DATA") and hasattr(os, "SEEK_HOLE")

    def _downgrade(self) -> None:
        order = self.METHODS
        index = order.index(self.method) + 1
        self.method = next(m for m in order[index:] if m == "readwrite" or hasattr(os, m))

    def _copy_some(self, source: io.FileIO, offset: int, count: int) -> int:
        """Copy up to ``count`` bytes from ``offset``; 0 only at the end of the source."""
        fd = source.fileno()
        while True:
            if self.method == "copy_file_range":
                try:
                    copied = os.copy_file_range(fd, self.out_fd, count, offset)
                except OSError as exc:
                    if exc.errno not in _FALLBACK_ERRNOS:
                        raise
                    copied = 0
                if copied:
                    return copied
                # 0 is the end of file, or a filesystem that cannot do it (procfs, some FUSE
                # and network filesystems): the next method decides which.
                self._downgrade()
            elif self.method == "sendfile":
                try:
                    copied = os.sendfile(self.out_fd, fd, offset, count)
                except OSError as exc:
                    if exc.errno not in _FALLBACK_ERRNOS:
                        raise
                    copied = 0
                if copied:
                    return copied
                self._downgrade()
            else:
                if self._buffer is None:
                    self._buffer = memoryview(bytearray(BUFFER_SIZE))
                source.seek(offset)
                got = source.readinto(self._buffer[: min(count, BUFFER_SIZE)])
                if got:
                    _write_all(self.out_fd, self._buffer[:got])
                return got or 0

    def _data_extent(self, fd: int, position: int, size: int) -> tuple[int, int]:
        """The next range of data at or after ``position`` (holes are skipped, like cp does)."""
        if not self._sparse:
            return position, size
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE) if start < size else size
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole up to the end of the file
                return size, size
            if exc.errno in _FALLBACK_ERRNOS:
                self._sparse = False
                return position, size
            raise
        return min(start, size), min(end, size)

    def copy(self, body: _Body, ticker: _Ticker) -> None:
        """Copy all of ``body`` to the destination, or raise: never a short entry."""
        if body.stream:
            remaining = body.size
            while remaining:
                data = _read_stream(body, min(remaining, BUFFER_SIZE))
                _write_all(self.out_fd, data)
                remaining -= len(data)
                ticker.advance(len(data))
            return
        fd = body.file.fileno()
        position = 0
        while position < body.size:
            start, end = self._data_extent(fd, position, body.size)
            if start > position:
                # A hole stays a hole: the destination was truncated at the archive's start, so
                # skipping ahead leaves zeros that take no disk space.
                os.lseek(self.out_fd, start - position, os.SEEK_CUR)
                ticker.advance(start - position)
                position = start
            while position < end:
                copied = self._copy_some(body.file, position, min(end - position, COPY_STEP))
                if not copied:
                    raise _changed(body.name, body.size, os.fstat(fd).st_size)
                position += copied
                ticker.advance(copied)
        found = os.fstat(fd).st_size  # a shrink while skipping a trailing hole shows here
        if found < body.size:
            raise _changed(body.name, body.size, found)


def _write_fd(layout: _Layout, fd: int, *, check_sizes: bool, ticker: _Ticker) -> int:
    """Write to a regular file from its current position; returns the position after."""
    start = os.lseek(fd, 0, os.SEEK_CUR)
    if os.fstat(fd).st_size > start:
        # So that skipped holes read as zeros. Only when needed: truncating a file on ext4
        # makes its close() start writing back all the data (auto_da_alloc), ~1 s per GiB.
        os.ftruncate(fd, start)
    copier = _Copier(fd)
    pending = bytearray()
    segments = _segments(layout, check_sizes=check_sizes, ticker=ticker)
    try:
        for segment in segments:
            if isinstance(segment, _Body):
                _write_all(fd, pending)
                pending.clear()
                copier.copy(segment, ticker)
            else:
                pending += segment
                ticker.advance(len(segment))
                if len(pending) >= HEADER_FLUSH:
                    _write_all(fd, pending)
                    pending.clear()
        _write_all(fd, pending)
    finally:
        segments.close()
    end = os.lseek(fd, 0, os.SEEK_CUR)
    if end - start != layout.total:  # would be a bug here, never the caller's fault
        raise RuntimeError(f"wrote {end - start} bytes, expected {layout.total}")
    return end


def _seekable_regular(fd: int) -> bool:
    """A regular file not opened for appending (pwrite-style positioning works on it)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return False
    if fcntl is None:  # Windows: no O_APPEND check
        return True
    return not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND


def _fileno(dest: BinaryIO) -> int | None:
    try:
        return dest.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


# --- public API -----------------------------------------------------------------------------------


def zip_size(entries: Iterable[ZipEntry]) -> int:
    """The exact size in bytes of the archive these entries make, without touching any file.

    Raises the same validation errors as :func:`write_zip` (bad or duplicate names,
    :class:`FirstEntryZip64Error`).
    """
    return _plan(entries).total


def write_zip(
    entries: Iterable[ZipEntry],
    dest: BinaryIO | int | Path,
    *,
    check_sizes: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ZipResult:
    """Write a STORED ZIP of ``entries`` to ``dest`` and return what was written.

    ``dest`` is a path (created or truncated, closed afterwards; the caller fsyncs it if it
    needs to, e.g. by opening it again), an open file descriptor, or a binary file object.
    For a regular file (path, descriptor or object) the archive starts at the current position,
    anything after that position is discarded, and file bodies are copied by the kernel; holes
    in a source stay holes. Anything else (a pipe, a socket, ``io.BytesIO``) receives the bytes
    of :func:`iter_zip`. Offsets in the archive are counted from where it starts. A descriptor
    or file object is left open, positioned at the end of the archive.

    Before each file is copied its size on disk is checked against ``entry.size``
    (``check_sizes=False`` skips that check; the copy still takes exactly ``entry.size`` bytes
    and a file shorter than that still fails): a mismatch raises :class:`FileChangedError`.

    ``should_stop()`` is polled between entries and about every 64 MiB of a large copy;
    when it returns true :class:`ZipAborted` is raised. ``progress(bytes_done, bytes_total)``
    is called after each file and about every 64 MiB.

    On any exception the destination is left as it is, partly written: write to a temporary
    name and delete it on failure.
    """
    layout = _plan(entries)
    ticker = _Ticker(layout.total, progress, should_stop)
    result = ZipResult(layout.total, len(layout.planned), layout.zip64_used)

    if isinstance(dest, (str, os.PathLike)):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        fd = os.open(dest, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            _write_fd(layout, fd, check_sizes=check_sizes, ticker=ticker)
        finally:
            os.close(fd)
    elif isinstance(dest, int):
        if _seekable_regular(dest):
            _write_fd(layout, dest, check_sizes=check_sizes, ticker=ticker)
        else:
            for chunk in _iter_layout(layout, BUFFER_SIZE, check_sizes, ticker):
                _write_all(dest, chunk)
    else:
        fd = _fileno(dest)
        if fd is not None and _seekable_regular(fd):
            dest.flush()
            os.lseek(fd, dest.tell(), os.SEEK_SET)
            end = _write_fd(layout, fd, check_sizes=check_sizes, ticker=ticker)
            dest.seek(end)
        else:
            for chunk in _iter_layout(layout, BUFFER_SIZE, check_sizes, ticker):
                dest.write(chunk)
    ticker.finish()
    return result


def iter_zip(
    entries: Iterable[ZipEntry],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    check_sizes: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[bytes]:
    """Yield the archive of ``entries`` in order, as ``bytes`` chunks of exactly ``chunk_size``
    (the last one shorter). Memory is bounded by three chunks at most: the buffer being filled,
    the chunk being handed out and the one the consumer may still hold (25 MB at 8 MiB).

    Made for streaming, e.g. each chunk as one part of an S3 multipart upload (parts other than
    the last must be at least 5 MiB, hence the 8 MiB default). The bytes are identical to what
    :func:`write_zip` writes. File data is read with ``readinto`` into one reusable buffer: the
    kernel-copy path needs a file destination, which a socket or an upload part is not.

    The entries are validated at once (bad names, :class:`FirstEntryZip64Error`); sizes,
    ``should_stop`` and ``progress`` behave as in :func:`write_zip`, raising from the iterator.
    Closing the iterator early closes any open source file.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    layout = _plan(entries)
    ticker = _Ticker(layout.total, progress, should_stop)
    return _iter_layout(layout, chunk_size, check_sizes, ticker, report_end=True)


def _iter_layout(
    layout: _Layout,
    chunk_size: int,
    check_sizes: bool,
    ticker: _Ticker,
    *,
    report_end: bool = False,
) -> Iterator[bytes]:
    buffer = memoryview(bytearray(chunk_size))
    filled = 0
    segments = _segments(layout, check_sizes=check_sizes, ticker=ticker)
    try:
        for segment in segments:
            if isinstance(segment, _Body):
                remaining = segment.size
                while remaining:
                    want = min(remaining, chunk_size - filled)
                    got = _read_into(segment, buffer[filled : filled + want])
                    filled += got
                    remaining -= got
                    ticker.advance(got)
                    if filled == chunk_size:
                        yield bytes(buffer)
                        filled = 0
                continue
            ticker.advance(len(segment))
            view = memoryview(segment)
            while view:
                take = min(len(view), chunk_size - filled)
                buffer[filled : filled + take] = view[:take]
                filled += take
                view = view[take:]
                if filled == chunk_size:
                    yield bytes(buffer)
                    filled = 0
        if filled:
            yield bytes(buffer[:filled])
    finally:
        segments.close()
    if report_end:
        ticker.finish()
