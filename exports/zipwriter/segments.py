"""The archive as a sequence of segments: header bytes, and open source files to copy.

:func:`_segments` opens each source in turn (checking its size) and yields its local header
then a :class:`_Body`; after the last entry come the central directory and the end records.
:class:`_Ticker` counts the bytes, polls ``should_stop`` and reports ``progress``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO, NamedTuple

from exports import zipwriter  # COPY_STEP, HEADER_FLUSH: read from the package at call time
from exports.zipwriter.entries import FileChangedError, ZipAborted, ZipEntry
from exports.zipwriter.layout import (
    _central_header,
    _dos_datetime,
    _end_records,
    _Layout,
    _local_header,
    _Planned,
)


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
        if self.done - self._last >= zipwriter.COPY_STEP:
            self.check()
            self.report()

    def finish(self) -> None:
        self.done = self.total
        self.report()


def _changed(name: str, expected: int, found: int) -> FileChangedError:
    return FileChangedError(
        f"{name}: file changed since it was rendered (expected {expected} bytes, found {found})",
        entry=name,
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
                f"{entry.name}: file is missing (removed since it was rendered)",
                entry=entry.name,
                missing=True,
            ) from exc
        with source:
            info = os.fstat(source.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FileChangedError(
                    f"{entry.name}: source is not a regular file", entry=entry.name
                )
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
        if len(pending) >= zipwriter.HEADER_FLUSH:
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
            f"{entry.name}: file is missing (removed since it was rendered)",
            entry=entry.name,
            missing=True,
        ) from exc
    try:
        stamp = _dos_datetime(entry.mtime or build_time)
        stamps.append(stamp)
        yield _local_header(item, *stamp)
        yield _Body(stream, entry.size, entry.name, stream=True)
        if stream.read(1):
            raise FileChangedError(
                f"{entry.name}: file changed since it was rendered (expected {entry.size} "
                "bytes, found more)",
                entry=entry.name,
            )
    finally:
        stream.close()


def _read_stream(body: _Body, count: int) -> bytes:
    data = body.file.read(count)
    if not data:
        raise FileChangedError(
            f"{body.name}: file changed since it was rendered (expected {body.size} bytes, "
            "found fewer)",
            entry=body.name,
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
