"""Upload handling: every file is streamed to a temp file and cut off past the size limit.

The limit is enforced while the body arrives (never after reading it in full); the handler
records why it stopped so the view can answer with a message instead of a blank 400.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.utils.translation import gettext as _


class UploadTooLarge(StopUpload):
    pass


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Cuts off each file past ASSET_MAX_BYTES. A request that declares a body above
    UPLOAD_MAX_REQUEST_BYTES never gets here: heygem_site.middleware.RequestTooLargeMiddleware
    answers it with 413 before anything reads the body."""

    def new_file(self, *args, **kwargs):
        self._received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.ASSET_MAX_BYTES:
            self.file.close()
            # Read during the request, so in its language.
            self.request.upload_error = _(
                "“%(name)s” is larger than the %(limit)s MB limit per file."
            ) % {"name": self.file_name, "limit": f"{settings.ASSET_MAX_BYTES / 1e6:.0f}"}
            # Read (and drop) the rest of the body so the browser gets our answer.
            raise UploadTooLarge(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)
