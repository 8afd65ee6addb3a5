"""Projects, uploads, batches and render jobs: services, worker side and pages."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import AuditEvent
from core.storage import media as storage
from inference.media import probe
from jobs import services
from jobs.models import Asset, Batch, Output, RenderJob
from jobs.services import rendering
from tests.stack import files_under

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(member):
    return services.project_create(membership=member, name="Dealers 2026")


@pytest.fixture
def avatar(member, upload):
    return services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))


@pytest.fixture
def audio(member, upload):
    return services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))


class TestUploads:
    def test_avatar_is_probed_hashed_and_stored_under_a_generated_name(self, avatar, settings):
        name = avatar.file.name
        data = storage.read_bytes(name)
        assert name.endswith(".mp4") and "face" not in name
        assert avatar.sha256 == hashlib.sha256(data).hexdigest()
        assert avatar.bytes == len(data) == storage.size(name)
        assert (avatar.width, avatar.height) == (256, 256)
        assert avatar.face_box and avatar.face_box["w"] > 40
        assert AuditEvent.objects.filter(action="asset.uploaded", total_bytes=avatar.bytes).exists()

    def test_video_sound_track_is_accepted_as_audio(self, member, upload):
        asset = services.asset_create(
            membership=member, kind="audio", upload=upload("clip_with_sound.mp4")
        )
        assert asset.file.name.endswith(".m4a") and asset.audio_codec

    def test_hostile_name_is_display_only(self, member, upload):
        asset = services.asset_create(
            membership=member,
            kind="audio",
            upload=upload("speech.wav", "../../etc/\x00pass\nwd<script>.wav"),
        )
        assert asset.original_name == "pass wd<script>.wav" or "/" not in asset.original_name
        assert "\n" not in asset.original_name and "\x00" not in asset.original_name
        assert ".." not in asset.file.name

    @pytest.mark.parametrize(
        ("kind", "sample", "reason"),
        [
            ("avatar", "noface.mp4", "No face was found"),
            ("avatar", "speech.wav", "no video stream"),
        ],
    )
    def test_content_decides(self, member, upload, settings, kind, sample, reason):
        with pytest.raises(ValidationError, match=reason):
            services.asset_create(membership=member, kind=kind, upload=upload(sample, "x.mp4"))
        assert not Asset.objects.exists()
        assert storage.list_names() == []

    @pytest.mark.parametrize(
        ("content", "name"),
        [
            (b"", "empty.mp4"),
            (b"hello, I am text\n" * 40, "notes.mp3"),
            (bytes(range(256)) * 64, "random.wav"),
            (b"PK\x03\x04" + b"\x00" * 500, "archive.mp4"),
        ],
    )
    def test_bad_files_are_refused_with_a_reason(self, member, tmp_path, settings, content, name):
        path = tmp_path / "raw"
        path.write_bytes(content)
        with pytest.raises(ValidationError) as info:
            services.asset_create(
                membership=member, kind="audio", upload=services.UploadedMedia(path, name)
            )
        assert name in " ".join(info.value.messages)
        assert not Asset.objects.exists() and storage.list_names() == []

    def test_truncated_video(self, member, media_dir, tmp_path, settings):
        data = (media_dir / "face.mp4").read_bytes()
        path = tmp_path / "cut"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValidationError):
            services.asset_create(
                membership=member, kind="avatar", upload=services.UploadedMedia(path, "cut.mp4")
            )
        assert not Asset.objects.exists() and storage.list_names() == []

    def test_limits_come_from_settings(self, member, upload, settings):
        settings.ASSET_MAX_AUDIO_SECONDS = 0.5
        with pytest.raises(ValidationError, match=r"at most [01] s"):
            services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
        settings.ASSET_MAX_BYTES = 100
        with pytest.raises(ValidationError, match="larger than"):
            services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
        assert not Asset.objects.exists()

    def test_viewer_cannot_upload(self, viewer, upload):
        with pytest.raises(PermissionDenied):
            services.asset_create(membership=viewer, kind="audio", upload=upload("speech.wav"))


class TestSubmit:
    def test_batch_has_one_job_per_pair_and_is_audited(
        self, member, project, avatar, audio, upload
    ):
        audio2 = services.asset_create(membership=member, kind="audio", upload=upload("long.wav"))
        batch = services.batch_submit(
            membership=member,
            project=project,
            avatars=[avatar],
            audios=[audio, audio2],
            tags="North, promo , north",
        )
        assert batch.jobs.count() == 2
        assert sorted(batch.tags.values_list("name", flat=True)) == ["north", "promo"]
        assert batch.status == "queued"
        event = AuditEvent.objects.get(action="batch.submitted")
        assert event.file_count == 2 and event.detail["tags"] == ["north", "promo"]

    def test_refusals_change_nothing(self, member, project, avatar, audio, outsider, upload):
        foreign_audio = services.asset_create(
            membership=outsider, kind="audio", upload=upload("speech.wav")
        )
        before = (Batch.objects.count(), RenderJob.objects.count())
        cases = [
            ({"avatars": [], "audios": [audio]}, "at least one avatar"),
            ({"avatars": [avatar], "audios": []}, "at least one audio"),
            ({"avatars": [avatar], "audios": [foreign_audio]}, "does not exist"),
            ({"avatars": [audio], "audios": [audio]}, "is not an avatar"),
            ({"avatars": [avatar], "audios": [audio], "engine": "nope"}, "Unknown engine"),
            ({"avatars": [avatar], "audios": [audio], "tags": "ok, bad/tag"}, "not a valid tag"),
        ]
        for kwargs, reason in cases:
            with pytest.raises(ValidationError, match=reason):
                services.batch_submit(membership=member, project=project, **kwargs)
        assert (Batch.objects.count(), RenderJob.objects.count()) == before

    def test_wav2lip_without_checkpoint_is_refused(self, member, project, avatar, audio, settings):
        settings.WAV2LIP_CHECKPOINT = ""
        with pytest.raises(ValidationError, match="not set up on this installation") as refused:
            services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                audios=[audio],
                engine="wav2lip",
            )
        # The member is told what to choose; the operator's detail stays out of it.
        assert "choose warp" in str(refused.value)
        assert "WAV2LIP_CHECKPOINT" not in str(refused.value)

    def test_members_see_only_engines_that_run_operators_see_why(
        self, login, member, project, settings, tmp_path
    ):
        from django.core.checks import run_checks

        settings.WAV2LIP_CHECKPOINT = ""
        settings.MUSETALK_DIR = ""
        page = login(member).get(
            f"/o/{member.organization.slug}/projects/{project.pk}/batches/new/"
        )
        html = page.content.decode()
        assert 'value="warp"' in html
        assert 'value="wav2lip"' not in html and 'value="musetalk"' not in html
        assert "WAV2LIP_CHECKPOINT" not in html and "not available" not in html
        notes = {m.msg for m in run_checks(tags=["heygem"]) if m.id == "heygem.I001"}
        assert any("Wav2Lip" in n and "WAV2LIP_CHECKPOINT" in n for n in notes)
        assert any("MuseTalk" in n and "MUSETALK_DIR" in n for n in notes)
        checkpoint = tmp_path / "wav2lip.pth"
        checkpoint.write_bytes(b"weights")
        settings.WAV2LIP_CHECKPOINT = str(checkpoint)
        html = (
            login(member)
            .get(f"/o/{member.organization.slug}/projects/{project.pk}/batches/new/")
            .content.decode()
        )
        assert 'value="wav2lip"' in html
        notes = {m.msg for m in run_checks(tags=["heygem"]) if m.id == "heygem.I001"}
        assert not any("Wav2Lip" in n for n in notes)

    def test_batch_size_limit(self, member, project, avatar, audio, settings):
        settings.BATCH_MAX_JOBS = 0
        with pytest.raises(ValidationError, match="at most 0"):
            services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio]
            )


@pytest.fixture
def rendered(member, project, avatar, audio, django_capture_on_commit_callbacks):
    """A batch rendered inline (django-q2 runs tasks synchronously in unit tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
    return batch


class TestRender:
    def test_output_is_recorded_with_checksums(self, rendered, audio, tmp_path):
        job = rendered.jobs.get()
        assert job.status == RenderJob.Status.SUCCEEDED, job.error
        assert job.attempts == 1 and job.worker_host and job.device == "cpu"
        assert job.frames_done == job.frames_total > 0
        output = job.output
        data = storage.read_bytes(output.file.name)
        assert output.bytes == len(data)
        assert output.sha256 == hashlib.sha256(data).hexdigest()
        assert output.crc32 == zlib.crc32(data)
        info = probe(storage.fetch(output.file.name, tmp_path))
        assert info.has_video and info.has_audio
        assert abs(info.duration - audio.duration) <= 1 / 25 + 0.03
        assert storage.size(output.thumbnail.name) > 0
        assert output.name == "face__speech.mp4"
        assert rendered.status == "succeeded"

    def test_batch_completes_once_and_its_submitter_is_told(self, rendered, member):
        rendered.refresh_from_db()
        assert rendered.completed_at is not None
        note = member.user.notifications.get()
        assert note.kind == "batch.completed" and "1 of 1 video rendered." in note.message
        assert not services.batch_check_completed(batch_id=rendered.pk)  # only once
        assert member.user.notifications.count() == 1

    def test_no_temp_files_left(self, rendered, settings):
        job = rendered.jobs.get()
        assert storage.list_names("outputs/") == sorted(
            [job.output.file.name, job.output.thumbnail.name]
        )
        assert files_under(settings.RENDER_SCRATCH_DIR) == []

    def test_an_avatar_is_prepared_once_and_reused_by_every_job(
        self,
        member,
        project,
        avatar,
        audio,
        upload,
        monkeypatch,
        django_capture_on_commit_callbacks,
    ):
        from inference.engines.base import Engine

        prepared: list[str] = []
        real_prepare = Engine.prepare_avatar

        def counting_prepare(self, avatar_path, **kwargs):
            prepared.append(self.name)
            return real_prepare(self, avatar_path, **kwargs)

        monkeypatch.setattr(Engine, "prepare_avatar", counting_prepare)
        second = services.asset_create(
            membership=member, kind="audio", upload=upload("long.wav", "second.wav")
        )
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio, second]
            )
        assert [j.status for j in batch.jobs.all()] == ["succeeded", "succeeded"]
        assert prepared == ["warp"]  # two jobs, one preparation
        name = f"prep/{member.organization_id}/{avatar.pk}/warp.npz"
        assert storage.exists(name)
        with django_capture_on_commit_callbacks(execute=True):
            later = services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[second]
            )
        assert later.jobs.get().status == "succeeded"
        assert prepared == ["warp"]  # a later batch reuses it too

    def test_a_stale_preparation_is_made_again(
        self, member, project, avatar, audio, tmp_path, django_capture_on_commit_callbacks
    ):
        name = f"prep/{member.organization_id}/{avatar.pk}/warp.npz"
        storage.save_bytes(name, b"not a prepared avatar")
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio]
            )
        assert batch.jobs.get().status == "succeeded"
        from inference.engines.prepare import AvatarPrep

        assert AvatarPrep.load(storage.fetch(name, tmp_path)).frame_count > 0

    def test_claim_is_idempotent(self, rendered):
        job = rendered.jobs.get()
        assert services.render_job_run(job_id=job.pk) == "skipped"
        assert Output.objects.count() == 1

    def test_engine_error_fails_with_reason(
        self, member, project, avatar, audio, settings, django_capture_on_commit_callbacks
    ):
        storage.save_bytes(audio.file.name, b"garbage")
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio]
            )
        job = batch.jobs.get()
        assert job.status == RenderJob.Status.FAILED and job.error
        assert not Output.objects.exists()
        assert storage.list_names("outputs/") == []
        assert files_under(settings.RENDER_SCRATCH_DIR) == []


