"""Subtitles and output options through real renders (warp engine, tiny media made by
tests/media.py): an SRT attached to an uploaded audio track (refused with line numbers, in the
reader's language), shipped beside its video and burned in on request (the subtitle band
changes, the rest does not); the batch's watermark in its corner; the resolution; WebVTT made
from a video's SRT; the ZIP bundle with each .srt beside its video and listed in the manifest."""

from __future__ import annotations

import csv
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import translation
from PIL import Image

from accounts.models import AuditEvent
from core.storage import media as storage
from core.storage.bundles import bundle_store
from exports import services as export_services
from exports.scope import scope_from_params
from heygem_client.bundle import verify_bundle
from inference.ffmpeg_bin import find_ffmpeg
from inference.media import probe
from inference.subtitles import parse_srt
from jobs import services
from jobs.models import Asset, Batch, RenderJob, Script
from tests.api.helpers import Api, assert_error

pytestmark = pytest.mark.django_db


def bundle_file(export, settings) -> Path:
    """The built bundle as a local file: where it was written, or a copy out of the bucket."""
    if export.storage == "s3":
        target = Path(settings.EXPORT_ROOT).parent / "from-bucket" / export.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        bundle_store("s3").download(export.storage_key, target)
        return target
    return Path(settings.EXPORT_ROOT) / export.storage_key


# Two cues inside the one second of tests/media's speech.wav.
GOOD_SRT = (
    "1\r\n00:00:00,000 --> 00:00:00,450\r\n欢迎来到北京\r\n\r\n"
    "2\r\n00:00:00,500 --> 00:00:00,980\r\nWelcome to Beijing\r\n"
).encode()
# Line 2: no timing line; line 6: a cue that starts after the audio ends; line 10: it ends
# before it starts.
BAD_SRT = (
    b"1\nthis is not a time\nHello\n\n"
    b"2\n00:00:05,000 --> 00:00:06,000\nToo late\n\n"
    b"3\n00:00:00,800 --> 00:00:00,200\nBackwards\n"
)


@pytest.fixture
def project(member):
    return services.project_create(membership=member, name="Subtitles")


@pytest.fixture
def avatar(member, upload):
    return services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))


@pytest.fixture
def audio(member, upload):
    return services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))


@pytest.fixture
def api(client, member) -> Api:
    from accounts import services as account_services

    _, raw = account_services.api_token_create(membership=member, name="t", expires_in_days=None)
    return Api(client, raw, member.organization.slug)


@pytest.fixture
def captioned(member, audio):
    return services.asset_attach_subtitles(
        membership=member, asset=audio, data=GOOD_SRT, filename="北京.srt"
    )


def _render(member, project, django_capture_on_commit_callbacks, **kwargs) -> Batch:
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_submit(membership=member, project=project, **kwargs)
    for job in batch.jobs.all():
        assert job.status == RenderJob.Status.SUCCEEDED, job.error
    return batch


