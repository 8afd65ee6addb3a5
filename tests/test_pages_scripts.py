"""The pages of scripts and sheets: a batch with scripts, voice and output options through the
new-batch form; bad scripts refused on their fields with nothing made; sheets previewed row by
row and submitted only when every row is good; the batch page's script jobs and subtitles,
with a second organization to catch leaks."""

from __future__ import annotations

import io
import re
import urllib.parse
import urllib.request

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.storage import media as storage
from jobs import services
from jobs.models import Asset, Batch, Output, RenderJob, Script
from jobs.sheets import read_sheet
from tests.test_scripts_and_sheets import SRT, _twenty_rows, _xlsx, every_row_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(member):
    return services.project_create(membership=member, name="Dealers")


@pytest.fixture
def avatar(member, upload):
    return services.asset_create(
        membership=member, kind="avatar", upload=upload("face.mp4", "presenter.mp4")
    )


@pytest.fixture
def intro(member, upload):
    audio = services.asset_create(
        membership=member, kind="audio", upload=upload("speech.wav", "intro.wav")
    )
    return services.asset_attach_subtitles(membership=member, asset=audio, data=SRT)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (40, 20), (255, 0, 0, 128)).save(out, "PNG")
    return out.getvalue()


def _new_batch_url(member, project) -> str:
    return f"/o/{member.organization.slug}/projects/{project.pk}/batches/new/"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class TestNewBatchForm:
    def test_the_form_offers_voices_scripts_and_output_options(self, login, member, project):
        page = login(member).get(_new_batch_url(member, project)).content.decode()
        voices = services.voices_for(member.organization)
        first = re.search(r'<select name="voice"[^>]*>\s*<option value="([^"]+)"', page)
        assert first and first[1] == voices[0].id and voices[0].default
        assert 'name="scripts"' in page and "Add another script" in page
        for name in ("rate", "pitch", "resolution", "quality", "watermark", "burn_subtitles"):
            assert f'name="{name}"' in page
        assert 'value="1080p"' in page and 'value="top-left"' in page
        assert 'data-rate="1"' in page  # espeak voices have a speaking rate

    def test_a_batch_with_scripts_audio_and_output_options(
        self, login, member, project, avatar, intro
    ):
        response = login(member).post(
            _new_batch_url(member, project),
            {
                "engine": "warp",
                "avatars": [avatar.pk],
                "audios": [intro.pk],
                "scripts": ["各位经销商朋友，大家好。", "  ", "Welcome, Shanghai dealers!"],
                "voice": "espeak:en-us",
                "rate": "1.2",
                "pitch": "1",
                "resolution": "720p",
                "quality": "high",
                "watermark": SimpleUploadedFile("logo.png", _png(), "image/png"),
                "watermark_corner": "top-left",
                "watermark_opacity": "0.5",
                "burn_subtitles": "on",
            },
        )
        assert response.status_code == 302, _text(response.content.decode())
        batch = Batch.objects.get()
        assert response.url == f"/o/{member.organization.slug}/batches/{batch.pk}/"
        assert (batch.resolution, batch.quality) == ("720p", "high")
        assert batch.watermark.name.endswith(".png") and batch.watermark_corner == "top-left"
        assert batch.watermark_opacity == 0.5
        jobs = list(batch.jobs.order_by("id"))
        assert len(jobs) == 3 and all(j.burn_subtitles for j in jobs)
        assert jobs[0].audio_id == intro.pk
        scripts = sorted((s.text, s.voice, s.rate) for s in Script.objects.all())
        assert scripts == [
            ("Welcome, Shanghai dealers!", "espeak:en-us", 1.2),
            ("各位经销商朋友，大家好。", "espeak:en-us", 1.2),
        ]
        page = login(member).get(response.url).content.decode()
        assert "Welcome, Shanghai dealers!" in page and "English (US), male" in page
        assert "intro.wav" in page

    @pytest.mark.parametrize(
        ("scripts", "voice", "field_text"),
        [
            (
                ["   "],
                "espeak:en-us",
                "Choose or upload at least one audio track, or write a script.",
            ),
            (["A long sentence that goes on and on."], "espeak:en-us", "at most 20"),
            (["Hello."], "espeak:klingon", "Select a valid choice"),
        ],
        ids=["empty", "too-long", "unknown-voice"],
    )
    def test_a_bad_script_is_refused_and_nothing_is_made(
        self, login, member, project, avatar, media_dir, settings, scripts, voice, field_text
    ):
        settings.TTS_MAX_CHARS = 20
        client = login(member)
        before = every_row_count()
        with open(media_dir / "speech.wav", "rb") as audio:
            response = client.post(
                _new_batch_url(member, project),
                {
                    "engine": "warp",
                    "avatars": [avatar.pk],
                    "scripts": scripts,
                    "voice": voice,
                    "audio_files": [audio] if voice != "espeak:en-us" or scripts[0].strip() else [],
                },
            )
        assert response.status_code == 400
        page = response.content.decode()
        assert field_text in _text(page)
        assert 'role="alert"' in page
        assert every_row_count() == before  # not even the audio upload was stored

    def test_rate_out_of_range_shows_on_the_script(self, login, member, project, avatar):
        client = login(member)
        before = every_row_count()
        response = client.post(
            _new_batch_url(member, project),
            {"engine": "warp", "avatars": [avatar.pk], "scripts": ["Hi."], "rate": "5"},
        )
        assert response.status_code == 400
        assert "Script 1: The speaking rate must be between 0.5 and 2" in _text(
            response.content.decode()
        )
        assert 'id="scripts_error"' in response.content.decode()
        assert every_row_count() == before

    def test_a_bad_watermark_is_shown_on_its_field(self, login, member, project, avatar):
        client = login(member)
        before = every_row_count()
        response = client.post(
            _new_batch_url(member, project),
            {
                "engine": "warp",
                "avatars": [avatar.pk],
                "scripts": ["Hello there."],
                "watermark": SimpleUploadedFile("logo.png", b"not a png", "image/png"),
            },
        )
        assert response.status_code == 400
        assert 'id="id_watermark_error"' in response.content.decode()
        assert every_row_count() == before

    def test_srt_files_attach_to_the_audio_of_the_same_name(
        self, login, member, project, avatar, media_dir
    ):
        with open(media_dir / "speech.wav", "rb") as audio:
            response = login(member).post(
                _new_batch_url(member, project),
                {
                    "engine": "warp",
                    "avatars": [avatar.pk],
                    "audio_files": [
                        audio,
                        SimpleUploadedFile("SPEECH.srt", SRT),
                        SimpleUploadedFile("other.srt", SRT),
                    ],
                    "burn_subtitles": "on",
                },
            )
        assert response.status_code == 400  # other.srt matched nothing
        page = _text(response.content.decode())
        assert "“other.srt” matches no chosen audio track" in page
        speech = Asset.objects.get(kind="audio")
        assert speech.subtitles_name == "SPEECH.srt" and "Intro" in speech.subtitles
        assert not Batch.objects.exists()

    def test_the_subtitle_endpoint_answers_in_json(
        self, login, member, outsider, intro, upload, viewer
    ):
        slug = member.organization.slug
        bad = login(member).post(
            f"/o/{slug}/assets/{intro.pk}/subtitles/",
            {"file": SimpleUploadedFile("intro.srt", b"1\n00:00:09,000 --> 00:00:10,000\nLate\n")},
        )
        assert bad.status_code == 400 and "cannot be used as subtitles" in bad.json()["error"]
        good = login(member).post(
            f"/o/{slug}/assets/{intro.pk}/subtitles/",
            {"file": SimpleUploadedFile("intro.srt", SRT)},
        )
        assert good.status_code == 201 and "intro.wav" in good.json()["verdict"]
        other = login(outsider).post(
            f"/o/{outsider.organization.slug}/assets/{intro.pk}/subtitles/",
            {"file": SimpleUploadedFile("intro.srt", SRT)},
        )
        assert other.status_code == 404
        assert (
            login(viewer)
            .post(
                f"/o/{slug}/assets/{intro.pk}/subtitles/",
                {"file": SimpleUploadedFile("intro.srt", SRT)},
            )
            .status_code
            == 403
        )


