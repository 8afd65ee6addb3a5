"""What the jobs API views share: id bounds and uploads taken from a request (an upload cut
off at the size limit is a 413; each file is handed to the services as a temp file)."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.api import MAX_ID, PayloadTooLarge
from jobs import services
from jobs.uploads import UploadTooLarge

ID = {"min_value": 1, "max_value": MAX_ID}


def request_data(request):
    """``request.data``, turning an upload cut off at the size limit into a 413."""
    try:
        data = request.data
    except UploadTooLarge as exc:
        raise PayloadTooLarge(getattr(request._request, "upload_error", None)) from exc
    upload_error = getattr(request._request, "upload_error", None)
    if upload_error:
        raise PayloadTooLarge(upload_error)
    return data


@contextlib.contextmanager
def uploaded_media(upload) -> Iterator[services.UploadedMedia]:
    """The upload as a file on disk (it already is one: FILE_UPLOAD_MAX_MEMORY_SIZE=0)."""
    try:
        if hasattr(upload, "temporary_file_path"):
            yield services.UploadedMedia(Path(upload.temporary_file_path()), upload.name)
            return
        with tempfile.NamedTemporaryFile(suffix=".upload") as spool:
            shutil.copyfileobj(upload, spool, 1024 * 1024)
            spool.flush()
            yield services.UploadedMedia(Path(spool.name), upload.name)
    finally:
        upload.close()