def _frame(path: Path, at: float) -> np.ndarray:
    """The RGB frame shown at ``at`` seconds, as an (h, w, 3) int array."""
    info = probe(path)
    cmd = [find_ffmpeg(), "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(info.height, info.width, 3).astype(int)


def _video(batch: Batch, tmp_path: Path, name: str) -> Path:
    """The batch's one video as a local file (a copy when media live in a bucket)."""
    output = batch.jobs.get().output
    (tmp_path / name).mkdir()
    return storage.fetch(output.file.name, tmp_path / name)


class TestAttach:
    def test_an_srt_is_checked_kept_and_audited(self, member, captioned):
        assert captioned.subtitles_name == "北京.srt" and captioned.has_subtitles
        cues = parse_srt(captioned.subtitles)
        assert [c.text for c in cues] == ["欢迎来到北京", "Welcome to Beijing"]
        assert captioned.subtitles.startswith("1\n00:00:00,000 --> 00:00:00,450\n")  # our SRT
        event = AuditEvent.objects.get(action="asset.subtitles_attached")
        assert event.actor == member.user and event.detail["cues"] == 2

    def test_every_problem_is_named_with_its_line_and_nothing_changes(self, member, audio):
        with pytest.raises(ValidationError) as refused:
            services.asset_attach_subtitles(
                membership=member, asset=audio, data=BAD_SRT, filename="bad.srt"
            )
        messages = refused.value.message_dict["file"]
        assert messages[0] == "“bad.srt” cannot be used as subtitles:"
        assert any(m.startswith("line 2: expected a timing line") for m in messages)
        assert any(m.startswith("line 6: the cue starts at 00:00:05.000") for m in messages)
        assert "line 10: the cue ends before (or when) it starts" in messages
        audio.refresh_from_db()
        assert audio.subtitles == "" and not audio.has_subtitles
        assert not AuditEvent.objects.filter(action="asset.subtitles_attached").exists()

    def test_the_problems_in_chinese(self, member, audio):
        with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
            services.asset_attach_subtitles(
                membership=member, asset=audio, data=BAD_SRT, filename="bad.srt"
            )
        messages = refused.value.message_dict["file"]
        assert messages[0] == "“bad.srt”无法用作字幕："
        assert any(m.startswith("第 2 行：") and "时间行" in m for m in messages)
        assert any(m.startswith("第 6 行：") and "音频只有" in m for m in messages)

    def test_other_encodings_and_kinds_are_refused(self, member, audio, avatar):
        with pytest.raises(ValidationError, match="not UTF-8"):
            services.asset_attach_subtitles(
                membership=member, asset=audio, data="1\n00:00:00,000 --> 00:00:00,500\n你好\n"
                .encode("gb18030"),
            )  # fmt: skip
        with pytest.raises(ValidationError, match="audio tracks only"):
            services.asset_attach_subtitles(membership=member, asset=avatar, data=GOOD_SRT)

    def test_viewers_and_other_organizations_cannot_attach(self, viewer, outsider, audio):
        from django.core.exceptions import PermissionDenied

        with pytest.raises(PermissionDenied):
            services.asset_attach_subtitles(membership=viewer, asset=audio, data=GOOD_SRT)
        with pytest.raises(Asset.DoesNotExist):
            services.asset_attach_subtitles(membership=outsider, asset=audio, data=GOOD_SRT)
        audio.refresh_from_db()
        assert audio.subtitles == ""

    def test_the_api_attaches_refuses_with_lines_and_removes(self, api, member, audio):
        from django.core.files.uploadedfile import SimpleUploadedFile

        url = api.url("asset-subtitles", audio.pk)
        bad = SimpleUploadedFile("bad.srt", BAD_SRT)
        error = assert_error(api.call("POST", url, {"file": bad}, multipart=True), 400, "invalid")
        assert any(line.startswith("line 6:") for line in error["fields"]["file"])
        good = SimpleUploadedFile("good.srt", GOOD_SRT)
        answer = api.call("POST", url, {"file": good}, multipart=True)
        assert answer.status_code == 200, answer.content
        assert answer.json()["has_subtitles"] and answer.json()["subtitles_name"] == "good.srt"
        assert api.call("DELETE", url).status_code == 204
        audio.refresh_from_db()
        assert audio.subtitles == ""


class TestSubmitRefusals:
    def test_burning_needs_subtitles(self, member, project, avatar, audio):
        before = (Batch.objects.count(), RenderJob.objects.count())
        with pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                audios=[audio],
                burn_subtitles=True,
            )
        assert "has no subtitles to burn in" in refused.value.message_dict["burn_subtitles"][0]
        assert (Batch.objects.count(), RenderJob.objects.count()) == before

    def test_bad_output_options_are_named_and_nothing_is_made(
        self, member, project, avatar, audio, tmp_path, settings
    ):
        jpeg = tmp_path / "logo.jpg"
        Image.new("RGB", (40, 20), (255, 0, 0)).save(jpeg)
        before = (Batch.objects.count(), RenderJob.objects.count(), storage.list_names())
        options = services.OutputSettings(
            resolution="4k", quality="best", watermark=jpeg, watermark_opacity=1.5
        )
        with pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio], output=options
            )
        errors = refused.value.message_dict
        assert set(errors) == {"resolution", "quality", "watermark", "watermark_opacity"}
        assert "must be a PNG" in errors["watermark"][0]
        assert (Batch.objects.count(), RenderJob.objects.count(), storage.list_names()) == before

    def test_a_job_speaks_an_audio_or_a_script_never_both_nor_neither(
        self, member, project, avatar, audio
    ):
        batch = Batch.objects.create(project=project, engine="warp")
        script = Script.objects.create(organization=member.organization, text="Hi.", voice="x")
        for fields in ({"audio": audio, "script": script}, {}):
            with pytest.raises(IntegrityError), transaction.atomic():
                RenderJob.objects.create(batch=batch, avatar=avatar, engine="warp", **fields)


