"""Where media files live: names relative to MEDIA_ROOT, written atomically.

Only this module turns a stored name into a path, so the S3 backend of the scale-out issue
has one place to change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from django.conf import settings

CHUNK = 1024 * 1024


def media_path(name: str) -> Path:
    """The absolute path of a stored name; refuses names that escape MEDIA_ROOT."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError(f"{name!r} is outside the media folder")
    return path


def store_copy(src: Path, name: str) -> tuple[int, str]:
    """Copy ``src`` to the stored ``name`` through a temp name; return (bytes, SHA-256).

    One read of the source both hashes it and writes the copy.
    """
    final = media_path(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with open(src, "rb") as reader, open(temp, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return size, digest.hexdigest()


def delete(name: str) -> None:
    if name:
        with contextlib.suppress(FileNotFoundError):
            media_path(name).unlink()
