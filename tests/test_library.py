"""The library: one entry per content, rename, delete (refused while a job waits for the file,
outputs kept), search, kind filter, pages, preview, the API's PATCH/DELETE and the audit log."""

from __future__ import annotations

import importlib
import urllib.parse
import urllib.request

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from core.storage import media as storage
from jobs import services
from jobs.library_views import ASSETS_PER_PAGE
from jobs.models import Asset, Batch, Output, RenderJob, Script

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(member):
    return services.project_create(membership=member, name="Library project")


@pytest.fixture
def speech(member, upload):
    return services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))


@pytest.fixture
def face(member, upload):
    return services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))


def _bearer(membership) -> dict[str, str]:
    from accounts.services import api_token_create

    _, raw = api_token_create(membership=membership, name="library", expires_in_days=None)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _spoken(script: Script, tmp_path) -> Asset:
    from jobs.services.scripts import script_audio

    return script_audio(script_id=script.pk, scratch=tmp_path, should_cancel=lambda: False)


def _served(response) -> tuple[bytes, str, str]:
    """What a media route serves and how (Content-Type, Content-Disposition): the response
    itself with media in a local folder; with media in S3 (the scale-out pass) a presigned
    address on the loopback bucket, whose query carries both."""
    if response.status_code == 302:
        location = response["Location"]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        with urllib.request.urlopen(location, timeout=30) as fetched:  # noqa: S310 - loopback
            body = fetched.read()
        return (
            body, query["response-content-type"][0], query["response-content-disposition"][0]
        )  # fmt: skip
    assert response.status_code == 200, response.status_code
    body = b"".join(response.streaming_content)
    return body, response["Content-Type"], response["Content-Disposition"]


def _stored(org) -> list[str]:
    return [n for n in storage.list_names(f"assets/{org.pk}/") if not n.endswith(".part")]


def _file(media_dir, sample: str, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (media_dir / sample).read_bytes())