class TestRenderedWithSubtitles:
    def test_the_srt_goes_beside_the_video_and_is_served_as_srt_and_webvtt(
        self,
        member,
        project,
        avatar,
        captioned,
        api,
        django_capture_on_commit_callbacks,
    ):
        batch = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[captioned],
        )
        output = batch.jobs.get().output
        assert output.subtitles.name == output.file.name.replace(".mp4", ".srt")
        data = storage.read_bytes(output.subtitles.name)
        assert output.subtitles_bytes == len(data)
        assert [c.text for c in parse_srt(data)] == ["欢迎来到北京", "Welcome to Beijing"]
        srt = api.get("output-subtitles", output.pk)
        assert srt.status_code == 200 and srt["Content-Type"].startswith("application/x-subrip")
        assert srt.content == data and "face__speech.srt" in srt["Content-Disposition"]
        vtt = api.get("output-subtitles", output.pk, params={"type": "vtt"})
        assert vtt["Content-Type"].startswith("text/vtt")
        assert vtt.content.decode().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.450\n欢迎")
        listed = api.get("output-detail", output.pk).json()
        assert listed["subtitles"].endswith(f"/outputs/{output.pk}/subtitles/")

    def test_a_video_without_subtitles_has_no_srt(
        self, member, project, avatar, audio, api, django_capture_on_commit_callbacks
    ):
        batch = _render(
            member, project, django_capture_on_commit_callbacks, avatars=[avatar], audios=[audio]
        )
        output = batch.jobs.get().output
        assert not output.subtitles and output.subtitles_bytes is None
        assert not [n for n in storage.list_names("outputs/") if n.endswith(".srt")]
        assert_error(api.get("output-subtitles", output.pk), 404, "not_found")

    def test_burned_subtitles_show_in_the_subtitle_band_only(
        self, member, project, avatar, captioned, tmp_path, django_capture_on_commit_callbacks
    ):
        plain = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[captioned],
        )
        burned = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[captioned],
            burn_subtitles=True,
        )
        assert burned.jobs.get().burn_subtitles
        a = _frame(_video(plain, tmp_path, "plain"), 0.2)
        b = _frame(_video(burned, tmp_path, "burned"), 0.2)
        height = a.shape[0]
        band = np.abs(a[int(height * 0.75) :] - b[int(height * 0.75) :]).mean()
        top = np.abs(a[: int(height * 0.3)] - b[: int(height * 0.3)]).mean()
        assert band > 8 * max(top, 0.5), (band, top)
        # White letters (over the dark suit here): pixels of the band turned much brighter.
        change = b[int(height * 0.75) :].mean(axis=2) - a[int(height * 0.75) :].mean(axis=2)
        assert (change > 60).sum() > 50


