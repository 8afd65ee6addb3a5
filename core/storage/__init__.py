"""Where files live: media (uploads, renders, thumbnails) and bundles (ZIPs), each in a local
folder or an S3-compatible bucket.

- ``core.storage.media``: the media functions every caller uses (save, open, fetch, serve…);
- ``core.storage.bundles``: bundle stores (a local folder written through a temp name, or a
  multipart upload streamed while the bundle is built);
- ``core.storage.s3``: the one cached S3 client per endpoint, shared by both;
- ``core.storage.scratch``: per-attempt scratch folders of render workers;
- ``core.storage.disk``: recognising a full disk.

:func:`backend_for` is the one place that reads which backend an area uses: the storage
modules, the health probe, the start-up checks and the security headers all ask it.
"""

from __future__ import annotations

from typing import Literal

from django.conf import settings

Area = Literal["media", "bundles"]


def backend_for(area: Area) -> Literal["local", "s3"]:
    """``"s3"`` or ``"local"``: where ``area`` is kept (MEDIA_STORAGE, EXPORT_STORAGE)."""
    configured = settings.MEDIA_STORAGE if area == "media" else settings.EXPORT_STORAGE
    return "s3" if configured == "s3" else "local"