class TestOneEntryPerContent:
    def test_the_same_bytes_again_are_the_entry_already_there(self, member, upload, speech):
        again = services.asset_create(
            membership=member, kind="audio", upload=upload("speech.wav", "copy of speech.wav")
        )
        assert again.pk == speech.pk and again.reused and not speech.reused
        assert again.original_name == "speech.wav"
        assert Asset.objects.filter(organization=member.organization).count() == 1
        assert len(_stored(member.organization)) == 1
        assert AuditEvent.objects.filter(action="asset.uploaded").count() == 1

    def test_other_content_kind_or_organization_is_a_new_entry(
        self, member, outsider, upload, speech
    ):
        longer = services.asset_create(membership=member, kind="audio", upload=upload("long.wav"))
        sound = services.asset_create(
            membership=member, kind="audio", upload=upload("clip_with_sound.mp4")
        )
        elsewhere = services.asset_create(
            membership=outsider, kind="audio", upload=upload("speech.wav")
        )
        assert len({speech.pk, longer.pk, sound.pk, elsewhere.pk}) == 4
        assert not any(a.reused for a in (longer, sound, elsewhere))

    def test_page_uploader_says_the_file_was_already_there(self, login, member, media_dir):
        client = login(member)
        url = reverse("jobs:asset_upload", args=[member.organization.slug])
        first = client.post(url, {"kind": "audio", "file": _file(media_dir, "speech.wav", "a.wav")})
        again = client.post(url, {"kind": "audio", "file": _file(media_dir, "speech.wav", "b.wav")})
        assert first.status_code == 201 and first.json()["reused"] is False
        assert again.status_code == 200, again.content
        body = again.json()
        assert body["reused"] is True and body["id"] == first.json()["id"]
        assert body["verdict"] == "already in your library as “a.wav”"

    def test_library_form_without_script_says_so_too(self, login, member, media_dir, speech):
        client = login(member)
        url = reverse("jobs:library", args=[member.organization.slug])
        response = client.post(
            url, {"audio_files": [_file(media_dir, "speech.wav", "again.wav")]}, follow=True
        )
        text = response.content.decode()
        assert "“again.wav” is already in your library as “speech.wav”" in text
        assert Asset.objects.filter(organization=member.organization).count() == 1

    def test_library_form_with_nothing_chosen_asks_for_a_file(self, login, member):
        client = login(member)
        url = reverse("jobs:library", args=[member.organization.slug])
        response = client.post(url, {}, follow=True)
        assert "Choose at least one file to upload." in response.content.decode()
        assert "refused" not in response.content.decode()

    def test_api_answers_200_with_the_existing_asset(self, client, member, media_dir, speech):
        url = reverse("api:asset-list", args=[member.organization.slug])
        response = client.post(
            url, {"kind": "audio", "file": _file(media_dir, "speech.wav", "x.wav")},
            **_bearer(member),
        )  # fmt: skip
        assert response.status_code == 200, response.content
        assert response.json()["id"] == speech.pk and response.json()["reused"] is True

    def test_concurrent_upload_of_the_same_bytes_keeps_one(self, member, upload, monkeypatch):
        """Two uploads that both found nothing: the database keeps one, the second answer is
        that one and its copy is removed from storage."""
        from jobs.services import assets

        monkeypatch.setattr(assets, "_in_library", lambda *a: None)
        first = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
        monkeypatch.undo()
        real = assets._in_library
        calls = {"n": 0}

        def first_miss(*args):
            calls["n"] += 1
            return None if calls["n"] == 1 else real(*args)

        monkeypatch.setattr(assets, "_in_library", first_miss)
        second = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
        assert second.pk == first.pk and second.reused
        assert _stored(member.organization) == [first.file.name]

    def test_synthesised_audio_with_the_same_bytes_is_shared(self, member, project, face, tmp_path):
        """Two scripts with the same words and voice make the same WAV: one library entry."""
        spec = services.ScriptSpec(text="Hello there.", voice="espeak:en-us")
        batches = [
            services.batch_submit(
                membership=member, project=project, avatars=[face], scripts=[spec]
            )
            for _ in range(2)
        ]
        scripts = [b.jobs.get().script for b in batches]
        assert scripts[0].pk != scripts[1].pk
        audios = [_spoken(s, tmp_path) for s in scripts]
        assert audios[0].pk == audios[1].pk
        assert Asset.objects.filter(kind="audio", organization=member.organization).count() == 1


class TestRename:
    def test_rename_keeps_the_file_and_is_audited(self, member, speech):
        renamed = services.asset_rename(membership=member, asset=speech, name="  开场白  .wav ")
        assert renamed.original_name == "开场白 .wav"
        assert renamed.file.name == speech.file.name
        event = AuditEvent.objects.get(action="asset.renamed")
        assert event.detail == {"kind": "audio", "from": "speech.wav", "to": "开场白 .wav"}
        assert event.actor_id == member.user_id

    @pytest.mark.parametrize("name", ["", "   ", "..", "\u200b"])
    def test_blank_name_is_refused_and_nothing_changes(self, member, speech, name):
        with pytest.raises(ValidationError) as refused:
            services.asset_rename(membership=member, asset=speech, name=name)
        assert "Give the file a name" in refused.value.messages[0]
        assert Asset.objects.get(pk=speech.pk).original_name == "speech.wav"
        assert not AuditEvent.objects.filter(action="asset.renamed").exists()

    def test_viewer_may_not_rename(self, viewer, speech):
        with pytest.raises(PermissionDenied):
            services.asset_rename(membership=viewer, asset=speech, name="x.wav")

    def test_page_rename_returns_to_the_same_filter(self, login, member, speech):
        client = login(member)
        url = reverse("jobs:asset_rename", args=[member.organization.slug, speech.pk])
        page = client.get(reverse("jobs:library", args=[member.organization.slug]), {"q": "sp"})
        assert f'action="{url}?q=sp"' in page.content.decode()
        response = client.post(url + "?kind=audio&q=sp&page=2", {"name": "Intro.wav"})
        assert response.status_code == 302
        assert response["Location"].endswith("/library/?kind=audio&q=sp&page=2")
        assert Asset.objects.get(pk=speech.pk).original_name == "Intro.wav"

    def test_api_patch(self, client, member, speech):
        url = reverse("api:asset-detail", args=[member.organization.slug, speech.pk])
        auth = _bearer(member)
        response = client.patch(
            url, {"name": "话术一.wav"}, content_type="application/json", **auth
        )
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "话术一.wav"
        bad = client.patch(url, {"name": " "}, content_type="application/json", **auth)
        assert bad.status_code == 400
        assert Asset.objects.get(pk=speech.pk).original_name == "话术一.wav"


