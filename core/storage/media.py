"""Where media files (uploaded assets, rendered videos, thumbnails) live.

Two backends behind one set of functions, chosen by ``MEDIA_STORAGE`` (``core.storage``):

- ``local``: names relative to ``MEDIA_ROOT``, written through a temp name, fsynced, renamed.
- ``s3``: objects under ``MEDIA_S3_PREFIX`` in ``MEDIA_S3_BUCKET`` (any S3-compatible
  service, ``MEDIA_S3_ENDPOINT_URL``). A render worker on another host fetches its inputs to
  its own scratch folder and uploads its output; clients get short-lived presigned URLs.

Callers never build a path or a key themselves: they pass the stored name (``Asset.file.name``,
``Output.file.name``) to these functions. Only this module turns a name into a path or a key,
and it refuses names that would escape the media folder or prefix.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _

from core.http import content_disposition, ranged_file_response
from core.storage import backend_for
from core.storage.s3 import client_for, content_type, is_missing

CHUNK = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class Saved:
    bytes: int
    sha256: str


def check_name(name: str) -> str:
    """A stored name is a relative POSIX path of plain segments: no '..', no absolute path."""
    if not name or not _NAME.match(name) or any(p in {".", ".."} for p in name.split("/")):
        raise ValueError(f"{name!r} is not a media name")
    return name


# --- local folder -----------------------------------------------------------------------


def media_path(name: str) -> Path:
    """The absolute path of a stored name (local backend); refuses names outside MEDIA_ROOT."""
    check_name(name)
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError(f"{name!r} is outside the media folder")
    return path


def _sha256_of(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class LocalMedia:
    name = "local"

    def save(self, src: Path, name: str, *, sha256: str = "", move: bool = False) -> Saved:
        final = media_path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        if move and sha256:
            # The renderer's file is already complete and fsynced: a rename is enough when the
            # scratch folder is on the same file system.
            size = src.stat().st_size
            try:
                os.replace(src, final)
                return Saved(size, sha256)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
        # A SHA-256 the caller already took (an upload hashed to find its duplicate) is not
        # taken again while copying, as S3Media.save does not either.
        digest, size = (None if sha256 else hashlib.sha256()), 0
        try:
            with open(src, "rb") as reader, open(temp, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    if digest is not None:
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
        return Saved(size, sha256 or digest.hexdigest())

    def open(self, name: str) -> BinaryIO:
        return open(media_path(name), "rb")

    def fetch(self, name: str, scratch: Path) -> Path:
        """Local files are read where they are: nothing to copy."""
        path = media_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{name} is missing from the media folder")
        return path

    def size(self, name: str) -> int | None:
        try:
            return media_path(name).stat().st_size
        except FileNotFoundError:
            return None

    def list_names(self, prefix: str = "") -> list[str]:
        root = Path(settings.MEDIA_ROOT).resolve()
        base = root / prefix if prefix else root
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            media_path(name).unlink()

    def delete_matching(self, folder: str, pattern: str) -> int:
        path = media_path(folder)
        if not path.is_dir():
            return 0
        removed = 0
        for item in path.glob(pattern):
            item.unlink(missing_ok=True)
            removed += 1
        return removed

    def serve(
        self, request: HttpRequest, name: str, *, content_type: str, filename: str, attachment: bool
    ) -> HttpResponse:
        path = media_path(name)
        if not path.is_file():
            raise Http404(_("The file is missing from storage."))
        return ranged_file_response(
            request, path, content_type=content_type, filename=filename, attachment=attachment
        )


# --- S3-compatible bucket -----------------------------------------------------------------


def s3_client():
    return client_for(settings.MEDIA_S3_ENDPOINT_URL, settings.MEDIA_S3_REGION)


class S3Media:
    name = "s3"

    @property
    def bucket(self) -> str:
        return settings.MEDIA_S3_BUCKET

    def key(self, name: str) -> str:
        return settings.MEDIA_S3_PREFIX + check_name(name)

    def save(self, src: Path, name: str, *, sha256: str = "", move: bool = False) -> Saved:
        size, digest = (src.stat().st_size, sha256) if sha256 else _sha256_of(src)
        # One PUT (or a multipart upload for big files) makes the object appear whole or not at
        # all; an interrupted multipart upload is aborted by boto3, or later by delete_matching.
        s3_client().upload_file(
            str(src),
            self.bucket,
            self.key(name),
            ExtraArgs={"Metadata": {"sha256": digest}, "ContentType": content_type(name)},
        )
        if move:
            src.unlink(missing_ok=True)
        return Saved(size, digest)

    def open(self, name: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return s3_client().get_object(Bucket=self.bucket, Key=self.key(name))["Body"]
        except ClientError as exc:
            if is_missing(exc):
                raise FileNotFoundError(f"{name} is missing from the media bucket") from exc
            raise

    def fetch(self, name: str, scratch: Path) -> Path:
        from botocore.exceptions import ClientError

        target = scratch / PurePosixPath(name).name
        temp = target.with_name(f".{target.name}.part")
        try:
            s3_client().download_file(self.bucket, self.key(name), str(temp))
        except ClientError as exc:
            temp.unlink(missing_ok=True)
            if is_missing(exc):
                raise FileNotFoundError(f"{name} is missing from the media bucket") from exc
            raise
        os.replace(temp, target)
        return target

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return s3_client().head_object(Bucket=self.bucket, Key=self.key(name))["ContentLength"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def list_names(self, prefix: str = "") -> list[str]:
        base = settings.MEDIA_S3_PREFIX
        pages = (
            s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=base + prefix)
        )
        return sorted(
            item["Key"][len(base) :] for page in pages for item in page.get("Contents", [])
        )

    def delete(self, name: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=self.key(name))

    def delete_matching(self, folder: str, pattern: str) -> int:
        """Delete the objects of ``folder`` matching ``pattern`` and abort the unfinished
        multipart uploads there (a worker killed while uploading leaves one)."""
        client, prefix = s3_client(), self.key(folder) + "/"
        removed = 0
        for name in self.list_names(folder + "/"):
            if fnmatch.fnmatchcase(PurePosixPath(name).name, pattern):
                self.delete(name)
                removed += 1
        uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        for upload in uploads.get("Uploads", []):
            if fnmatch.fnmatchcase(PurePosixPath(upload["Key"]).name, pattern):
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        return removed

    def serve(
        self, request: HttpRequest, name: str, *, content_type: str, filename: str, attachment: bool
    ) -> HttpResponse:
        if self.size(name) is None:
            raise Http404(_("The file is missing from storage."))
        url = s3_client().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(name),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition(filename, attachment=attachment),
            },
            ExpiresIn=settings.MEDIA_PRESIGN_SECONDS,
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        return response


# --- the functions callers use ----------------------------------------------------------------


def backend() -> LocalMedia | S3Media:
    return S3Media() if backend_for("media") == "s3" else LocalMedia()


def save_file(src: Path, name: str, *, sha256: str = "", move: bool = False) -> Saved:
    """Store ``src`` under ``name``; returns its size and SHA-256 (computed unless given).

    With ``move`` the source may be consumed (renamed into place, or removed once uploaded).
    """
    return backend().save(Path(src), name, sha256=sha256, move=move)


def save_bytes(name: str, data: bytes) -> Saved:
    """Store small in-memory content (tests, fixtures, seeds) through the same path."""
    scratch = Path(settings.RENDER_SCRATCH_DIR)
    scratch.mkdir(parents=True, exist_ok=True)
    temp = scratch / f".bytes-{secrets.token_hex(8)}"
    temp.write_bytes(data)
    try:
        return save_file(temp, name)
    finally:
        temp.unlink(missing_ok=True)


def open_stream(name: str) -> BinaryIO:
    """A binary stream of the stored file; FileNotFoundError when it is gone."""
    return backend().open(name)


def read_bytes(name: str) -> bytes:
    with contextlib.closing(open_stream(name)) as stream:
        return stream.read()


def local_path(name: str) -> Path | None:
    """The file's path when media are in a local folder (readers can then use kernel copies),
    or None when they are in a bucket (read them with :func:`open_stream`)."""
    return media_path(name) if backend_for("media") == "local" else None


def fetch(name: str, scratch: Path) -> Path:
    """A local path to read the stored file from: the file itself (local) or a copy in
    ``scratch`` (S3)."""
    return backend().fetch(name, Path(scratch))


def size(name: str) -> int | None:
    return backend().size(name)


def exists(name: str) -> bool:
    return size(name) is not None


def list_names(prefix: str = "") -> list[str]:
    return backend().list_names(prefix)


def delete(name: str) -> None:
    if name:
        backend().delete(name)


def delete_matching(folder: str, pattern: str) -> int:
    return backend().delete_matching(folder, pattern)


def serve(
    request: HttpRequest,
    name: str,
    *,
    content_type: str,
    filename: str,
    attachment: bool = True,
) -> HttpResponse:
    """A response handing the file to the client: ranged local file or presigned redirect."""
    return backend().serve(
        request, name, content_type=content_type, filename=filename, attachment=attachment
    )
