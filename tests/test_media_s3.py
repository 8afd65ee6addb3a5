"""Media in an S3 bucket (MEDIA_STORAGE=s3) against a moto_server on loopback.

These run on both passes: the render worker fetches its inputs to its scratch folder, uploads
its output with its SHA-256, cleans the scratch folder; clients get presigned URLs; bundles
read the videos out of the bucket.
"""

from __future__ import annotations

import hashlib
import io
import urllib.parse
import urllib.request
import zipfile
import zlib
from email.message import Message
from pathlib import Path

import pytest
from django.http import QueryDict

from core.storage import media as storage
from exports import services as export_services
from exports.models import Export
from exports.scope import scope_from_params
from jobs import services
from jobs.models import Output, RenderJob
from jobs.services import rendering
from tests.stack import files_under

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket(s3_media, settings):
    """Media in the bucket; bundles written locally unless a test says otherwise."""
    client, name = s3_media
    settings.EXPORT_STORAGE = "local"
    return client, name


def _objects(client, bucket: str, prefix: str = "") -> dict[str, dict]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item for item in listed.get("Contents", [])}


def _get(url: str, **headers) -> tuple[int, bytes, Message]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback moto
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, response.read(), response.headers


@pytest.fixture
def rendered(bucket, member, upload, django_capture_on_commit_callbacks):
    project = services.project_create(membership=member, name="Bucket")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
    return batch, avatar, audio


