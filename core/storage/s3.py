"""The S3 client, shared by media and bundles: one per process and endpoint."""

from __future__ import annotations

import functools
from pathlib import PurePosixPath


@functools.cache
def client_for(endpoint: str, region: str):
    """The S3 client of an endpoint and region, for media and bundles alike."""
    import boto3
    from botocore.config import Config

    # Clients are thread-safe and costly to build (tens of ms): one per process and endpoint.
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
        ),
    )


def is_missing(exc: Exception) -> bool:
    """Whether a botocore ClientError says the object (or bucket) is not there."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in {"404", "NoSuchKey", "NotFound"}


def content_type(name: str) -> str:
    """The Content-Type stored with an object, from its name's suffix."""
    return {
        ".mp4": "video/mp4",
        ".jpg": "image/jpeg",
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".m4a": "audio/mp4",
        ".mov": "video/quicktime",
        ".webm": "video/webm",
    }.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")