class TestCancelRetry:
    def test_cancel_batch_then_retry_a_job(
        self, member, project, avatar, audio, django_capture_on_commit_callbacks
    ):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
        assert services.batch_cancel(membership=member, batch=batch) == 1
        job = batch.jobs.get()
        assert job.status == RenderJob.Status.CANCELED
        assert services.render_job_run(job_id=job.pk) == "skipped"
        with pytest.raises(ValidationError, match="Nothing to cancel"):
            services.batch_cancel(membership=member, batch=batch)
        with django_capture_on_commit_callbacks(execute=True):
            services.job_retry(membership=member, job=job)
        job.refresh_from_db()
        assert job.status == RenderJob.Status.SUCCEEDED
        with pytest.raises(ValidationError, match="Only failed or canceled"):
            services.job_retry(membership=member, job=job)
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {"batch.canceled", "job.retried"} <= actions

    def test_running_job_stops_between_frame_batches(self, member, project, avatar, audio):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
        job = batch.jobs.get()
        RenderJob.objects.filter(pk=job.pk).update(cancel_requested=False)
        # Ask for the cancel as soon as the first progress is written.
        original = rendering._JobTracker.progress

        def progress_then_cancel(tracker, done, total):
            original(tracker, done, total)
            RenderJob.objects.filter(pk=tracker.job_id).update(cancel_requested=True)
            tracker._last_cancel_check = 0

        rendering._JobTracker.progress = progress_then_cancel
        try:
            assert services.render_job_run(job_id=job.pk) == RenderJob.Status.CANCELED
        finally:
            rendering._JobTracker.progress = original
        assert not Output.objects.exists()

    def test_cannot_touch_another_organizations_jobs(
        self, member, outsider, project, avatar, audio
    ):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
        with pytest.raises(Batch.DoesNotExist):
            services.batch_cancel(membership=outsider, batch=batch)
        with pytest.raises(RenderJob.DoesNotExist):
            services.job_cancel(membership=outsider, job=batch.jobs.get())
        assert batch.jobs.get().status == RenderJob.Status.QUEUED