class TestSheetImport:
    def _url(self, member, project, step=""):
        return f"/o/{member.organization.slug}/projects/{project.pk}/sheet/{step}"

    def test_the_project_page_links_to_it_and_the_template_downloads(self, login, member, project):
        page = login(member).get(f"/o/{member.organization.slug}/projects/{project.pk}/")
        assert self._url(member, project) in page.content.decode()
        assert "Import a sheet" in page.content.decode()
        template = login(member).get(f"/o/{member.organization.slug}/sheets/template.xlsx")
        assert template.status_code == 200
        assert template["Content-Type"].startswith("application/vnd.openxmlformats")
        assert len(read_sheet("template.xlsx", template.content)) == 2

    def test_three_bad_rows_of_twenty_are_shown_and_nothing_is_submitted(
        self, login, member, project, avatar, intro
    ):
        client = login(member)
        before = every_row_count()
        sheet = SimpleUploadedFile("dealers.xlsx", _xlsx(_twenty_rows(bad=True)))
        preview = client.post(self._url(member, project), {"file": sheet})
        assert preview.status_code == 200
        html = preview.content.decode()
        assert html.count('class="bad"') == 3 and html.count('class="ok"') == 17
        text = _text(html)
        assert "Row 6: There is no avatar video called “nobody.mp4” in the library." in text
        assert "Row 12: There is no voice “klingon”." in text
        assert "Row 18: Write yes or no in the subtitles column, not “maybe”." in text
        assert "3 rows have errors" in text
        assert "Submit 17 videos" not in text and "Submit 20 videos" not in text
        token = re.search(r'name="token" value="([^"]+)"', html)
        assert token is None  # no submit button while a row is bad
        assert every_row_count() == before

    def test_a_forced_submit_of_a_bad_sheet_creates_nothing(
        self, login, member, project, avatar, intro
    ):
        from django.core.cache import cache

        from jobs.views import SHEET_KEEP_S, _sheet_key

        # The confirm step trusts only the stored file: a bad one is refused whole.
        cache.set(
            _sheet_key(member, "tok"),
            {"name": "dealers.xlsx", "data": _xlsx(_twenty_rows(bad=True))},
            SHEET_KEEP_S,
        )
        client = login(member)
        before = every_row_count()
        answer = client.post(self._url(member, project, "submit/"), {"token": "tok"})
        assert answer.status_code == 400
        text = _text(answer.content.decode())
        assert "3 rows of the sheet have errors; nothing was submitted." in text
        for number in (6, 12, 18):
            assert f"Row {number}:" in text
        assert every_row_count() == before

    def test_a_good_sheet_is_previewed_then_submitted(
        self, login, member, outsider, project, avatar, intro
    ):
        client = login(member)
        sheet = SimpleUploadedFile("dealers.xlsx", _xlsx(_twenty_rows(bad=False)))
        preview = client.post(self._url(member, project), {"file": sheet})
        html = preview.content.decode()
        assert preview.status_code == 200 and "Submit 20 videos" in html
        assert "经销商_0.mp4" in html and "Hello dealer number 1." in html
        token = re.search(r'name="token" value="([^"]+)"', html)[1]
        # Someone else cannot use the token.
        other = login(outsider).post(
            f"/o/{outsider.organization.slug}/projects/{project.pk}/sheet/submit/",
            {"token": token},
        )
        assert other.status_code == 404
        assert not Batch.objects.exists()
        done = login(member).post(self._url(member, project, "submit/"), {"token": token})
        batch = Batch.objects.get()
        assert done.url == f"/o/{member.organization.slug}/batches/{batch.pk}/"
        assert batch.jobs.count() == 20
        # The token is spent: a second click submits nothing more.
        again = login(member).post(self._url(member, project, "submit/"), {"token": token})
        assert again.status_code == 400 and Batch.objects.count() == 1
        page = login(member).get(done.url).content.decode()
        assert "saved as 经销商_0.mp4" in page and "Hello dealer number 1." in page

    def test_the_batch_gets_its_name_tags_and_output_options(
        self, login, member, project, avatar, intro
    ):
        client = login(member)
        sheet = SimpleUploadedFile("dealers.xlsx", _xlsx(_twenty_rows(bad=False)))
        html = client.post(self._url(member, project), {"file": sheet}).content.decode()
        assert "Batch name, tags, engine and output options" in html
        assert 'name="resolution"' in html and 'name="burn_subtitles"' not in html
        token = re.search(r'name="token" value="([^"]+)"', html)[1]
        options = {"token": token, "name": "经销商 第二波", "tags": "north, promo",
                   "engine": "warp", "resolution": "720p", "quality": "high"}  # fmt: skip
        wrong = client.post(self._url(member, project, "submit/"), {**options, "quality": "8k"})
        assert wrong.status_code == 400 and not Batch.objects.exists()
        text = _text(wrong.content.decode())
        assert "Select a valid choice." in text and "Submit 20 videos" in text
        assert 'id="id_quality_error"' in wrong.content.decode()
        done = client.post(self._url(member, project, "submit/"), options)
        assert done.status_code == 302, done.content[:500]
        batch = Batch.objects.get()
        assert (batch.name, batch.resolution, batch.quality) == ("经销商 第二波", "720p", "high")
        # The batch's tags, and the rows' own.
        assert {"north", "promo"} < set(batch.tags.values_list("name", flat=True))
        assert batch.jobs.count() == 20

    def test_an_unreadable_file_is_refused_on_its_field(self, login, member, project):
        answer = login(member).post(
            self._url(member, project), {"file": SimpleUploadedFile("x.csv", b"who,what\n1,2\n")}
        )
        assert answer.status_code == 400
        assert "Unknown columns “who”, “what”." in _text(answer.content.decode())
        assert 'id="id_file_error"' in answer.content.decode()

    def test_viewers_cannot_import(self, login, viewer, project):
        assert login(viewer).get(self._url(viewer, project)).status_code == 403


