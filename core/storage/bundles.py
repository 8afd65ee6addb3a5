"""Where bundles are written and served from: a local folder, or an S3-compatible bucket.

Local: written to a temp name in EXPORT_ROOT, fsynced, renamed. S3: streamed into a
multipart upload while it is built (no full local copy), aborted on any failure, handed out
as a short-lived presigned URL.

A store writes a :class:`BundleBody` — anything that can write itself to a file descriptor
and hand out its bytes in chunks (``exports.storage.ZipBody`` for a ZIP) — so this module
knows nothing of what a bundle holds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from django.conf import settings
from django.utils.translation import gettext as _

from core.http import content_disposition
from core.storage import backend_for
from core.storage.disk import decimal_size, disk_full
from core.storage.s3 import client_for

TEMP_PREFIX = ".building-"


class BundleBody(Protocol):
    """The bytes of one bundle, produced on demand."""

    def size(self) -> int:
        """The exact length in bytes (for the disk-full message)."""

    def write_to(self, fd: int) -> int:
        """Write the whole body to a regular file's descriptor; return the bytes written."""

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks of exactly ``chunk_size`` bytes (the last one shorter)."""


class BundleDiskFull(OSError):
    """The bundle disk filled up while a bundle was written; the message says what to do."""


@dataclass(frozen=True)
class Stored:
    key: str
    size: int


class LocalBundleStore:
    name = "local"

    def root(self) -> Path:
        root = Path(settings.EXPORT_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def path(self, key: str) -> Path:
        root = self.root().resolve()
        path = (root / key).resolve()
        if path.parent != root:
            raise ValueError(f"{key!r} is not a bundle name")
        return path

    def save(self, body: BundleBody, filename: str) -> Stored:
        final = self.path(filename)
        temp = final.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{filename}.part")
        fd = -1
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            written = body.write_to(fd)
            os.fsync(fd)  # a full disk may only show here (delayed allocation)
            fd, closing = -1, fd
            os.close(closing)
            os.replace(temp, final)
        except BaseException as exc:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            if isinstance(exc, OSError) and disk_full(exc):
                raise BundleDiskFull(self._disk_full_reason(body)) from exc
            raise
        return Stored(key=filename, size=written)

    def _disk_full_reason(self, body: BundleBody) -> str:
        """What a person can act on: how much the bundle needs and how much is free (the
        folder's path stays in the server log, not in a message tenants read)."""
        try:
            needed, free = body.size(), shutil.disk_usage(self.root()).free
        except (OSError, ValueError):
            return _(
                "No space left on the bundle disk, so nothing was kept. Ask your administrator "
                "to free space on the export disk (or wait for old bundles to expire), or "
                "choose fewer videos; then ask for the bundle again."
            )
        return _(
            "No space left on the bundle disk (this bundle needs %(needed)s; %(free)s is free), "
            "so nothing was kept. Ask your administrator to free space on the export disk (or "
            "wait for old bundles to expire), or choose fewer videos; then ask for the bundle "
            "again."
        ) % {"needed": decimal_size(needed), "free": decimal_size(free)}

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def remove_partials(self, name_suffix: str = "", *, final_too: bool = False) -> int:
        """Delete temp files killed builds left behind (all, or those of bundles whose name
        ends with ``name_suffix``). With ``final_too`` also the final-named files ending so: a
        build killed between its rename and the row that records it leaves a bundle nobody
        would ever expire."""
        patterns = [f"{TEMP_PREFIX}*{name_suffix}.part" if name_suffix else f"{TEMP_PREFIX}*"]
        if final_too and name_suffix:
            patterns.append(f"*{name_suffix}")
        removed = 0
        for pattern in patterns:
            for path in self.root().glob(pattern):
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class S3BundleStore:
    name = "s3"

    def client(self):
        return client_for(settings.EXPORT_S3_ENDPOINT_URL, settings.EXPORT_S3_REGION)

    def key(self, filename: str) -> str:
        return f"{settings.EXPORT_S3_PREFIX}{filename}"

    def save(self, body: BundleBody, filename: str) -> Stored:
        client, bucket, key = self.client(), settings.EXPORT_S3_BUCKET, self.key(filename)
        upload = client.create_multipart_upload(
            Bucket=bucket,
            Key=key,
            ContentType="application/zip",
            ContentDisposition=content_disposition(filename),
        )
        upload_id, parts, size = upload["UploadId"], [], 0
        part_bytes = max(5 * 1024 * 1024, settings.EXPORT_S3_PART_BYTES)  # S3's minimum part
        try:
            # Each chunk is one part: the bundle is uploaded while it is built, never kept whole.
            for number, chunk in enumerate(body.chunks(part_bytes), start=1):
                response = client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                size += len(chunk)
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return Stored(key=key, size=size)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=settings.EXPORT_S3_BUCKET, Key=key)

    def download(self, key: str, target: Path) -> None:
        """Copy a bundle out of the bucket to a local file (``export_bundle --out``)."""
        self.client().download_file(settings.EXPORT_S3_BUCKET, key, str(target))

    def presigned_url(self, key: str, filename: str) -> str:
        return self.client().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": settings.EXPORT_S3_BUCKET,
                "Key": key,
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": "application/zip",
            },
            ExpiresIn=settings.EXPORT_PRESIGN_SECONDS,
        )

    def remove_partials(self, name_suffix: str = "", *, final_too: bool = False) -> int:
        """Abort multipart uploads killed builds left open (all, or those of bundles whose
        name ends with ``name_suffix``). Finished objects are never half-written, so
        ``final_too`` changes nothing here."""
        client, bucket = self.client(), settings.EXPORT_S3_BUCKET
        suffix = name_suffix or ".zip"
        aborted = 0
        for upload in client.list_multipart_uploads(
            Bucket=bucket, Prefix=settings.EXPORT_S3_PREFIX
        ).get("Uploads", []):
            if upload["Key"].endswith(suffix):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted


def bundle_store(name: Literal["local", "s3"] | str | None = None):
    """The store named ``name`` (an export row's ``storage``), or the configured one."""
    chosen = name or backend_for("bundles")
    return S3BundleStore() if chosen == "s3" else LocalBundleStore()