class TestOutputOptions:
    def test_the_watermark_sits_in_its_corner(
        self, member, project, avatar, audio, tmp_path, django_capture_on_commit_callbacks
    ):
        png = tmp_path / "logo.png"
        Image.new("RGBA", (100, 50), (255, 0, 255, 255)).save(png)
        options = services.OutputSettings(
            watermark=png, watermark_corner="top-left", watermark_opacity=1.0
        )
        marked = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[audio],
            output=options,
        )
        assert marked.watermark.name.startswith(f"watermarks/{member.organization_id}/")
        frame = _frame(_video(marked, tmp_path, "marked"), 0.5)
        h, w, _ = frame.shape
        magenta = (frame[..., 0] > 200) & (frame[..., 1] < 90) & (frame[..., 2] > 200)
        corner = magenta[: h // 4, : w // 4].mean()
        assert corner > 0.25, corner
        for other in (magenta[: h // 4, -w // 4 :], magenta[-h // 4 :, : w // 4]):
            assert other.mean() < 0.01
        event = AuditEvent.objects.get(action="batch.submitted")
        assert event.detail["output"]["watermark"] == {"corner": "top-left", "opacity": 1.0}

    def test_resolution_and_quality(
        self, member, project, avatar, audio, django_capture_on_commit_callbacks
    ):
        options = services.OutputSettings(resolution="480p", quality="draft")
        batch = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[audio],
            output=options,
        )
        output = batch.jobs.get().output
        assert (output.width, output.height) == (480, 480)  # a 256x256 avatar, short side 480
        assert (batch.resolution, batch.quality) == ("480p", "draft")

    def test_the_api_takes_a_watermark_and_scripts_in_one_multipart_request(
        self, api, project, avatar, tmp_path
    ):
        import json

        from django.core.files.uploadedfile import SimpleUploadedFile

        png, jpeg = io.BytesIO(), io.BytesIO()
        Image.new("RGBA", (64, 32), (0, 255, 0, 128)).save(png, "PNG")
        Image.new("RGB", (64, 32), (0, 255, 0)).save(jpeg, "JPEG")
        scripts = json.dumps([{"text": "Hello there.", "voice": "espeak:en-us"}])
        form = {
            "project": project.pk,
            "avatars": [avatar.pk],
            "scripts": scripts,
            "watermark_corner": "bottom-left",
            "watermark_opacity": "0.5",
            "resolution": "720p",
        }
        before = (Batch.objects.count(), Script.objects.count(), storage.list_names())
        refused = api.call(
            "POST",
            api.url("batch-list"),
            {**form, "watermark": SimpleUploadedFile("logo.jpg", jpeg.getvalue())},
            multipart=True,
        )
        error = assert_error(refused, 400, "invalid")
        assert "must be a PNG" in error["fields"]["watermark"][0]
        assert (Batch.objects.count(), Script.objects.count(), storage.list_names()) == before
        answer = api.call(
            "POST",
            api.url("batch-list"),
            {**form, "watermark": SimpleUploadedFile("logo.png", png.getvalue())},
            multipart=True,
        )
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert body["has_watermark"] and body["watermark_corner"] == "bottom-left"
        assert body["watermark_opacity"] == 0.5 and body["resolution"] == "720p"
        assert body["jobs"][0]["script"]["text"] == "Hello there."
        batch = Batch.objects.get(pk=body["id"])
        assert storage.read_bytes(batch.watermark.name) == png.getvalue()

    def test_the_choices_are_the_librarys(self):
        from inference.media.outputs import QUALITY_PRESETS, RESOLUTIONS, WATERMARK_CORNERS

        assert set(Batch.Resolution.values) == set(RESOLUTIONS)
        assert set(Batch.Quality.values) == set(QUALITY_PRESETS)
        assert set(Batch.Corner.values) == set(WATERMARK_CORNERS)


class TestBundle:
    def test_each_srt_beside_its_video_and_in_the_manifest(
        self, member, project, avatar, audio, captioned, upload, settings,
        django_capture_on_commit_callbacks,
    ):  # fmt: skip
        silent = services.asset_create(
            membership=member, kind="audio", upload=upload("long.wav", "plain.wav")
        )
        batch = _render(
            member,
            project,
            django_capture_on_commit_callbacks,
            avatars=[avatar],
            audios=[captioned, silent],
        )
        params = QueryDict(mutable=True)
        params["batch"] = str(batch.pk)
        with django_capture_on_commit_callbacks(execute=True):
            export, _ = export_services.export_request(
                membership=member, scope=scope_from_params(member, params)
            )
        export.refresh_from_db()
        assert export.status == "ready", export.error
        outputs = {o.name: o for o in (j.output for j in batch.jobs.all())}
        captioned_output = outputs["face__speech.mp4"]
        assert export.total_bytes == sum(o.bytes for o in outputs.values()) + (
            captioned_output.subtitles_bytes
        )
        bundle = bundle_file(export, settings)
        # The command-line client checks every file of the bundle against the manifest.
        report = verify_bundle(bundle)
        assert report.ok and report.checked == 3, report.problems
        with zipfile.ZipFile(bundle) as z:
            assert z.namelist() == [
                "manifest.csv", "face__speech.mp4", "face__speech.srt", "face__plain.mp4"
            ]  # fmt: skip
            assert z.read("face__speech.srt") == storage.read_bytes(captioned_output.subtitles.name)
            manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode("utf-8-sig"))))
        assert [row["path"] for row in manifest] == z.namelist()[1:]
        srt_row = manifest[1]
        assert srt_row["bytes"] == str(captioned_output.subtitles_bytes)
        assert srt_row["sha256"] == captioned_output.subtitles_sha256
        assert srt_row["source_audio"] == "speech.wav"