class TestReaper:
    def _running(self, member, project, avatar, audio, attempts):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
        job = batch.jobs.get()
        partial = f"outputs/{project.organization_id}/{batch.pk}/.job{job.pk}-a{attempts}.part"
        storage.save_bytes(partial, b"half a video")
        RenderJob.objects.filter(pk=job.pk).update(
            status="running",
            attempts=attempts,
            worker_host="gpu-7",
            worker_pid=4242,
            heartbeat_at=timezone.now() - timedelta(hours=1),
        )
        return job, partial

    def test_dead_worker_job_is_retried_and_partials_removed(self, member, project, avatar, audio):
        job, partial = self._running(member, project, avatar, audio, attempts=1)
        unrecorded = partial.rsplit("/", 1)[0] + f"/job{job.pk}-a1.mp4"  # stored, row never written
        storage.save_bytes(unrecorded, b"a whole video nobody recorded")
        assert services.reap_stale_jobs() == 1
        assert not storage.exists(unrecorded)
        job.refresh_from_db()
        assert job.status == RenderJob.Status.QUEUED
        assert "gpu-7" in job.error and "retrying" in job.error
        assert not storage.exists(partial)

    def test_dead_worker_job_fails_after_the_last_attempt(
        self, member, project, avatar, audio, settings
    ):
        job, _ = self._running(
            member, project, avatar, audio, attempts=settings.RENDER_MAX_ATTEMPTS
        )
        services.reap_stale_jobs()
        job.refresh_from_db()
        assert job.status == RenderJob.Status.FAILED
        assert "stopped responding" in job.error and "gave up" in job.error

    def test_fresh_heartbeats_are_left_alone(self, member, project, avatar, audio):
        job, partial = self._running(member, project, avatar, audio, attempts=1)
        RenderJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        assert services.reap_stale_jobs() == 0
        assert storage.exists(partial)


