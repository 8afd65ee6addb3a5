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

This package is a plain library: standard library only, no Django, no project imports. It is
split by job; import from the package, which re-exports the names callers use:

- :mod:`~exports.zipwriter.entries`: :class:`ZipEntry`, :class:`ZipResult`, the errors and the
  entry-name checks;
- :mod:`~exports.zipwriter.layout`: the planning (every offset and size, where ZIP64 goes) and
  the header and end-record bytes;
- :mod:`~exports.zipwriter.segments`: the archive in order as header bytes and open source
  files, the size checks, progress and ``should_stop``;
- :mod:`~exports.zipwriter.copying`: writing to a file descriptor with kernel copies;
- :mod:`~exports.zipwriter.writing`: the three entry points.

The tunables :data:`COPY_STEP`, :data:`BUFFER_SIZE` and :data:`HEADER_FLUSH` live here and the
modules read them from here at call time, so setting one on the package (as the tests do with
``monkeypatch.setattr(zipwriter, "COPY_STEP", ...)``) takes effect everywhere.
"""

from __future__ import annotations

# The kernel-copy class: the fault tests patch ``zipwriter._Copier.copy`` (a class attribute, so
# the patch reaches every use). The ``as`` form marks a name as a deliberate re-export.
from exports.zipwriter.copying import _Copier as _Copier
from exports.zipwriter.entries import LIMIT_16 as LIMIT_16
from exports.zipwriter.entries import LIMIT_32 as LIMIT_32
from exports.zipwriter.entries import (
    FileChangedError,
    FirstEntryZip64Error,
    ZipAborted,
    ZipEntry,
    ZipResult,
    ZipWriteError,
)
from exports.zipwriter.writing import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE
from exports.zipwriter.writing import MiB, iter_zip, write_zip, zip_size

COPY_STEP = 64 * MiB  # kernel copies go in steps of this size; should_stop is polled between
BUFFER_SIZE = 1 * MiB  # the read/write fallback's buffer
HEADER_FLUSH = 1 * MiB  # small writes (headers, in-memory data) are gathered up to this size

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
