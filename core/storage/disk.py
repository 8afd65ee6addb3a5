"""Recognising a full disk, wherever the error comes from (a write, fsync, or a tool's
message), so renders and bundles can tell a person what to do instead of a bare errno."""

from __future__ import annotations

import errno
import os

from django.utils.translation import ngettext

#: errno values that mean "the disk (or the user's quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_TEXTS = tuple(os.strerror(code) for code in DISK_FULL_ERRNOS)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is a full disk — an OSError with its
    errno, or a tool's message with the system's text (ffmpeg reports it that way)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(seen) for text in _DISK_FULL_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def decimal_size(size: float) -> str:
    """A size in decimal units, as disk tools print free space: "512 bytes", "1.5 GB"."""
    if size < 1000:
        count = round(size)
        return ngettext("%(num)d byte", "%(num)d bytes", count) % {"num": count}
    for unit in ("KB", "MB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} GB"