class TestSubtitleRoutes:
    @pytest.fixture
    def output(self, member, make_outputs) -> Output:
        output = make_outputs(member, ["dealer"])[1][0]
        name = f"outputs/{member.organization.pk}/dealer.srt"
        storage.save_bytes(name, SRT)
        output.subtitles, output.subtitles_bytes = name, len(SRT)
        output.save(update_fields=["subtitles", "subtitles_bytes"])
        return output

    def test_vtt_and_srt_for_the_organization_only(self, login, member, outsider, output):
        slug = member.organization.slug
        vtt = login(member).get(f"/o/{slug}/outputs/{output.pk}/subtitles.vtt")
        assert vtt.status_code == 200 and vtt["Content-Type"].startswith("text/vtt")
        assert vtt.content.startswith(b"WEBVTT") and b"Intro" in vtt.content
        srt = login(member).get(f"/o/{slug}/outputs/{output.pk}/subtitles.srt")
        if srt.status_code == 302:  # media in S3: a presigned address on the (loopback) bucket
            location = srt["Location"]
            assert "dealer.srt" in urllib.parse.unquote(location)  # its Content-Disposition
            with urllib.request.urlopen(location, timeout=30) as fetched:  # noqa: S310 - loopback
                assert fetched.read() == SRT
        else:
            assert srt.status_code == 200 and b"".join(srt.streaming_content) == SRT
            assert "dealer.srt" in srt["Content-Disposition"]
        other = outsider.organization.slug
        for kind in ("vtt", "srt"):
            assert (
                login(outsider).get(f"/o/{other}/outputs/{output.pk}/subtitles.{kind}").status_code
                == 404
            )
            assert login(outsider).get(
                f"/o/{slug}/outputs/{output.pk}/subtitles.{kind}"
            ).status_code in (403, 404)

    def test_the_batch_page_gives_the_player_its_track_and_the_srt_link(
        self, login, member, output
    ):
        slug = member.organization.slug
        page = login(member).get(f"/o/{slug}/batches/{output.job.batch_id}/").content.decode()
        assert f'data-vtt="/o/{slug}/outputs/{output.pk}/subtitles.vtt"' in page
        assert f'href="/o/{slug}/outputs/{output.pk}/subtitles.srt"' in page
        status = login(member).get(f"/o/{slug}/batches/{output.job.batch_id}/status.json").json()
        card = status["jobs"][0]["output"]
        assert card["vtt"].endswith(f"/outputs/{output.pk}/subtitles.vtt")
        assert card["srt"].endswith(f"/outputs/{output.pk}/subtitles.srt")

    def test_an_output_without_subtitles_has_no_track(self, login, member, make_outputs):
        output = make_outputs(member, ["plain"])[1][0]
        slug = member.organization.slug
        assert login(member).get(f"/o/{slug}/outputs/{output.pk}/subtitles.vtt").status_code == 404
        page = login(member).get(f"/o/{slug}/batches/{output.job.batch_id}/").content.decode()
        assert "data-vtt" not in page
        assert RenderJob.objects.get(pk=output.job_id).script_id is None
