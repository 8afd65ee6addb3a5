"""Bundles as stored files: the ZIP a build hands to a bundle store (``core.storage.bundles``:
a local folder or a bucket), and the response that hands a ready bundle to the client."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _

from core.http import content_disposition, ranged_file_response
from core.storage.bundles import S3BundleStore, bundle_store
from exports.zipwriter import ZipEntry, iter_zip, write_zip, zip_size


@dataclass(frozen=True)
class ZipBody:
    """A STORED ZIP of ``entries`` as a bundle store writes it: kernel copies into a local
    file, or chunks for a multipart upload; ``progress`` and ``should_stop`` as in
    :func:`exports.zipwriter.write_zip`."""

    entries: Sequence[ZipEntry]
    progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def size(self) -> int:
        return zip_size(self.entries)

    def write_to(self, fd: int) -> int:
        result = write_zip(self.entries, fd, progress=self.progress, should_stop=self.should_stop)
        return result.bytes_written

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        return iter_zip(
            self.entries, chunk_size, progress=self.progress, should_stop=self.should_stop
        )


def partials_suffix(export_id: int) -> str:
    """How the names of one export's bundle (and its temp files) end: ``_<id>.zip``."""
    return f"_{int(export_id)}.zip"


def x_accel_path(key: str) -> str:
    return settings.EXPORT_X_ACCEL_PREFIX.rstrip("/") + "/" + quote(key)


def bundle_response(request: HttpRequest, export) -> HttpResponse:
    """Hand a ready bundle to the client: a presigned S3 URL, an nginx X-Accel-Redirect, or
    the file itself with Range support."""
    store = bundle_store(export.storage)
    if isinstance(store, S3BundleStore):
        return HttpResponseRedirect(store.presigned_url(export.storage_key, export.filename))
    if settings.EXPORT_X_ACCEL_PREFIX:
        response = HttpResponse(content_type="application/zip")
        response["X-Accel-Redirect"] = x_accel_path(export.storage_key)
        response["Content-Disposition"] = content_disposition(export.filename)
        return response
    path = store.path(export.storage_key)
    if not path.exists():
        raise Http404(_("The bundle file is missing; ask for a new bundle."))
    return ranged_file_response(
        request, path, content_type="application/zip", filename=export.filename
    )
