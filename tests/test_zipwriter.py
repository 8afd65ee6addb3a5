"""The ZIP writer of exports: format, compatibility with real unzippers, ZIP64, failures.

Archives are built from small real files made in tmp_path and checked by Python's zipfile and
by Info-ZIP's unzip/zipinfo (plus 7-Zip and bsdtar when installed). The archive over 4 GiB is a
sparse file copied hole for hole, so it costs milliseconds and a few KB of disk.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import struct
import subprocess
import threading
import zipfile
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exports import zipwriter
from exports.zipwriter import (
    FileChangedError,
    FirstEntryZip64Error,
    ZipAborted,
    ZipEntry,
    ZipResult,
    iter_zip,
    write_zip,
    zip_size,
)

CHINESE = "数字人_北京_第1条.mp4"
GiB = 1 << 30
MTIME = datetime(2025, 12, 19, 14, 20, 36)
UTF8_ENV = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


# --- helpers --------------------------------------------------------------------------------------


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def crc32_of_zeros(count: int) -> int:
    """zlib.crc32(bytes(count)) in O(log count): the CRC register is linear over GF(2), so
    ``count`` zero bytes are one 32x32 matrix raised to the power 8 * count (zlib's
    crc32_combine trick)."""
    one_zero_bit = [0xEDB88320] + [1 << row for row in range(31)]
    register, bits = 0xFFFFFFFF, 8 * count
    while bits:
        if bits & 1:
            register = _gf2_times(one_zero_bit, register)
        one_zero_bit = [_gf2_times(one_zero_bit, column) for column in one_zero_bit]
        bits >>= 1
    return register ^ 0xFFFFFFFF


def rendered(path: Path, name: str, mtime: datetime | None = MTIME) -> ZipEntry:
    """An entry as the exports service makes it: size and CRC recorded at render time."""
    data = path.read_bytes()
    return ZipEntry(name, path, len(data), zlib.crc32(data), mtime=mtime)


def manifest(text: str = "path,bytes\n") -> ZipEntry:
    return ZipEntry.from_bytes("manifest.csv", text.encode(), mtime=MTIME)


def run_tool(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, env=UTF8_ENV, check=False)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(
        errors="replace"
    )
    return proc.stdout.decode("utf-8")


def unzip_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        pytest.skip(f"{name} is not installed")
    return tool


@pytest.fixture
def videos(tmp_path: Path) -> dict[str, Path]:
    """Real files of awkward sizes under awkward names (the names are ZIP paths)."""
    folder = tmp_path / "media"
    folder.mkdir()
    sizes = {
        CHINESE: 3 * 2**20 + 17,
        "批次 7/客户A/😀 微笑.mp4": 100_003,
        "clips/one-byte.mov": 1,
        "clips/empty.mkv": 0,
    }
    files = {}
    for index, (name, size) in enumerate(sizes.items()):
        path = folder / f"src{index}.bin"
        path.write_bytes(os.urandom(size))
        files[name] = path
    return files


@pytest.fixture
def entries(videos: dict[str, Path]) -> list[ZipEntry]:
    return [manifest("path,bytes\n数字人,1\n"), *(rendered(p, n) for n, p in videos.items())]


def central_records(archive: bytes) -> list[tuple[int, int, bytes]]:
    """(version needed, flags, extra) of each central directory header, read from the bytes."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        infos = zf.infolist()
        start = zf.start_dir
    records, position = [], start
    for _ in infos:
        fields = struct.unpack_from("<IHHHHHHIIIHHHHHII", archive, position)
        assert fields[0] == 0x02014B50
        name_len, extra_len, comment_len = fields[10:13]
        extra_at = position + 46 + name_len
        records.append((fields[2], fields[3], archive[extra_at : extra_at + extra_len]))
        position = extra_at + extra_len + comment_len
    return records


def has_zip64_end(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-22 - 20, os.SEEK_END)
        return fh.read(4) == b"PK\x06\x07"


# --- the helper itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 1000, 3 * 2**20 + 5])
def test_crc32_of_zeros_matches_zlib(count):
    assert crc32_of_zeros(count) == zlib.crc32(bytes(count))


# --- format ---------------------------------------------------------------------------------------