class TestDelete:
    def test_unused_asset_goes_with_its_file(
        self, member, speech, django_capture_on_commit_callbacks
    ):
        name = speech.file.name
        with django_capture_on_commit_callbacks(execute=True):
            services.asset_delete(membership=member, asset=speech)
        assert not Asset.objects.filter(pk=speech.pk).exists()
        assert not storage.exists(name)
        event = AuditEvent.objects.get(action="asset.deleted")
        assert (event.file_count, event.total_bytes) == (1, speech.bytes)
        assert event.detail["sha256"] == speech.sha256

    def test_refused_while_a_job_waits_for_it(self, member, project, face, speech):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[face], audios=[speech], name="早班"
        )
        for asset in (face, speech):
            with pytest.raises(ValidationError) as refused:
                services.asset_delete(membership=member, asset=asset)
            text = refused.value.messages[0]
            assert "still queued or rendering" in text and "“早班”" in text
            assert refused.value.code == "in_use"
            assert storage.exists(asset.file.name)
            assert Asset.objects.get(pk=asset.pk).deleted_at is None
        RenderJob.objects.filter(batch=batch).update(status="running")
        with pytest.raises(ValidationError):
            services.asset_delete(membership=member, asset=speech)
        assert not AuditEvent.objects.filter(action="asset.deleted").exists()

    def test_finished_videos_keep_working(
        self, login, member, admin, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, (output,) = make_outputs(member, ["a.mp4"])
        job = output.job
        storage.save_bytes(job.audio.file.name, b"audio")
        with django_capture_on_commit_callbacks(execute=True):
            services.asset_delete(membership=admin, asset=job.audio)
        audio = Asset.objects.get(pk=job.audio_id)
        assert audio.deleted_at is not None and audio.is_deleted
        assert not storage.exists(audio.file.name)
        client = login(member)
        slug = member.organization.slug
        download = client.get(reverse("jobs:output_download", args=[slug, output.pk]))
        assert _served(download)[0] == storage.read_bytes(output.file.name)
        page = client.get(reverse("jobs:batch", args=[slug, batch.pk]))
        assert page.status_code == 200 and "a.mp4" in page.content.decode()
        assert page.content.decode().count("deleted from the library") == 1  # the audio only
        library = client.get(reverse("jobs:library", args=[slug]))
        assert f'data-asset="{audio.pk}"' not in library.content.decode()
        media = client.get(reverse("jobs:asset_media", args=[slug, audio.pk]))
        assert media.status_code == 404

    def test_deleted_file_cannot_be_used_again(self, member, project, face, speech):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[face], audios=[speech]
        )
        RenderJob.objects.filter(batch=batch).update(status="failed")
        services.asset_delete(membership=member, asset=speech)
        speech.refresh_from_db()
        with pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member, project=project, avatars=[face], audios=[speech]
            )
        assert "was deleted from the library" in refused.value.messages[0]
        with pytest.raises(ValidationError) as no_retry:
            services.job_retry(membership=member, job=batch.jobs.get())
        assert "“speech.wav” was deleted from the library" in no_retry.value.messages[0]
        assert batch.jobs.get().status == "failed"
        assert Batch.objects.count() == 1

    def test_the_same_file_uploaded_after_delete_is_a_new_entry(self, member, upload, speech):
        services.asset_delete(membership=member, asset=speech)
        again = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
        assert again.pk != speech.pk and not again.reused
        assert storage.exists(again.file.name)

    def test_script_audio_is_spoken_again_after_delete(self, member, project, face, tmp_path):
        spec = services.ScriptSpec(text="Good morning.", voice="espeak:en-us")
        batch = services.batch_submit(
            membership=member, project=project, avatars=[face], scripts=[spec]
        )
        script = batch.jobs.get().script
        spoken = _spoken(script, tmp_path)
        RenderJob.objects.filter(batch=batch).update(status="succeeded")
        services.asset_delete(membership=member, asset=spoken)
        assert Script.objects.get(pk=script.pk).audio_id is None
        again = _spoken(Script.objects.get(pk=script.pk), tmp_path)
        assert again.pk != spoken.pk and storage.exists(again.file.name)

    def test_members_delete_their_own_admins_any(self, member, admin, make_member, upload):
        colleague = make_member(member.organization)
        theirs = services.asset_create(
            membership=colleague, kind="audio", upload=upload("speech.wav")
        )
        with pytest.raises(PermissionDenied):
            services.asset_delete(membership=member, asset=theirs)
        assert Asset.objects.filter(pk=theirs.pk).exists()
        services.asset_delete(membership=admin, asset=theirs)
        assert not Asset.objects.filter(pk=theirs.pk).exists()

    def test_page_delete_flashes_the_refusal(self, login, member, project, face, speech):
        services.batch_submit(membership=member, project=project, avatars=[face], audios=[speech])
        client = login(member)
        url = reverse("jobs:asset_delete", args=[member.organization.slug, speech.pk])
        response = client.post(url, follow=True)
        assert "cannot be deleted" in response.content.decode()
        assert Asset.objects.get(pk=speech.pk).deleted_at is None

    def test_api_delete(self, client, member, project, face, speech):
        auth = _bearer(member)
        slug = member.organization.slug
        batch = services.batch_submit(
            membership=member, project=project, avatars=[face], audios=[speech]
        )
        url = reverse("api:asset-detail", args=[slug, speech.pk])
        busy = client.delete(url, **auth)
        assert busy.status_code == 400, busy.content
        assert "still queued or rendering" in busy.content.decode()
        RenderJob.objects.filter(batch=batch).update(status="succeeded")
        assert client.delete(url, **auth).status_code == 204
        assert client.get(url, **auth).status_code == 404
        listed = client.get(reverse("api:asset-list", args=[slug]), **auth).json()
        rows = listed["results"] if isinstance(listed, dict) else listed
        assert [a["id"] for a in rows] == [face.pk]