def test_uploads_go_to_the_bucket_with_their_checksum(bucket, member, upload, settings):
    client, name = bucket
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    key = settings.MEDIA_S3_PREFIX + avatar.file.name
    head = client.head_object(Bucket=name, Key=key)
    assert head["ContentLength"] == avatar.bytes
    assert head["Metadata"]["sha256"] == avatar.sha256
    assert head["ContentType"] == "video/mp4"
    data = client.get_object(Bucket=name, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == avatar.sha256
    assert files_under(settings.MEDIA_ROOT) == []  # nothing kept on this host


def test_render_fetches_to_scratch_uploads_the_output_and_cleans_up(rendered, bucket, settings):
    client, name = bucket
    batch, _avatar, _audio = rendered
    job = batch.jobs.get()
    assert job.status == RenderJob.Status.SUCCEEDED, job.error
    output = job.output
    key = settings.MEDIA_S3_PREFIX + output.file.name
    head = client.head_object(Bucket=name, Key=key)
    assert head["ContentLength"] == output.bytes and head["Metadata"]["sha256"] == output.sha256
    data = client.get_object(Bucket=name, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == output.sha256
    assert zlib.crc32(data) == output.crc32
    assert storage.size(output.thumbnail.name) > 0
    # Inputs were fetched to the scratch folder, the video written there: all of it is gone.
    assert files_under(settings.RENDER_SCRATCH_DIR) == []
    assert files_under(settings.MEDIA_ROOT) == []
    outputs = sorted(k for k in _objects(client, name, settings.MEDIA_S3_PREFIX + "outputs/"))
    prefix = settings.MEDIA_S3_PREFIX
    assert outputs == sorted([prefix + output.file.name, prefix + output.thumbnail.name])


def test_downloads_are_presigned_and_the_bucket_serves_ranges(rendered, login, member, settings):
    batch, *_ = rendered
    output = batch.jobs.get().output
    client = login(member)
    slug = member.organization.slug
    response = client.get(f"/o/{slug}/outputs/{output.pk}/download/")
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(settings.MEDIA_S3_ENDPOINT_URL)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(settings.MEDIA_PRESIGN_SECONDS)]  # links expire
    assert response["Cache-Control"] == "private, no-store"
    status, body, headers = _get(url)
    assert status == 200 and hashlib.sha256(body).hexdigest() == output.sha256
    assert "face__speech.mp4" in headers.get("Content-Disposition", "")
    assert headers.get("Content-Type") == "video/mp4"
    status, part, _ = _get(url, Range="bytes=10-19")
    assert status == 206 and part == body[10:20]
    # The same through the API, and the thumbnail and the in-page player.
    api = client.get(f"/api/v1/orgs/{slug}/outputs/{output.pk}/download/")
    assert api.status_code == 302 and api["Location"].startswith(settings.MEDIA_S3_ENDPOINT_URL)
    thumb = client.get(f"/o/{slug}/outputs/{output.pk}/thumbnail/")
    assert thumb.status_code == 302
    assert _get(thumb["Location"])[1][:2] == b"\xff\xd8"
    play = client.get(f"/o/{slug}/outputs/{output.pk}/play/")
    assert play.status_code == 302 and "inline" in urllib.parse.unquote(play["Location"])
    # The page allows the bucket's origin for images and videos, nothing else.
    csp = client.get(f"/o/{slug}/batches/{batch.pk}/")["Content-Security-Policy"]
    assert f"media-src 'self' {settings.MEDIA_S3_ENDPOINT_URL}" in csp
    assert f"img-src 'self' data: {settings.MEDIA_S3_ENDPOINT_URL}" in csp
    assert "script-src 'self';" in csp


def test_a_missing_object_is_a_404_not_a_broken_link(rendered, login, member):
    batch, *_ = rendered
    output = batch.jobs.get().output
    storage.delete(output.file.name)
    response = login(member).get(f"/o/{member.organization.slug}/outputs/{output.pk}/download/")
    assert response.status_code == 404


def test_bundles_read_the_videos_out_of_the_bucket(rendered, bucket, member, settings):
    batch, *_ = rendered
    output = batch.jobs.get().output
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    export, _ = export_services.export_request(
        membership=member, scope=scope_from_params(member, q)
    )
    assert export_services.build_export(export_id=export.pk) == "ready"
    export.refresh_from_db()
    path = Path(settings.EXPORT_ROOT) / export.storage_key
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert z.namelist() == ["manifest.csv", "face__speech.mp4"]
        assert hashlib.sha256(z.read("face__speech.mp4")).hexdigest() == output.sha256


def test_bucket_to_bucket_bundle_and_a_changed_object_fails_cleanly(
    rendered, bucket, member, settings
):
    client, name = bucket
    settings.EXPORT_STORAGE = "s3"  # same bucket: s3_media set EXPORT_S3_* to it
    batch, *_ = rendered
    output = batch.jobs.get().output
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    scope = scope_from_params(member, q)
    export, _ = export_services.export_request(membership=member, scope=scope)
    assert export_services.build_export(export_id=export.pk) == "ready"
    export.refresh_from_db()
    body = client.get_object(Bucket=name, Key=export.storage_key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert hashlib.sha256(z.read("face__speech.mp4")).hexdigest() == output.sha256

    # The object in the bucket no longer matches its row: the bundle fails, nothing is left.
    storage.save_bytes(output.file.name, b"not the rendered video")
    Export.objects.filter(pk=export.pk).update(status="expired")
    again, _ = export_services.export_request(membership=member, scope=scope)
    assert export_services.build_export(export_id=again.pk) == "failed"
    again.refresh_from_db()
    assert "file changed since it was rendered" in again.error
    assert list(_objects(client, name, settings.EXPORT_S3_PREFIX)) == [export.storage_key]
    assert not client.list_multipart_uploads(Bucket=name).get("Uploads")


def test_missing_input_fails_the_job_with_a_reason(
    bucket, member, upload, settings, django_capture_on_commit_callbacks
):
    project = services.project_create(membership=member, name="Gone")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    storage.delete(audio.file.name)
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
    job = batch.jobs.get()
    assert job.status == RenderJob.Status.FAILED
    assert "missing from storage" in job.error
    assert not Output.objects.exists()
    assert files_under(settings.RENDER_SCRATCH_DIR) == []


def test_reaper_removes_what_a_dead_uploader_left_in_the_bucket(bucket, member, upload, settings):
    from datetime import timedelta

    from django.utils import timezone

    client, name = bucket
    project = services.project_create(membership=member, name="Dead")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    batch = services.batch_submit(
        membership=member, project=project, avatars=[avatar], audios=[audio]
    )
    job = batch.jobs.get()
    folder = f"outputs/{member.organization_id}/{batch.pk}"
    # Killed after storing its thumbnail, while its video's multipart upload was open.
    storage.save_bytes(f"{folder}/job{job.pk}-a1.jpg", b"thumbnail")
    key = settings.MEDIA_S3_PREFIX + f"{folder}/job{job.pk}-a1.mp4"
    client.create_multipart_upload(Bucket=name, Key=key)
    RenderJob.objects.filter(pk=job.pk).update(
        status="running", attempts=1, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert services.reap_stale_jobs() == 1
    assert storage.list_names(folder + "/") == []
    assert not client.list_multipart_uploads(Bucket=name).get("Uploads")


def test_scratch_of_a_killed_attempt_is_swept_by_the_next_job(rendered, bucket, settings):
    batch, *_ = rendered
    job = batch.jobs.get()
    dead = Path(settings.RENDER_SCRATCH_DIR) / f"job{job.pk + 1000}-a1-deadbeef"
    dead.mkdir(parents=True)
    (dead / "output.mp4").write_bytes(b"half")
    rendering._sweep_dead_scratch()
    assert not dead.exists()


def test_names_that_escape_are_refused(bucket):
    for bad in ["../etc/passwd", "/abs/path", "a/../b", "a//b", "a b/c", "", "a/./b"]:
        with pytest.raises(ValueError, match="not a media name"):
            storage.save_bytes(bad, b"x")