def test_zipfile_reads_back_every_entry(entries, videos, tmp_path):
    target = tmp_path / "bundle.zip"
    result = write_zip(entries, target)

    assert result == ZipResult(target.stat().st_size, len(entries), zip64_used=False)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [e.name for e in entries]
        assert zf.read("manifest.csv") == "path,bytes\n数字人,1\n".encode()
        for name, path in videos.items():
            assert zf.read(name) == path.read_bytes()
        for info in zf.infolist():
            assert info.flag_bits & 0x800
            assert not info.flag_bits & 0x08  # no data descriptor
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.create_system == 3
            assert info.external_attr >> 16 == 0o100644
            assert info.date_time == (2025, 12, 19, 14, 20, 36)
            assert info.extra == b""


def test_local_headers_carry_sizes_and_crc(entries, tmp_path):
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)
    archive = target.read_bytes()
    with zipfile.ZipFile(target) as zf:
        for info in zf.infolist():
            fields = struct.unpack_from("<IHHHHHIIIHH", archive, info.header_offset)
            signature, version, flags, method, _, _, crc, csize, usize, _, extra_len = fields
            assert (signature, version, flags, method) == (0x04034B50, 20, 0x800, 0)
            assert (crc, csize, usize, extra_len) == (info.CRC, info.file_size, info.file_size, 0)


def test_small_archive_has_no_zip64_anywhere(entries, tmp_path):
    target = tmp_path / "bundle.zip"
    assert write_zip(entries, target).zip64_used is False
    assert not has_zip64_end(target)
    for version, flags, extra in central_records(target.read_bytes()):
        assert (version, flags, extra) == (20, 0x800, b"")


def test_zip_size_predicts_the_archive_without_touching_files(entries, tmp_path):
    target = tmp_path / "bundle.zip"
    predicted = zip_size(entries)
    assert write_zip(entries, target).bytes_written == predicted == target.stat().st_size

    missing = [manifest(), ZipEntry("gone.mp4", tmp_path / "never-made.mp4", 10**6, 0)]
    assert zip_size(missing) == (30 + 12 + 11) + (30 + 8 + 10**6) + (46 + 12) + (46 + 8) + 22
    assert zip_size([]) == 22


def test_empty_archive(tmp_path):
    target = tmp_path / "empty.zip"
    assert write_zip([], target) == ZipResult(22, 0, False)
    with zipfile.ZipFile(target) as zf:
        assert zf.namelist() == []


@pytest.mark.parametrize(
    ("chunk_size", "small_only"), [(1, True), (7, True), (1000, False), (8 * 2**20, False)]
)
def test_iter_zip_yields_the_same_bytes_in_fixed_chunks(entries, tmp_path, chunk_size, small_only):
    if small_only:  # a byte at a time through 3 MiB would only be slow
        entries = [e for e in entries if e.size < 1000]
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)
    chunks = list(iter_zip(entries, chunk_size=chunk_size))
    assert all(type(chunk) is bytes for chunk in chunks)
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size
    assert b"".join(chunks) == target.read_bytes()