class TestLibraryPage:
    def _seed(self, member, names, kind="audio"):
        common = {"organization": member.organization, "duration": 2.0, "bytes": 100}
        return [
            Asset.objects.create(
                kind=kind,
                file=f"assets/{i}.wav",
                original_name=name,
                sha256=f"{kind}{i:058d}",
                created_by=member.user,
                **common,
            )
            for i, name in enumerate(names)
        ]

    def test_search_kind_filter_and_pages(self, login, member):
        self._seed(member, [f"track {i:02d}.wav" for i in range(ASSETS_PER_PAGE + 3)])
        self._seed(member, ["北京主播.mp4", "上海主播.mp4"], kind="avatar")
        client = login(member)
        url = reverse("jobs:library", args=[member.organization.slug])
        first = client.get(url).content.decode()
        assert first.count("data-asset=") == ASSETS_PER_PAGE
        assert "30 files" in first and "Page 1 of 2" in first
        second = client.get(url, {"page": 2}).content.decode()
        assert second.count("data-asset=") == 5
        found = client.get(url, {"q": "北京"}).content.decode()
        assert found.count("data-asset=") == 1 and "北京主播.mp4" in found
        avatars = client.get(url, {"kind": "avatar"}).content.decode()
        assert avatars.count("data-asset=") == 2 and "track 00.wav" not in avatars
        # Every word must be in the name: "track" and "2" (02, 12, 20…27).
        words = client.get(url, {"q": "track 2", "kind": "audio"}).content.decode()
        assert words.count("data-asset=") == 10
        paged = client.get(url, {"q": "track", "kind": "audio"}).content.decode()
        assert "?kind=audio&amp;q=track&amp;page=2" in paged
        none = client.get(url, {"q": "nothing like it"}).content.decode()
        assert "No file matches" in none

    def test_rows_say_how_many_videos_use_a_file(self, login, member, project, face, speech):
        services.batch_submit(membership=member, project=project, avatars=[face], audios=[speech])
        page = login(member).get(reverse("jobs:library", args=[member.organization.slug]))
        text = page.content.decode()
        assert text.count("1 video") >= 2 and "1 queued or rendering" in text

    def test_viewer_sees_the_list_but_no_actions(self, login, viewer, speech):
        page = login(viewer).get(reverse("jobs:library", args=[viewer.organization.slug]))
        text = page.content.decode()
        assert page.status_code == 200 and "speech.wav" in text
        assert "Rename" not in text and "/delete/" not in text and 'type="file"' not in text

    def test_members_get_delete_for_their_own_files_only(self, login, member, make_member, upload):
        colleague = make_member(member.organization)
        theirs = services.asset_create(
            membership=colleague, kind="audio", upload=upload("speech.wav")
        )
        mine = services.asset_create(membership=member, kind="audio", upload=upload("long.wav"))
        text = login(member).get(reverse("jobs:library", args=[member.organization.slug]))
        html = text.content.decode()
        slug = member.organization.slug
        assert reverse("jobs:asset_delete", args=[slug, mine.pk]) in html
        assert reverse("jobs:asset_delete", args=[slug, theirs.pk]) not in html

    def test_preview_serves_the_file_inline(self, login, member, speech, outsider):
        url = reverse("jobs:asset_media", args=[member.organization.slug, speech.pk])
        body, content_type, disposition = _served(login(member).get(url))
        assert content_type == "audio/wav" and disposition.startswith("inline")
        assert body == storage.read_bytes(speech.file.name)
        body, _, disposition = _served(login(member).get(url + "?download=1"))
        assert disposition.startswith("attachment") and "speech.wav" in disposition
        assert body == storage.read_bytes(speech.file.name)
        assert login(outsider).get(url).status_code == 404


