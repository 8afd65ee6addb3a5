"""What the endpoints do: uploads validated like the pages, N x M batches, progress, jobs,
outputs with Range, de-duplicated exports and their downloads, members, the audit log."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import AuditEvent, Membership
from exports.models import Export
from jobs.models import Asset, Batch, Project, RenderJob
from tests.api.helpers import assert_error, wav_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_as, member):
    return api_as(member)


def _upload(api, kind: str, path: Path, name: str | None = None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name or path.name, path.read_bytes())
    return api.post("asset-list", data={"kind": kind, "file": upload}, multipart=True)


def _nothing_stored(settings, org) -> bool:
    folder = Path(settings.MEDIA_ROOT) / "assets" / str(org.pk)
    return not Asset.objects.exists() and not (folder.exists() and any(folder.iterdir()))


# --- uploads ---------------------------------------------------------------------------------


def test_upload_audio_and_avatar(api, media_dir, org):
    audio = api.post("asset-list", data={"kind": "audio", "file": wav_upload()}, multipart=True)
    assert audio.status_code == 201, audio.content
    assert audio.json()["kind"] == "audio" and audio.json()["name"] == "tone.wav"
    avatar = _upload(api, "avatar", media_dir / "face.mp4", "主播 1.mp4")
    assert avatar.status_code == 201, avatar.content
    body = avatar.json()
    assert (body["width"], body["height"], body["name"]) == (256, 256, "主播 1.mp4")
    listed = api.get("asset-list", params={"kind": "avatar"}).json()
    assert [a["id"] for a in listed["results"]] == [body["id"]]


def test_corrupt_upload_is_400_and_leaves_nothing(api, tmp_path, settings, org):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 this is not a video" * 200)
    error = assert_error(_upload(api, "avatar", junk), 400, "invalid")
    assert "junk.mp4" in error["message"]
    assert _nothing_stored(settings, org)
    assert not AuditEvent.objects.filter(action__startswith="asset.").exists()


@pytest.mark.parametrize(
    ("kind", "sample", "words"),
    [
        ("avatar", "noface.mp4", "No face"),
        ("avatar", "speech.wav", "no video stream"),
        ("audio", "noface.mp4", "no audio stream"),
    ],
)
def test_wrong_media_is_400_with_a_reason(api, media_dir, settings, org, kind, sample, words):
    error = assert_error(_upload(api, kind, media_dir / sample), 400, "invalid")
    assert words in error["message"]
    assert _nothing_stored(settings, org)


def test_upload_size_limit_is_413(api, settings, org):
    settings.ASSET_MAX_BYTES = 2000
    response = api.post("asset-list", data={"kind": "audio", "file": wav_upload()}, multipart=True)
    error = assert_error(response, 413, "too_large")
    assert "limit" in error["message"]
    assert _nothing_stored(settings, org)


def test_upload_fields_are_checked(api, settings, org):
    error = assert_error(api.post("asset-list", data={"kind": "audio"}, multipart=True), 400)
    assert "file" in error["fields"]
    error = assert_error(
        api.post("asset-list", data={"kind": "poster", "file": wav_upload()}, multipart=True), 400
    )
    assert "kind" in error["fields"]
    json_upload = api.post("asset-list", data={"kind": "audio"})
    assert_error(json_upload, 415, "unsupported_media_type")
    assert _nothing_stored(settings, org)


# --- batches and jobs ------------------------------------------------------------------------


def _assets(org, kind: str, n: int) -> list[Asset]:
    common = {"organization": org, "duration": 1.0, "bytes": 10}
    ext = "mp4" if kind == "avatar" else "wav"
    return [
        Asset.objects.create(kind=kind, file=f"assets/{kind}{i}.{ext}", original_name=f"{i}.{ext}",
                             sha256=f"{i:064x}", **common)
        for i in range(n)
    ]  # fmt: skip


def test_batch_n_by_m_from_asset_ids(api, org):
    project = Project.objects.create(organization=org, name="Launch")
    avatars, audios = _assets(org, "avatar", 2), _assets(org, "audio", 3)
    response = api.post(
        "batch-list",
        data={
            "project": project.pk,
            "avatars": [a.pk for a in avatars],
            "audios": [a.pk for a in audios],
            "tags": ["North", "promo"],
            "name": "Wave 1",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["counts"]["total"] == 6 and body["counts"]["queued"] == 6
    assert len(body["jobs"]) == 6 and body["status"] == "queued" and body["percent"] == 0
    assert sorted(body["tags"]) == ["north", "promo"]
    assert {(j["avatar"], j["audio"]) for j in body["jobs"]} == {
        (a.pk, b.pk) for a in avatars for b in audios
    }
    listed = api.get("batch-list", params={"project": project.pk}).json()
    assert listed["count"] == 1 and listed["results"][0]["counts"]["total"] == 6


def test_batch_refuses_foreign_and_missing_ids(api, org, outsider):
    project = Project.objects.create(organization=org, name="Mine")
    foreign_project = Project.objects.create(organization=outsider.organization, name="Theirs")
    (mine,) = _assets(org, "audio", 1)
    (avatar,) = _assets(org, "avatar", 1)
    (theirs,) = _assets(outsider.organization, "audio", 1)
    base = {"project": project.pk, "avatars": [avatar.pk], "audios": [mine.pk]}
    assert_error(api.post("batch-list", data={**base, "project": foreign_project.pk}), 404)
    assert_error(api.post("batch-list", data={**base, "audios": [mine.pk, theirs.pk]}), 404)
    assert_error(api.post("batch-list", data={**base, "audios": [avatar.pk]}), 404)
    error = assert_error(api.post("batch-list", data={**base, "avatars": []}), 400, "invalid")
    assert "avatars" in error["fields"]
    error = assert_error(api.post("batch-list", data={**base, "engine": "nope"}), 400)
    assert "engine" in error["fields"]
    error = assert_error(api.post("batch-list", data={**base, "tags": ["bad/tag"]}), 400)
    assert "tags" in error["fields"]
    assert not Batch.objects.exists()


def test_batch_with_uploaded_files(api, org, media_dir, tmp_path):
    project = Project.objects.create(organization=org, name="Upload")
    with (
        open(media_dir / "face.mp4", "rb") as avatar,
        open(media_dir / "speech.wav", "rb") as one,
        open(media_dir / "long.wav", "rb") as two,
    ):
        response = api.post(
            "batch-list",
            data={"project": project.pk, "avatar_files": [avatar], "audio_files": [one, two],
                  "tags": ["a"]},
            multipart=True,
        )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["counts"]["total"] == 2
    assert Asset.objects.filter(organization=org).count() == 3


def test_batch_with_a_refused_file_makes_no_batch(api, org, media_dir, tmp_path):
    project = Project.objects.create(organization=org, name="Upload")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nonsense" * 100)
    with open(media_dir / "face.mp4", "rb") as avatar, open(junk, "rb") as bad:
        response = api.post(
            "batch-list",
            data={"project": project.pk, "avatar_files": [avatar], "audio_files": [bad]},
            multipart=True,
        )
    error = assert_error(response, 400, "invalid")
    assert "audio_files" in error["fields"] and "junk.wav" in error["fields"]["audio_files"][0]
    assert not Batch.objects.exists()


def test_batch_detail_progress_and_job_actions(api, org, make_outputs, member):
    batch, (output,) = make_outputs(member, ["done"])
    avatar, audio = output.job.avatar, output.job.audio
    running = RenderJob.objects.create(
        batch=batch, avatar=avatar, audio=audio, engine="warp", status="running",
        frames_done=5, frames_total=10,
    )  # fmt: skip
    failed = RenderJob.objects.create(
        batch=batch, avatar=avatar, audio=audio, engine="warp", status="failed", error="boom"
    )
    body = api.get("batch-detail", batch.pk).json()
    assert body["status"] == "running"
    assert body["percent"] == int(100 * 2.5 / 3)
    by_id = {j["id"]: j for j in body["jobs"]}
    assert by_id[running.pk]["percent"] == 50 and by_id[failed.pk]["error"] == "boom"
    assert by_id[output.job_id]["output"]["download"].endswith(f"/outputs/{output.pk}/download/")

    error = assert_error(api.post("job-cancel", output.job_id), 400, "invalid")
    assert "already" in error["message"]
    assert api.post("job-cancel", running.pk).json()["status"] == "running"  # stops soon
    assert RenderJob.objects.get(pk=running.pk).cancel_requested
    retried = api.post("job-retry", failed.pk)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert_error(api.post("job-retry", failed.pk), 400, "invalid")
    assert api.post("batch-cancel", batch.pk).json() == {"affected": 2}


@pytest.mark.local_storage  # ranges served by this app; S3: tests/test_media_s3.py
def test_output_metadata_and_ranged_download(api, make_outputs, member):
    batch, outputs = make_outputs(member, ["a", "b"], tags=["promo"])
    listed = api.get("output-list", params={"batch": batch.pk}).json()
    assert listed["count"] == 2
    assert api.get("output-list", params={"tag": "promo"}).json()["count"] == 2
    assert api.get("output-list", params={"tag": "other"}).json()["count"] == 0
    detail = api.get("output-detail", outputs[0].pk).json()
    assert detail["sha256"] == outputs[0].sha256 and detail["batch"] == batch.pk
    whole = api.get("output-download", outputs[0].pk)
    data = b"".join(whole.streaming_content)
    assert len(data) == outputs[0].bytes
    part = api.get("output-download", outputs[0].pk, headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == data[100:]
    same = api.get("output-download", outputs[0].pk, headers={"If-None-Match": whole["ETag"]})
    assert same.status_code == 304


# --- exports ---------------------------------------------------------------------------------


@pytest.mark.local_storage  # ranges served by this app; S3: tests/test_media_s3.py
def test_export_is_deduplicated_built_and_downloaded(
    api, make_outputs, member, django_capture_on_commit_callbacks
):
    batch, _ = make_outputs(member, ["one", "two"])
    first = api.post("export-list", data={"batch": batch.pk})
    assert first.status_code == 201, first.content
    again = api.post("export-list", data={"batch": batch.pk})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    export_id = first.json()["id"]
    assert_error(api.get("export-download", export_id), 409, "not_ready")

    from exports import services

    with django_capture_on_commit_callbacks(execute=True):
        services.build_export(export_id=export_id)
    status = api.get("export-detail", export_id).json()
    assert status["status"] == "ready" and status["file_count"] == 2
    assert status["download"].endswith(f"/exports/{export_id}/download/")
    response = api.get("export-download", export_id)
    bundle = b"".join(response.streaming_content)
    assert len(bundle) == status["zip_bytes"]
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert names[0] == "manifest.csv" and len(names) == 3
    resumed = api.get("export-download", export_id, headers={"Range": "bytes=10-"})
    assert resumed.status_code == 206 and b"".join(resumed.streaming_content) == bundle[10:]
    downloads = AuditEvent.objects.filter(action="export.downloaded")
    assert downloads.count() == 1  # a resumed transfer is the same download


def test_export_scopes_and_refusals(api, make_outputs, member, outsider):
    batch, outputs = make_outputs(member, ["x"], tags=["north"])
    _, foreign = make_outputs(outsider, ["y"])
    tagged = api.post("export-list", data={"project": batch.project_id, "tags": ["North"]})
    assert tagged.status_code == 201 and tagged.json()["tags"] == ["north"]
    chosen = api.post("export-list", data={"outputs": [outputs[0].pk]})
    assert chosen.status_code == 201 and chosen.json()["scope"] == "outputs"
    assert_error(api.post("export-list", data={"outputs": [foreign[0].pk]}), 404)
    assert_error(api.post("export-list", data={"batch": foreign[0].job.batch_id}), 404)
    assert_error(api.post("export-list", data={}), 400, "invalid")
    empty = Batch.objects.create(project=batch.project, engine="warp")
    error = assert_error(api.post("export-list", data={"batch": empty.pk}), 400)
    assert "Nothing to pack" in error["message"]


def test_export_on_s3_redirects_to_a_presigned_url(api, org, member, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.EXPORT_S3_BUCKET = "bundles"
    settings.EXPORT_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    export = Export.objects.create(
        organization=org, scope="project", scope_key="project:1", label="x", status="ready",
        storage="s3", storage_key="exports/b.zip", filename="b.zip", file_count=1,
        total_bytes=1, zip_bytes=1, expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    response = api.get("export-download", export.pk)
    assert response.status_code == 302
    assert "/bundles/exports/b.zip?" in response["Location"]
    assert "Signature=" in response["Location"]


# --- members and the audit log ---------------------------------------------------------------


def test_members_change_role_and_refusals(api_as, owner, admin, member, viewer):
    api = api_as(admin)
    listed = api.get("member-list").json()["results"]
    assert {m["email"] for m in listed} == {
        "owner@acme.test", "admin@acme.test", "member@acme.test", "viewer@acme.test",
    }  # fmt: skip
    changed = api.patch("member-detail", viewer.pk, data={"role": "member"})
    assert changed.status_code == 200 and changed.json()["role"] == "member"
    assert_error(api.patch("member-detail", owner.pk, data={"role": "viewer"}), 403)
    assert_error(api.patch("member-detail", member.pk, data={"role": "owner"}), 403)
    error = assert_error(api.patch("member-detail", member.pk, data={"role": "boss"}), 400)
    assert "role" in error["fields"]
    last_owner = api_as(owner).patch("member-detail", owner.pk, data={"role": "admin"})
    assert "last owner" in assert_error(last_owner, 400)["message"]
    assert Membership.objects.get(pk=owner.pk).role == "owner"


def test_audit_cursor_pagination_filters_and_csv(api_as, admin, org):
    for i in range(120):
        record_event(organization=org, action="batch.submitted" if i % 2 else "project.created")
    api = api_as(admin)
    seen, page = [], api.get("audit-list", params={"limit": 50}).json()
    while True:
        seen += [e["seq"] for e in page["results"]]
        if not page["next"]:
            break
        page = api.call("GET", page["next"]).json()
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 120
    batches = api.get("audit-list", params={"action": "batch", "limit": 200}).json()
    assert {e["action"] for e in batches["results"]} == {"batch.submitted"}
    today = timezone.now().date().isoformat()
    assert api.get("audit-list", params={"since": today}).json()["results"]
    assert not api.get("audit-list", params={"until": "2000-01-01"}).json()["results"]
    error = assert_error(api.get("audit-list", params={"since": today, "until": "2000-01-01"}), 400)
    assert "until" in error["fields"]
    csv_one = b"".join(api.get("audit-list", params={"format": "csv"}).streaming_content)
    csv_two = b"".join(api.get("audit-csv").streaming_content)
    assert csv_one.startswith("\ufeffseq,created_at (UTC),actor,action".encode())
    assert csv_one.count(b"\n") == csv_two.count(b"\n") >= 121