def test_every_kind_of_destination_gets_the_same_bytes(entries, tmp_path):
    reference = tmp_path / "reference.zip"
    write_zip(entries, reference)
    expected = reference.read_bytes()

    # an open descriptor of a regular file, after a prefix: the archive follows the prefix
    path = tmp_path / "fd.zip"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, b"PREFIX" + b"stale bytes to be discarded")
        os.lseek(fd, 6, os.SEEK_SET)
        write_zip(entries, fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 6 + len(expected)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"PREFIX" + expected

    # a buffered file object with something already buffered
    path = tmp_path / "object.zip"
    with path.open("wb") as fh:
        fh.write(b"PK")  # still in the buffer when write_zip starts
        write_zip(entries, fh)
        fh.write(b"!")
    assert path.read_bytes() == b"PK" + expected + b"!"

    # no file descriptor at all
    buffer = io.BytesIO()
    write_zip(entries, buffer)
    assert buffer.getvalue() == expected

    # a file opened for appending (no positioned writes: streamed)
    path = tmp_path / "append.zip"
    path.write_bytes(b"")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        write_zip(entries, fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == expected

    # a pipe
    read_end, write_end = os.pipe()
    received = bytearray()

    def drain():
        while data := os.read(read_end, 1 << 16):
            received.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        write_zip(entries, write_end)
    finally:
        os.close(write_end)
        reader.join()
        os.close(read_end)
    assert bytes(received) == expected


def test_sparse_sources_keep_their_data_and_their_holes(tmp_path):
    source = tmp_path / "sparse.bin"
    head, middle = os.urandom(2**20), os.urandom(4096 * 3 + 5)
    with source.open("wb") as fh:
        fh.write(head)
        fh.seek(40 * 2**20)
        fh.write(middle)
        fh.truncate(60 * 2**20)  # a trailing hole, then the central directory follows
    entries = [manifest(), rendered(source, "sparse.mp4"), rendered(source, "again.mp4")]
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)

    assert target.read_bytes() == b"".join(iter_zip(entries))
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        assert zf.read("sparse.mp4") == source.read_bytes()


# --- copying: kernel methods and their fallbacks --------------------------------------------------


def _failing(error: int):
    def fail(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    return fail


@pytest.mark.parametrize(
    ("patches", "mover"),
    [
        pytest.param({}, "copy_file_range", id="copy_file_range"),
        pytest.param({"copy_file_range": _failing(errno.EXDEV)}, "sendfile", id="EXDEV"),
        pytest.param({"copy_file_range": lambda *a, **k: 0}, "sendfile", id="returns-0"),
        pytest.param(
            {"copy_file_range": _failing(errno.ENOSYS), "sendfile": _failing(errno.EINVAL)},
            "read/write",
            id="ENOSYS-then-EINVAL",
        ),
        pytest.param({"copy_file_range": None, "sendfile": None}, "read/write", id="absent"),
    ],
)
def test_copy_falls_back_to_the_next_method(entries, tmp_path, monkeypatch, patches, mover):
    moved: Counter[str] = Counter()

    def spying(name, func):
        def spy(*args, **kwargs):
            copied = func(*args, **kwargs)
            moved[name] += copied
            return copied

        return spy

    for name in ("copy_file_range", "sendfile"):
        if name not in patches:
            monkeypatch.setattr(os, name, spying(name, getattr(os, name)))
        elif patches[name] is None:
            monkeypatch.delattr(os, name)
        else:
            monkeypatch.setattr(os, name, patches[name])
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)

    file_bytes = sum(e.size for e in entries if e.source is not None)
    if mover == "read/write":
        assert sum(moved.values()) == 0
    else:
        assert moved == Counter({mover: file_bytes})
    assert target.read_bytes() == b"".join(iter_zip(entries))
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None


def test_other_copy_errors_are_not_swallowed(entries, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "copy_file_range", _failing(errno.ENOSPC))
    with pytest.raises(OSError, match="No space left"):
        write_zip(entries, tmp_path / "bundle.zip")


# --- a changed file fails the build ---------------------------------------------------------------


def test_size_mismatch_raises_and_the_temp_file_can_be_removed(entries, videos, tmp_path):
    videos[CHINESE].write_bytes(b"re-rendered, shorter")
    part = tmp_path / "heygem_batch_result.zip.part"
    message = (
        f"{CHINESE}: file changed since it was rendered (expected {3 * 2**20 + 17} bytes, found 20)"
    )
    with pytest.raises(FileChangedError, match=re.escape(message)):
        write_zip(entries, part)
    part.unlink()
    assert not part.exists()
    with pytest.raises(FileChangedError, match=re.escape(message)):
        list(iter_zip(entries))


def test_missing_file_raises_file_changed(entries, videos, tmp_path):
    videos["clips/one-byte.mov"].unlink()
    with pytest.raises(FileChangedError, match=re.escape("clips/one-byte.mov: file is missing")):
        write_zip(entries, tmp_path / "bundle.zip")


def test_unchecked_sizes_still_never_write_a_short_entry(videos, tmp_path):
    path = videos["clips/one-byte.mov"]
    declared = ZipEntry("clips/one-byte.mov", path, 10, 0)
    with pytest.raises(FileChangedError, match=r"expected 10 bytes, found 1\)"):
        write_zip([manifest(), declared], tmp_path / "a.zip", check_sizes=False)
    with pytest.raises(FileChangedError, match=r"expected 10 bytes, found 1\)"):
        list(iter_zip([manifest(), declared], check_sizes=False))


@pytest.mark.parametrize("streamed", [False, True], ids=["write_zip", "iter_zip"])
def test_a_file_shrinking_during_the_copy_raises(videos, tmp_path, monkeypatch, streamed):
    monkeypatch.setattr(zipwriter, "COPY_STEP", 2**20)  # poll every MiB instead of 64
    path = videos[CHINESE]
    entries = [manifest(), rendered(path, CHINESE)]
    reported: list[int] = []
    truncated: list[bool] = []

    def progress(done, total):
        reported.append(done)

    def should_stop():  # polled inside the copy: someone re-renders the file right then
        if reported and not truncated:
            os.truncate(path, 1000)
            truncated.append(True)
        return False

    message = rf"{re.escape(CHINESE)}: file changed .* found 1000\)"
    with pytest.raises(FileChangedError, match=message):
        if streamed:
            list(iter_zip(entries, 2**16, should_stop=should_stop, progress=progress))
        else:
            write_zip(entries, tmp_path / "a.zip", should_stop=should_stop, progress=progress)
    assert truncated


# --- stopping and progress ------------------------------------------------------------------------


def test_should_stop_aborts_between_entries(entries, tmp_path):
    polls = []

    def stop_at_third_poll():
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(ZipAborted):
        write_zip(entries, tmp_path / "a.zip", should_stop=stop_at_third_poll)
    assert len(polls) == 3
    with pytest.raises(ZipAborted):
        list(iter_zip(entries, should_stop=lambda: True))


def test_should_stop_is_polled_inside_a_large_copy(entries, tmp_path, monkeypatch):
    monkeypatch.setattr(zipwriter, "COPY_STEP", 2**20)  # poll every MiB instead of 64
    reported: list[int] = []

    def should_stop():  # stop once the copy of the 3 MiB video has been seen under way
        return bool(reported)

    with pytest.raises(ZipAborted):
        write_zip(
            entries,
            tmp_path / "a.zip",
            should_stop=should_stop,
            progress=lambda done, total: reported.append(done),
        )
    assert len(reported) == 1
    assert 2**20 < reported[0] < 3 * 2**20  # reported, then stopped, inside the video


def test_progress_reports_up_to_the_total(entries, tmp_path):
    reports: list[tuple[int, int]] = []
    result = write_zip(entries, tmp_path / "a.zip", progress=lambda d, t: reports.append((d, t)))
    assert reports[-1] == (result.bytes_written, result.bytes_written)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    assert {t for _, t in reports} == {result.bytes_written}


# --- names, entries, times ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../up.mp4",
        "a/../../b.mp4",
        "..",
        "a\\b.mp4",
        "a\x00b.mp4",
        "folder/",
        "a//b.mp4",
        "\udc80.mp4",
        "北" * 21846,  # 65538 bytes in UTF-8
    ],
)
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError):
        ZipEntry.from_bytes(name, b"x")


