"""The S3 path of exports against a real S3-protocol server (moto_server) on loopback."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.http import QueryDict
from django.utils import timezone

from core.storage import media as media_storage
from exports import services
from exports.models import Export
from exports.scope import scope_from_params


@pytest.fixture
def s3(s3_bundles):
    return s3_bundles


def _bundles(client, settings) -> list[str]:
    listed = client.list_objects_v2(Bucket=settings.EXPORT_S3_BUCKET, Prefix="exports/")
    return [item["Key"] for item in listed.get("Contents", [])]


def _batch_scope(member, batch):
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    return scope_from_params(member, q)


@pytest.mark.django_db
def test_bundle_is_streamed_to_s3_and_handed_out_presigned(
    s3, member, make_outputs, login, settings, django_capture_on_commit_callbacks
):
    batch, outputs = make_outputs(member, ["第1条.mp4", "b.mp4", "c.mp4"], size=3 * 1024 * 1024)
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = services.export_request(membership=member, scope=_batch_scope(member, batch))
    export.refresh_from_db()
    assert export.status == "ready", export.error
    assert export.storage == "s3" and export.storage_key.startswith("exports/")
    assert not Path(settings.EXPORT_ROOT).exists() or not any(Path(settings.EXPORT_ROOT).iterdir())
    head = s3.head_object(Bucket=settings.EXPORT_S3_BUCKET, Key=export.storage_key)
    assert head["ContentLength"] == export.zip_bytes
    assert int(head.get("PartsCount", 2)) >= 2  # 9 MiB in 5 MiB parts
    body = s3.get_object(Bucket=settings.EXPORT_S3_BUCKET, Key=export.storage_key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.testzip() is None
        assert z.namelist() == ["manifest.csv", "第1条.mp4", "b.mp4", "c.mp4"]
        assert z.read("b.mp4") == media_storage.read_bytes(outputs[1].file.name)

    response = login(member).get(f"/o/{member.organization.slug}/exports/{export.pk}/download/")
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(settings.EXPORT_S3_ENDPOINT_URL) and "Expires=" in url
    with urllib.request.urlopen(url, timeout=30) as fetched:  # noqa: S310 - loopback moto
        assert fetched.read() == body
        assert export.filename in (fetched.headers.get("Content-Disposition") or export.filename)

    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.expire_exports() == 1
    assert _bundles(s3, settings) == []


@pytest.mark.django_db
def test_failed_s3_build_leaves_no_object_and_no_open_upload(s3, member, make_outputs, settings):
    batch, outputs = make_outputs(member, ["a.mp4", "b.mp4"], size=3 * 1024 * 1024)
    media_storage.save_bytes(outputs[1].file.name, b"changed")
    export, _ = services.export_request(membership=member, scope=_batch_scope(member, batch))
    assert services.build_export(export_id=export.pk) == "failed"
    assert "file changed" in Export.objects.get(pk=export.pk).error
    assert _bundles(s3, settings) == []
    assert not s3.list_multipart_uploads(Bucket=settings.EXPORT_S3_BUCKET).get("Uploads")
