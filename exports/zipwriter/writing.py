"""The entry points: :func:`zip_size`, :func:`write_zip` and :func:`iter_zip`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from exports import zipwriter  # BUFFER_SIZE: read from the package at call time
from exports.zipwriter.copying import _fileno, _seekable_regular, _write_all, _write_fd
from exports.zipwriter.entries import ZipEntry, ZipResult
from exports.zipwriter.layout import _Layout, _plan
from exports.zipwriter.segments import _Body, _read_into, _segments, _Ticker

MiB = 1 << 20
DEFAULT_CHUNK_SIZE = 8 * MiB  # iter_zip's chunk size (an S3 part is at least 5 MiB)


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
            for chunk in _iter_layout(layout, zipwriter.BUFFER_SIZE, check_sizes, ticker):
                _write_all(dest, chunk)
    else:
        fd = _fileno(dest)
        if fd is not None and _seekable_regular(fd):
            dest.flush()
            os.lseek(fd, dest.tell(), os.SEEK_SET)
            end = _write_fd(layout, fd, check_sizes=check_sizes, ticker=ticker)
            dest.seek(end)
        else:
            for chunk in _iter_layout(layout, zipwriter.BUFFER_SIZE, check_sizes, ticker):
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