@pytest.mark.parametrize(
    "name", [CHINESE, "a/b/c.mp4", "v2..final.mp4", ".hidden.mp4", "北" * 21845]
)
def test_good_names_are_accepted(name):
    assert ZipEntry.from_bytes(name, b"x").name == name


def test_entry_consistency_is_checked(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        ZipEntry("a.mp4", tmp_path / "a.mp4", 1, 0, data=b"x")
    with pytest.raises(ValueError, match="exactly one"):
        ZipEntry("a.mp4", None, 1, 0)
    with pytest.raises(ValueError, match="crc32"):
        ZipEntry("a.csv", None, 1, 0, data=b"x")
    with pytest.raises(ValueError, match="size"):
        ZipEntry("a.csv", None, 2, zlib.crc32(b"x"), data=b"x")
    with pytest.raises(ValueError, match="duplicate"):
        zip_size([manifest(), manifest()])


def test_dos_times_are_clamped_and_local(tmp_path):
    aware = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
    local = aware.astimezone()
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"frames")
    os.utime(source, (0, datetime(2023, 3, 4, 5, 6, 7).timestamp()))
    entries = [
        ZipEntry.from_bytes("old.txt", b"", mtime=datetime(1970, 1, 1)),
        ZipEntry.from_bytes("future.txt", b"", mtime=datetime(2200, 1, 1)),
        ZipEntry.from_bytes("aware.txt", b"", mtime=aware),
        rendered(source, "clip.mp4", mtime=None),
    ]
    target = tmp_path / "times.zip"
    write_zip(entries, target)
    with zipfile.ZipFile(target) as zf:
        assert [i.date_time for i in zf.infolist()] == [
            (1980, 1, 1, 0, 0, 0),
            (2107, 12, 31, 23, 59, 58),
            (local.year, local.month, local.day, local.hour, local.minute, local.second),
            (2023, 3, 4, 5, 6, 6),  # DOS seconds are even
        ]