class TestStillImage:
    def test_photo_as_avatar_is_called_a_still_image(self, member, tmp_path):
        from tests.media import face_png

        png = face_png(tmp_path / "me.png")
        with pytest.raises(ValidationError) as refused:
            services.asset_create(
                membership=member, kind="avatar", upload=services.UploadedMedia(png, "me.png")
            )
        text = refused.value.messages[0]
        assert "“me.png”: This is a still image (PNG)" in text and "png_pipe" not in text
        jpeg = tmp_path / "me.jpg"
        from PIL import Image

        Image.open(png).convert("RGB").save(jpeg)
        with pytest.raises(ValidationError) as refused:
            services.asset_create(
                membership=member, kind="avatar", upload=services.UploadedMedia(jpeg, "me.jpg")
            )
        assert "still image (JPEG/PNG)" in refused.value.messages[0]
        assert not Asset.objects.exists()


class TestMigration:
    """jobs 0006: jobs numbered in order; duplicates merged into the oldest upload."""

    migration = importlib.import_module("jobs.migrations.0006_library_and_job_numbers")

    def test_jobs_are_numbered_in_creation_order(self, member, make_outputs):
        batch, _outputs = make_outputs(member, ["a", "b", "c"])
        for job in RenderJob.objects.filter(batch=batch):
            RenderJob.objects.filter(pk=job.pk).update(number=100 + job.pk)
        self.migration.number_jobs(apps, None)
        numbers = list(batch.jobs.order_by("id").values_list("number", flat=True))
        assert numbers == [1, 2, 3]

    def test_duplicates_are_merged_into_the_oldest(self, member, make_outputs, speech):
        _batch, (output,) = make_outputs(member, ["a"])
        # A copy of the same content made before the library held one entry per content (the
        # constraint spares rows marked deleted, so the old state can be set up).
        copy = Asset.objects.get(pk=speech.pk)
        copy.pk, copy.deleted_at = None, speech.created_at
        copy.save()
        RenderJob.objects.filter(pk=output.job_id).update(audio=copy)
        self.migration.merge_duplicates(apps, None)
        assert not Asset.objects.filter(pk=copy.pk).exists()
        assert RenderJob.objects.get(pk=output.job_id).audio_id == speech.pk
        assert Output.objects.filter(pk=output.pk).exists()


