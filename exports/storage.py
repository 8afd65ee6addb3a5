"""Where bundles are written and served from: a local folder, or an S3-compatible bucket.

Local: written to a temp name in EXPORT_ROOT, fsynced, renamed. S3: streamed into a
multipart upload while it is built (no full local copy), aborted on any failure, handed out
as a short-lived presigned URL.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect

from exports.zipwriter import ZipEntry, iter_zip, write_zip, zip_size
from jobs.http import content_disposition, ranged_file_response
from jobs.storage import client_for, disk_full

TEMP_PREFIX = ".building-"


class BundleDiskFull(OSError):
    """The bundle disk filled up while a bundle was written; the message says what to do."""


def _human(size: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


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

    def save(
        self,
        entries: Iterable[ZipEntry],
        filename: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Stored:
        final = self.path(filename)
        temp = final.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{filename}.part")
        entries = list(entries)
        fd = -1
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            result = write_zip(entries, fd, progress=progress, should_stop=should_stop)
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
                raise BundleDiskFull(self._disk_full_reason(entries)) from exc
            raise
        return Stored(key=filename, size=result.bytes_written)

    def _disk_full_reason(self, entries: list[ZipEntry]) -> str:
        """What a person can act on: how much the bundle needs and how much is free (the
        folder's path stays in the server log, not in a message tenants read)."""
        try:
            needed, free = zip_size(entries), shutil.disk_usage(self.root()).free
            sizes = f" (this bundle needs {_human(needed)}; {_human(free)} is free)"
        except (OSError, ValueError):
            sizes = ""
        return (
            f"No space left on the bundle disk{sizes}, so nothing was kept. Ask your "
            "administrator to free space on the export disk (or wait for old bundles to "
            "expire), or choose fewer videos; then ask for the bundle again."
        )

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def remove_partials(self, export_id: int | None = None) -> int:
        """Delete temp files a killed build left behind (all, or one export's). For one
        export that is not ready, its final-named file too: a build killed between its
        rename and the row that records it leaves a bundle nobody will ever expire."""
        patterns = [f"{TEMP_PREFIX}*" + (f"_{export_id}.zip.part" if export_id else "")]
        if export_id:
            patterns.append(f"heygem_batch_result_*_{export_id}.zip")
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

    def save(
        self,
        entries: Iterable[ZipEntry],
        filename: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Stored:
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
            chunks = iter_zip(entries, part_bytes, should_stop=should_stop, progress=progress)
            for number, chunk in enumerate(chunks, start=1):
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

    def remove_partials(self, export_id: int | None = None) -> int:
        """Abort multipart uploads a killed build left open."""
        client, bucket = self.client(), settings.EXPORT_S3_BUCKET
        suffix = f"_{export_id}.zip" if export_id else ".zip"
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


def store_for(name: str | None = None):
    return S3BundleStore() if (name or settings.EXPORT_STORAGE) == "s3" else LocalBundleStore()


def x_accel_path(key: str) -> str:
    return settings.EXPORT_X_ACCEL_PREFIX.rstrip("/") + "/" + quote(key)


def bundle_response(request: HttpRequest, export) -> HttpResponse:
    """Hand a ready bundle to the client: a presigned S3 URL, an nginx X-Accel-Redirect, or
    the file itself with Range support."""
    store = store_for(export.storage)
    if isinstance(store, S3BundleStore):
        return HttpResponseRedirect(store.presigned_url(export.storage_key, export.filename))
    if settings.EXPORT_X_ACCEL_PREFIX:
        response = HttpResponse(content_type="application/zip")
        response["X-Accel-Redirect"] = x_accel_path(export.storage_key)
        response["Content-Disposition"] = content_disposition(export.filename)
        return response
    path = store.path(export.storage_key)
    if not path.exists():
        raise Http404("The bundle file is missing; ask for a new bundle.")
    return ranged_file_response(
        request, path, content_type="application/zip", filename=export.filename
    )