class TestPages:
    def test_project_pages_and_live_status(self, login, member, rendered, outsider):
        client = login(member)
        slug = member.organization.slug
        assert "Dealers 2026" in client.get(f"/o/{slug}/projects/").content.decode()
        page = client.get(f"/o/{slug}/batches/{rendered.pk}/").content.decode()
        assert "face__speech.mp4" in page and "data-status-url" in page
        status = client.get(f"/o/{slug}/batches/{rendered.pk}/status.json").json()
        assert status["status"] == "succeeded" and status["percent"] == 100
        assert status["jobs"][0]["output"]["name"] == "face__speech.mp4"
        other = login(outsider)
        for url in [
            f"/o/{slug}/batches/{rendered.pk}/",
            f"/o/rival/batches/{rendered.pk}/",
            f"/o/rival/batches/{rendered.pk}/status.json",
            f"/o/rival/outputs/{rendered.jobs.get().output.pk}/download/",
        ]:
            assert other.get(url).status_code == 404

    @pytest.mark.local_storage  # the bucket's own ranges: tests/test_media_s3.py
    def test_download_with_ranges(self, login, member, rendered):
        output = rendered.jobs.get().output
        client = login(member)
        url = f"/o/{member.organization.slug}/outputs/{output.pk}/download/"
        whole = client.get(url)
        body = b"".join(whole.streaming_content)
        assert whole.status_code == 200 and len(body) == output.bytes
        assert "filename*=UTF-8''face__speech.mp4" in whole["Content-Disposition"]
        part = client.get(url, HTTP_RANGE="bytes=10-19")
        assert part.status_code == 206 and b"".join(part.streaming_content) == body[10:20]
        assert part["Content-Range"] == f"bytes 10-19/{output.bytes}"
        tail = client.get(url, HTTP_RANGE="bytes=-5")
        assert b"".join(tail.streaming_content) == body[-5:]
        bad = client.get(url, HTTP_RANGE=f"bytes={output.bytes}-")
        assert bad.status_code == 416 and bad["Content-Range"] == f"bytes */{output.bytes}"
        assert client.get(url, HTTP_IF_NONE_MATCH=whole["ETag"]).status_code == 304
        thumb = client.get(f"/o/{member.organization.slug}/outputs/{output.pk}/thumbnail/")
        assert b"".join(thumb.streaming_content)[:2] == b"\xff\xd8"

    def test_new_batch_page_keeps_accepted_files_and_lists_refused_ones(
        self, login, member, project, media_dir
    ):
        client = login(member)
        url = f"/o/{member.organization.slug}/projects/{project.pk}/batches/new/"
        assert client.get(url).status_code == 200
        with (
            open(media_dir / "face.mp4", "rb") as face,
            open(media_dir / "speech.wav", "rb") as good,
            open(media_dir / "noface.mp4", "rb") as bad,
        ):
            response = client.post(
                url,
                {"engine": "warp", "tags": "", "avatar_files": [face], "audio_files": [good, bad]},
            )
        assert response.status_code == 400
        page = response.content.decode()
        assert "noface.mp4" in page and "The accepted files are saved" in page
        avatar = Asset.objects.get(kind="avatar")
        audio = Asset.objects.get(kind="audio")
        assert f'value="{avatar.pk}" checked' in page and f'value="{audio.pk}" checked' in page
        assert not Batch.objects.exists()
        response = client.post(
            url, {"engine": "warp", "avatars": [avatar.pk], "audios": [audio.pk]}
        )
        batch = Batch.objects.get()
        assert response.url == f"/o/{member.organization.slug}/batches/{batch.pk}/"

    def test_asset_upload_endpoint_answers_in_json(self, login, member, viewer, media_dir):
        slug = member.organization.slug
        with open(media_dir / "speech.wav", "rb") as f:
            response = login(member).post(f"/o/{slug}/assets/upload/", {"kind": "audio", "file": f})
        assert response.status_code == 201 and response.json()["name"] == "speech.wav"
        with open(media_dir / "noface.mp4", "rb") as f:
            response = login(member).post(
                f"/o/{slug}/assets/upload/", {"kind": "avatar", "file": f}
            )
        assert response.status_code == 400 and "No face" in response.json()["error"]
        with open(media_dir / "speech.wav", "rb") as f:
            assert (
                login(viewer)
                .post(f"/o/{slug}/assets/upload/", {"kind": "audio", "file": f})
                .status_code
                == 403
            )

    def test_oversize_upload_is_cut_off(self, login, member, settings, media_dir):
        settings.ASSET_MAX_BYTES = 1000
        with open(media_dir / "speech.wav", "rb") as f:
            response = login(member).post(
                f"/o/{member.organization.slug}/assets/upload/", {"kind": "audio", "file": f}
            )
        assert (
            response.status_code == 413 and "larger than" in json.loads(response.content)["error"]
        )
        assert not Asset.objects.exists()

    def test_viewer_sees_no_submit_controls(self, login, viewer, project):
        page = login(viewer).get(f"/o/{viewer.organization.slug}/projects/{project.pk}/").content
        assert b"New batch" not in page


def test_the_web_process_lists_and_checks_engines_without_torch():
    """The new-batch form and the submit check must not import torch into a web worker."""
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup(); import heygem_site.urls; "
        "from jobs import views, services; views._engines(); services.engine_check('warp'); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "heygem_site.test_settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


def test_a_worker_that_cannot_use_its_device_leaves_the_job_queued_and_says_why(
    member, project, avatar, audio, settings
):
    batch = services.batch_submit(
        membership=member, project=project, avatars=[avatar], audios=[audio]
    )
    job = batch.jobs.get()
    settings.INFERENCE_DEVICE = "cuda:7"  # no such GPU on this machine
    assert services.render_job_run(job_id=job.pk) == "skipped"
    job.refresh_from_db()
    assert job.status == RenderJob.Status.QUEUED and job.attempts == 0
    assert "cannot use its device" in job.error and "INFERENCE_DEVICE" in job.error
    settings.INFERENCE_DEVICE = ""
    assert services.render_job_run(job_id=job.pk) == RenderJob.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.error == ""