def test_job_numbers_run_1_to_n_in_each_batch(member, project, face, speech, upload):
    longer = services.asset_create(membership=member, kind="audio", upload=upload("long.wav"))
    first = services.batch_submit(
        membership=member, project=project, avatars=[face], audios=[speech, longer]
    )
    second = services.batch_submit(
        membership=member, project=project, avatars=[face], audios=[longer]
    )
    assert list(first.jobs.order_by("id").values_list("number", flat=True)) == [1, 2]
    assert list(second.jobs.values_list("number", flat=True)) == [1]


def test_batch_form_with_no_file_chosen_refuses_no_file(login, member, project):
    """A browser sends an empty part for a file input left empty: it is no file, so the page
    asks for an avatar instead of saying that files were refused."""
    boundary = "----heygem"
    parts = [
        ('name="engine"', b"warp"),
        ('name="avatar_files"; filename=""', b""),
        ('name="audio_files"; filename=""', b""),
    ]
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n".encode()
            + (b"Content-Type: application/octet-stream\r\n" if "filename" in disposition else b"")
            + b"\r\n"
            + value
            + b"\r\n"
            for disposition, value in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    response = login(member).generic(
        "POST",
        reverse("jobs:batch_create", args=[member.organization.slug, project.pk]),
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    text = response.content.decode()
    assert response.status_code == 400
    assert "Choose or upload at least one avatar video." in text
    assert "Some files were refused" not in text
    assert not Asset.objects.exists() and not Batch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_merges_duplicates_of_a_real_database():
    """jobs 0005 -> latest with duplicates used by jobs, on the database of the run (PostgreSQL
    in the scale-out pass: its constraints cannot be added in the transaction that re-pointed
    the rows, so 0007 adds them)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("jobs", "0005_scripts_subtitles_output_options")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    org = old.get_model("accounts", "Organization").objects.create(name="Old", slug="old")
    project = old.get_model("jobs", "Project").objects.create(organization_id=org.pk, name="P")
    asset = old.get_model("jobs", "Asset")
    common = {"organization_id": org.pk, "duration": 1.0, "bytes": 1}
    copies = [
        asset.objects.create(
            kind="audio",
            file=f"assets/{i}.wav",
            original_name=f"{i}.wav",
            sha256="d" * 64,
            **common,
        )
        for i in range(3)
    ]
    avatar = asset.objects.create(
        kind="avatar", file="assets/v.mp4", original_name="v.mp4", sha256="e" * 64, **common
    )
    batch = old.get_model("jobs", "Batch").objects.create(project_id=project.pk, engine="warp")
    job = old.get_model("jobs", "RenderJob")
    made = [
        job.objects.create(batch_id=batch.pk, avatar_id=avatar.pk, audio_id=a.pk, engine="warp")
        for a in copies
    ]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    jobs = list(RenderJob.objects.filter(pk__in=[j.pk for j in made]).order_by("id"))
    assert [(j.audio_id, j.number) for j in jobs] == [(copies[0].pk, n) for n in (1, 2, 3)]
    assert list(Asset.objects.filter(kind="audio").values_list("pk", flat=True)) == [copies[0].pk]