# --- real unzippers -------------------------------------------------------------------------------


def test_unzip_tests_and_lists_chinese_names(entries, videos, tmp_path):
    unzip, zipinfo = unzip_tool("unzip"), unzip_tool("zipinfo")
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)

    tested = run_tool(unzip, "-t", str(target))
    assert "No errors detected" in tested
    assert f"testing: {CHINESE}" in tested
    listing = run_tool(unzip, "-l", str(target))
    for entry in entries:
        assert entry.name in listing
    assert run_tool(zipinfo, "-1", str(target)).splitlines() == [e.name for e in entries]

    out = tmp_path / "unpacked"
    run_tool(unzip, "-q", str(target), "-d", str(out))
    for name, path in videos.items():
        assert (out / name).read_bytes() == path.read_bytes()
    assert (out / CHINESE).stat().st_mode & 0o777 == 0o644


def test_7zip_and_bsdtar_read_the_names(entries, tmp_path):
    target = tmp_path / "bundle.zip"
    write_zip(entries, target)
    names = {e.name for e in entries}
    if shutil.which("7z"):
        assert "Everything is Ok" in run_tool("7z", "t", str(target))
        slt = run_tool("7z", "l", "-slt", str(target))
        assert {line[7:] for line in slt.splitlines() if line.startswith("Path = ")} >= names
    if shutil.which("bsdtar"):
        assert set(run_tool("bsdtar", "-tf", str(target)).splitlines()) == names
    if not (shutil.which("7z") or shutil.which("bsdtar")):
        pytest.skip("neither 7z nor bsdtar is installed")


# --- ZIP64 ----------------------------------------------------------------------------------------


def test_first_entry_may_not_need_zip64(tmp_path):
    big = ZipEntry("big.mp4", tmp_path / "not-even-there.mp4", 5 * GiB, 0)
    target = tmp_path / "a.zip"
    with pytest.raises(FirstEntryZip64Error, match=re.escape("manifest.csv first")):
        zip_size([big, manifest()])
    with pytest.raises(FirstEntryZip64Error):
        write_zip([big, manifest()], target)
    assert not target.exists()  # refused before the destination was opened
    with pytest.raises(FirstEntryZip64Error):
        iter_zip([big, manifest()])
    # one byte under the limit: the entry has no ZIP64, only the end records (the directory
    # starts past 4 GiB)
    edge = ZipEntry("edge.mp4", tmp_path / "x", 0xFFFFFFFE, 0)
    assert zip_size([edge]) == (30 + 8 + 0xFFFFFFFE) + (46 + 8) + 56 + 20 + 22


def test_zip64_size_arithmetic_without_files(tmp_path):
    big = ZipEntry("big.mp4", tmp_path / "absent", 5 * GiB, 0)
    tail = ZipEntry.from_bytes("tail.txt", b"tail")
    head = manifest()  # 11 bytes of data
    expected = (
        (30 + 12 + 11)  # manifest, no ZIP64
        + (30 + 7 + 20 + 5 * GiB)  # big: ZIP64 extra with both sizes in the local header
        + (30 + 8 + 4)  # tail: its offset is past 4 GiB, but a local header has no offset
        + (46 + 12)
        + (46 + 7 + 4 + 16)  # big: both sizes in the central ZIP64 extra
        + (46 + 8 + 4 + 8)  # tail: its offset in the central ZIP64 extra
        + 56
        + 20
        + 22  # ZIP64 end record and locator (directory past 4 GiB), end record
    )
    assert zip_size([head, big, tail]) == expected


def _filesystem_keeps_holes(folder: Path) -> bool:
    if not hasattr(os, "SEEK_DATA"):
        return False
    probe = folder / "probe.sparse"
    with probe.open("wb") as fh:
        fh.truncate(2**20)
        try:
            os.lseek(fh.fileno(), 0, os.SEEK_DATA)
        except OSError as exc:
            return exc.errno == errno.ENXIO  # no data anywhere: it is all hole
        finally:
            probe.unlink()
    return False


