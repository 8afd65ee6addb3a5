"""Writing to a file descriptor: file bodies copied by the kernel, headers gathered in between.

:class:`_Copier` tries ``os.copy_file_range``, then ``os.sendfile``, then a ``readinto``/``write``
loop, and keeps holes in a source as holes; :func:`_write_fd` writes a whole layout with it.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO

from exports import zipwriter  # BUFFER_SIZE, COPY_STEP, HEADER_FLUSH: read at call time
from exports.zipwriter.layout import _Layout
from exports.zipwriter.segments import _Body, _changed, _read_stream, _segments, _Ticker

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# errno values meaning "this copy method does not work for these two files": try the next one.
_FALLBACK_ERRNOS = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ETXTBSY}
)


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
                    self._buffer = memoryview(bytearray(zipwriter.BUFFER_SIZE))
                source.seek(offset)
                got = source.readinto(self._buffer[: min(count, zipwriter.BUFFER_SIZE)])
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
                data = _read_stream(body, min(remaining, zipwriter.BUFFER_SIZE))
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
                copied = self._copy_some(
                    body.file, position, min(end - position, zipwriter.COPY_STEP)
                )
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
                if len(pending) >= zipwriter.HEADER_FLUSH:
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
