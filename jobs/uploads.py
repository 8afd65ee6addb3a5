"""Upload handling: every file is streamed to a temp file and cut off past the size limit.

The limit is enforced while the body arrives (never after reading it in full); the handler
records why it stopped so the view can answer with a message instead of a blank 400.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class UploadTooLarge(StopUpload):
    pass


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        limit = settings.UPLOAD_MAX_REQUEST_BYTES
        if content_length and content_length > limit:
            self.request.upload_error = (
                f"The upload is {content_length / 1e6:.0f} MB; the limit is "
                f"{limit / 1e6:.0f} MB per request."
            )
            raise UploadTooLarge(connection_reset=True)
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def new_file(self, *args, **kwargs):
        self._received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.ASSET_MAX_BYTES:
            self.file.close()
            self.request.upload_error = (
                f"“{self.file_name}” is larger than the {settings.ASSET_MAX_BYTES / 1e6:.0f} MB "
                "limit per file."
            )
            # Read (and drop) the rest of the body so the browser gets our answer.
            raise UploadTooLarge(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)