def test_archive_over_4_gib_is_valid_zip64(tmp_path):
    if not _filesystem_keeps_holes(tmp_path):
        pytest.skip("this filesystem has no holes: the test would write 5 GiB")
    source = tmp_path / "big.bin"
    with source.open("wb") as fh:
        fh.truncate(5 * GiB)
    big = ZipEntry("大文件.mp4", source, 5 * GiB, crc32_of_zeros(5 * GiB), mtime=MTIME)
    tail = ZipEntry.from_bytes("结尾.txt", b"after 4 GiB", mtime=MTIME)
    entries = [manifest(), big, tail]
    target = tmp_path / "big.zip"

    result = write_zip(entries, target)

    assert result.zip64_used
    assert result.bytes_written == zip_size(entries) == target.stat().st_size > 5 * GiB
    assert target.stat().st_blocks * 512 < 2**20  # copied hole for hole
    assert has_zip64_end(target)
    with zipfile.ZipFile(target) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["manifest.csv", "大文件.mp4", "结尾.txt"]
        assert infos[1].file_size == 5 * GiB
        assert crc32_of_zeros(5 * GiB) == infos[1].CRC
        assert infos[2].header_offset > 4 * GiB
        assert zf.read("manifest.csv") == b"path,bytes\n"
        assert zf.read("结尾.txt") == b"after 4 GiB"
        with zf.open("大文件.mp4") as member:
            assert member.read(2**20) == bytes(2**20)
        assert all(i.flag_bits & 0x800 and i.compress_type == 0 for i in infos)
        # the first entry: no ZIP64 in its local header nor in its central record
        assert infos[0].extra == b""
        assert infos[1].extra[:4] == struct.pack("<HH", 1, 16)
        assert infos[2].extra[:4] == struct.pack("<HH", 1, 8)

    with target.open("rb") as fh:
        first = struct.unpack("<IHHHHHIIIHH", fh.read(30))
        assert first[0] == 0x04034B50 and first[1] == 20 and first[10] == 0  # no extra
        fh.seek(infos[1].header_offset)
        local = fh.read(30 + len("大文件.mp4".encode()) + 20)
        assert struct.unpack_from("<II", local, 18) == (0xFFFFFFFF, 0xFFFFFFFF)
        assert local[-20:] == struct.pack("<HHQQ", 1, 16, 5 * GiB, 5 * GiB)

    # Info-ZIP, 7-Zip and libarchive list it and check the small entries (checking 5 GiB of
    # zeros takes them 6-45 s, so the big entry's CRC is checked above against crc32_of_zeros).
    listing = run_tool(unzip_tool("unzip"), "-l", str(target))
    assert "5368709120" in listing and "大文件.mp4" in listing
    tested = run_tool("unzip", "-t", str(target), "manifest.csv", "结尾.txt")
    assert "No errors detected" in tested
    if shutil.which("7z"):
        run_tool("7z", "t", str(target), "manifest.csv", "结尾.txt")
        assert "5368709120" in run_tool("7z", "l", str(target))
    if shutil.which("bsdtar"):
        assert "大文件.mp4" in run_tool("bsdtar", "-tvf", str(target))


@pytest.fixture(scope="module")
def tiny_entries() -> list[ZipEntry]:
    return [ZipEntry.from_bytes(f"f/{n:05d}.txt", b"", mtime=MTIME) for n in range(65_600)]


def test_entry_count_needs_zip64_end_from_65535(tiny_entries):
    per_entry = (30 + 11) + (46 + 11)
    assert zip_size(tiny_entries[:65534]) - zip_size(tiny_entries[:65533]) == per_entry
    assert zip_size(tiny_entries[:65535]) - zip_size(tiny_entries[:65534]) == per_entry + 76


def test_more_than_65535_entries_open_everywhere(tiny_entries, tmp_path):
    target = tmp_path / "many.zip"
    result = write_zip(tiny_entries, target)
    assert result == ZipResult(target.stat().st_size, 65_600, zip64_used=True)
    assert has_zip64_end(target)
    assert b"".join(iter_zip(tiny_entries)) == target.read_bytes()
    with zipfile.ZipFile(target) as zf:
        infos = zf.infolist()
        assert len(infos) == 65_600
        assert infos[-1].filename == "f/65599.txt"
        assert zf.read("f/65599.txt") == b""
        assert all(i.extra == b"" for i in infos)  # only the end records are ZIP64
    assert "No errors detected" in run_tool(unzip_tool("unzip"), "-tq", str(target))
