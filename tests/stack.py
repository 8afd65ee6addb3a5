"""What a worker process started by a test must be told to see the test's storage."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

#: Credentials moto_server accepts; boto3 in this process and in worker children reads them.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def storage_env(*, scratch: str | None = None) -> dict[str, str]:
    """The media/bundle settings of the running test as environment variables."""
    env = {
        "MEDIA_STORAGE": settings.MEDIA_STORAGE,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "EXPORT_STORAGE": settings.EXPORT_STORAGE,
        "EXPORT_ROOT": str(settings.EXPORT_ROOT),
        "RENDER_SCRATCH_DIR": scratch or str(settings.RENDER_SCRATCH_DIR),
    }
    if settings.MEDIA_STORAGE == "s3":
        env |= {
            "MEDIA_S3_BUCKET": settings.MEDIA_S3_BUCKET,
            "MEDIA_S3_ENDPOINT_URL": settings.MEDIA_S3_ENDPOINT_URL,
            "MEDIA_S3_PREFIX": settings.MEDIA_S3_PREFIX,
        }
    if settings.EXPORT_STORAGE == "s3":
        env |= {
            "EXPORT_S3_BUCKET": settings.EXPORT_S3_BUCKET,
            "EXPORT_S3_ENDPOINT_URL": settings.EXPORT_S3_ENDPOINT_URL,
            "EXPORT_S3_PREFIX": settings.EXPORT_S3_PREFIX,
            "EXPORT_S3_PART_BYTES": str(settings.EXPORT_S3_PART_BYTES),
        }
    if "s3" in {settings.MEDIA_STORAGE, settings.EXPORT_STORAGE}:
        env |= S3_ENV
    return env


def files_under(folder) -> list[Path]:
    """Every file in a folder tree, hidden temp files included; none if it does not exist."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())
