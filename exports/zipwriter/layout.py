"""The layout: every offset and size, computed from the entries alone, and the header bytes.

:func:`_plan` validates the entries, assigns offsets and decides where ZIP64 is needed; the
builders turn a planned entry into its local and central headers, and a layout into its end
records.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from exports.zipwriter.entries import (
    LIMIT_16,
    LIMIT_32,
    FirstEntryZip64Error,
    ZipEntry,
    _validate_name,
)

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
