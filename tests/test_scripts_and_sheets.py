"""Scripts as a source and batch sheets: voices, scripts refused before anything is made,
real espeak-ng synthesis (English, and Mandarin through cmn-latn-pinyin) on the render queue
through real warp renders, once per script however many avatars speak it; sheets checked row
by row and refused with every row's error (nothing made) or submitted as one batch; the bundle
of a sheet's videos with their subtitles and output names, collision-free."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils import translation
from openpyxl import Workbook

from accounts import services as account_services
from accounts.audit import verify_chain
from accounts.models import AuditEvent
from core.storage import media as storage
from core.storage.bundles import bundle_store
from exports import services as export_services
from exports.scope import scope_from_params
from inference.subtitles import parse_srt
from jobs import services
from jobs.models import Asset, Batch, RenderJob, Script
from jobs.sheets import read_sheet
from tests.api.helpers import Api, assert_error
from tests.test_tts import _piper_config, tiny_piper_onnx

pytestmark = pytest.mark.django_db


def bundle_file(export, settings) -> Path:
    """The built bundle as a local file: where it was written, or a copy out of the bucket."""
    if export.storage == "s3":
        target = Path(settings.EXPORT_ROOT).parent / "from-bucket" / export.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        bundle_store("s3").download(export.storage_key, target)
        return target
    return Path(settings.EXPORT_ROOT) / export.storage_key


CHINESE = "各位经销商朋友，大家好。欢迎来到北京！"
ENGLISH = "Welcome to our Shanghai dealers. See you soon!"
SRT = b"1\n00:00:00,000 --> 00:00:00,900\nIntro\n"


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
    """An uploaded audio track with an SRT attached."""
    audio = services.asset_create(
        membership=member, kind="audio", upload=upload("speech.wav", "intro.wav")
    )
    return services.asset_attach_subtitles(membership=member, asset=audio, data=SRT)


@pytest.fixture
def api(client, member) -> Api:
    _, raw = account_services.api_token_create(membership=member, name="t", expires_in_days=None)
    return Api(client, raw, member.organization.slug)


def every_row_count() -> dict[str, int]:
    """Rows of every model of every app, and the stored files: what "nothing made" compares."""
    counts = {m._meta.label: m._default_manager.count() for m in apps.get_models()}
    counts["stored files"] = len(storage.list_names())
    return counts


def _csv(rows: list[list[str]], header=("avatar", "audio", "script", "voice", "output name",
                                        "tags", "subtitles")) -> bytes:  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["形象视频", "音频", "文案", "音色", "输出名称", "标签", "字幕"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _twenty_rows(bad: bool) -> list[list[str]]:
    """20 rows: Chinese and English scripts, audio rows; with ``bad``, three of them wrong
    (sheet rows 6, 12 and 18: an unknown avatar, an unknown voice, subtitles "maybe")."""
    rows = []
    for i in range(20):
        if i % 5 == 4:
            rows.append(["presenter.mp4", "intro.wav", "", "", f"intro_{i}", "audio", "yes"])
        elif i % 2:
            rows.append(
                ["presenter", "", f"Hello dealer number {i}. Welcome!", "en-us", f"dealer_{i}",
                 "english", "no"]
            )  # fmt: skip
        else:
            rows.append(
                ["presenter.mp4", "", f"经销商{i}号，大家好。", "espeak:zh-cn", f"经销商_{i}",
                 "中文", "是"]
            )  # fmt: skip
    if bad:
        rows[4][0] = "nobody.mp4"  # sheet row 6
        rows[10][3] = "klingon"  # sheet row 12
        rows[16][6] = "maybe"  # sheet row 18
    return rows


def _render_all(callbacks, submit) -> Batch:
    with callbacks(execute=True):
        batch = submit()
    for job in batch.jobs.all():
        assert job.status == RenderJob.Status.SUCCEEDED, (job.pk, job.error)
    return batch


def _bundle(member, batch, callbacks, settings) -> tuple[list[str], list[dict], zipfile.ZipFile]:
    params = QueryDict(mutable=True)
    params["batch"] = str(batch.pk)
    with callbacks(execute=True):
        export, _ = export_services.export_request(
            membership=member, scope=scope_from_params(member, params)
        )
    export.refresh_from_db()
    assert export.status == "ready", export.error
    archive = zipfile.ZipFile(bundle_file(export, settings))
    text = archive.read("manifest.csv").decode("utf-8-sig")
    return archive.namelist(), list(csv.DictReader(io.StringIO(text))), archive


# --- voices and scripts -------------------------------------------------------------------


class TestVoices:
    def test_espeak_voices_default_first_named_in_the_readers_language(self, member):
        voices = services.voices_for(member.organization)
        assert voices[0].id == "espeak:zh-cn" and voices[0].default
        ids = {v.id for v in voices}
        assert {"espeak:zh-cn", "espeak:en-us", "espeak:en-gb"} <= ids
        with translation.override("zh-hans"):
            names = {v.id: v.name for v in services.voices_for(member.organization)}
        assert names["espeak:zh-cn"] == "普通话，男声（espeak-ng）"

    def test_the_api_lists_them(self, api):
        answer = api.get("voice-list")
        assert answer.status_code == 200
        body = answer.json()
        assert body["default"] == "espeak:zh-cn" and body["results"][0]["id"] == "espeak:zh-cn"
        assert {"en-US", "zh-CN"} <= {v["language"] for v in body["results"]}


class TestPiperAndChecks:
    @pytest.fixture
    def piper_folder(self, tmp_path, settings) -> Path:
        """The operator's voices: a tiny real Piper model (built offline, tests/test_tts.py)
        and a model without its configuration."""
        folder = tmp_path / "voices"
        folder.mkdir()
        (folder / "en_US-tiny-test.onnx").write_bytes(tiny_piper_onnx())
        (folder / "en_US-tiny-test.onnx.json").write_text(json.dumps(_piper_config()))
        (folder / "lonely.onnx").write_bytes(tiny_piper_onnx())
        settings.TTS_PIPER_VOICES_DIR = str(folder)
        return folder

    def test_a_piper_voice_speaks_a_script_through_a_render(
        self, member, project, avatar, piper_folder, django_capture_on_commit_callbacks
    ):
        voices = {v.id: v for v in services.voices_for(member.organization)}
        tiny = voices["piper:en_US-tiny-test"]
        assert tiny.engine == "piper" and tiny.language == "en-US" and not tiny.supports_pitch
        with pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                scripts=[services.ScriptSpec("Hello.", voice=tiny.id, pitch=1.2)],
            )
        assert refused.value.message_dict["scripts"] == [
            "Script 1: The voice piper:en_US-tiny-test has no pitch setting; leave it at 1."
        ]
        batch = _render_all(
            django_capture_on_commit_callbacks,
            lambda: services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                scripts=[services.ScriptSpec("Hello there. Welcome!", voice=tiny.id, rate=1.5)],
            ),
        )
        spoken = batch.jobs.select_related("script__audio").get().script.audio
        assert spoken.voice == tiny.id and len(spoken.cues) == 2

    def test_operators_are_told_about_missing_voices(self, settings, piper_folder):
        from django.core.checks import run_checks

        found = {m.id: m.msg for m in run_checks(tags=["heygem"]) if m.id.startswith("heygem.W")}
        assert "lonely.onnx" in found["heygem.W002"] and "heygem.W001" not in found
        settings.TTS_ESPEAK_BINARY = str(piper_folder / "no-such-espeak")
        settings.TTS_PIPER_VOICES_DIR = ""
        found = {m.id: m.msg for m in run_checks(tags=["heygem"]) if m.id.startswith("heygem.W")}
        assert set(found) == {"heygem.W001"} and "scripts cannot be spoken" in found["heygem.W001"]
        assert services.voices_for() == []


class TestScriptRefusals:
    def test_every_bad_script_is_named_and_nothing_is_made(self, member, project, avatar, settings):
        settings.TTS_MAX_CHARS = 30
        before = every_row_count()
        scripts = [
            services.ScriptSpec("   "),
            services.ScriptSpec("Hello.", voice="espeak:klingon"),
            services.ScriptSpec("Hello.", rate=3),
            services.ScriptSpec("A long sentence that goes on and on and on."),
            services.ScriptSpec("This one is fine."),
        ]
        with pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member, project=project, avatars=[avatar], scripts=scripts
            )
        messages = refused.value.message_dict["scripts"]
        assert messages[0].startswith("Script 1: The script is empty")
        assert messages[1].startswith("Script 2: There is no voice “espeak:klingon”")
        assert "espeak:zh-cn" in messages[1]  # the voices to choose from
        assert messages[2].startswith("Script 3: The speaking rate must be between 0.5 and 2")
        assert messages[3].startswith("Script 4: The script has 43 characters; at most 30")
        assert len(messages) == 4
        assert every_row_count() == before

    def test_refusals_in_chinese(self, member, project, avatar):
        with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
            services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                scripts=[services.ScriptSpec("", voice="nope")],
            )
        messages = refused.value.message_dict["scripts"]
        assert messages[0] == "第 1 条文案：文案为空：请写下数字人要说的话。"
        assert messages[1].startswith("第 1 条文案：本系统没有音色“nope”。")

    def test_the_api_refuses_before_any_upload(self, api, member, project, avatar):
        before = every_row_count()
        answer = api.post(
            "batch-list",
            data={"project": project.pk, "avatars": [avatar.pk], "scripts": [{"text": ""}]},
        )
        error = assert_error(answer, 400, "invalid")
        assert error["fields"]["scripts"][0].startswith("Script 1: The script is empty")
        assert every_row_count() == before


class TestSynthesisAndRender:
    def test_english_script_is_spoken_once_for_two_avatars(
        self, member, project, avatar, upload, django_capture_on_commit_callbacks
    ):
        second = services.asset_create(
            membership=member, kind="avatar", upload=upload("face.mp4", "second.mp4", variant=1)
        )
        batch = _render_all(
            django_capture_on_commit_callbacks,
            lambda: services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar, second],
                scripts=[services.ScriptSpec(ENGLISH, voice="espeak:en-us")],
            ),
        )
        jobs = list(batch.jobs.select_related("script__audio", "output"))
        assert len(jobs) == 2 and jobs[0].script_id == jobs[1].script_id
        assert Script.objects.count() == 1
        spoken = Script.objects.get().audio
        assert Asset.objects.filter(kind="audio").count() == 1  # one synthesis, one asset
        assert AuditEvent.objects.filter(action="asset.synthesized").count() == 1
        assert spoken.text == ENGLISH and spoken.voice == "espeak:en-us"
        submitted = AuditEvent.objects.get(action="batch.submitted")
        assert submitted.detail["scripts"] == 1 and submitted.file_count == 2
        synthesized = AuditEvent.objects.get(action="asset.synthesized")
        assert synthesized.actor is None and synthesized.target_id == str(spoken.pk)
        assert (
            synthesized.detail["sentences"] == 2 and synthesized.detail["voice"] == "espeak:en-us"
        )
        assert verify_chain(member.organization).ok
        assert [c["text"] for c in spoken.cues] == [
            "Welcome to our Shanghai dealers.",
            "See you soon!",
        ]
        assert spoken.original_name == "Welcome to our Shanghai dealers. See you.wav"
        assert storage.exists(spoken.file.name) and spoken.duration > 1
        for job in jobs:
            output = job.output
            assert (
                output.name
                == f"{Path(job.avatar.original_name).stem}__{spoken.original_name[:-4]}.mp4"
            )
            assert abs(output.duration - spoken.duration) < 0.1
            cues = parse_srt(storage.read_bytes(output.subtitles.name))
            assert [c.text for c in cues] == ["Welcome to our Shanghai dealers.", "See you soon!"]
            assert cues[0].start == pytest.approx(spoken.cues[0]["start"], abs=0.002)

    def test_mandarin_script_with_burned_subtitles(
        self, member, project, avatar, django_capture_on_commit_callbacks
    ):
        batch = _render_all(
            django_capture_on_commit_callbacks,
            lambda: services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                scripts=[services.ScriptSpec(CHINESE)],
                burn_subtitles=True,
            ),
        )
        job = batch.jobs.select_related("script__audio", "output").get()
        spoken = job.script.audio
        assert spoken.voice == "espeak:zh-cn"  # the default voice
        assert [c["text"] for c in spoken.cues] == ["各位经销商朋友，大家好。", "欢迎来到北京！"]
        assert all(c["end"] > c["start"] for c in spoken.cues)
        assert spoken.cues[1]["start"] > spoken.cues[0]["end"]  # the pause between them
        cues = parse_srt(storage.read_bytes(job.output.subtitles.name))
        assert [c.text for c in cues] == ["各位经销商朋友，大家好。", "欢迎来到北京！"]
        assert job.burn_subtitles

    def test_a_voice_gone_since_submission_fails_the_job_with_its_code(
        self, member, project, avatar, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.batch_submit(
                membership=member,
                project=project,
                avatars=[avatar],
                scripts=[services.ScriptSpec("Hello there.", voice="espeak:en-gb")],
            )
            # The operator removed the voice before a worker took the job.
            Script.objects.update(voice="espeak:gone")
        job = batch.jobs.get()
        assert job.status == RenderJob.Status.FAILED and job.attempts == 1
        assert job.error_code == "unknown_voice" and job.error_params["voice"] == "espeak:gone"
        assert job.error_text == "There is no voice “espeak:gone” on this installation."
        with translation.override("zh-hans"):
            assert job.error_text == "本系统没有音色“espeak:gone”。"
        assert Script.objects.get().audio is None
        assert not Asset.objects.filter(kind="audio").exists()
        assert storage.list_names("outputs/") == []

    def test_the_api_submits_scripts_and_jobs_one_by_one(self, api, project, avatar, intro):
        answer = api.post(
            "batch-list",
            data={
                "project": project.pk,
                "avatars": [avatar.pk],
                "scripts": [{"text": ENGLISH, "voice": "espeak:en-us", "rate": 1.2}],
                "jobs": [
                    {
                        "avatar": avatar.pk,
                        "audio": intro.pk,
                        "output_name": "intro/一",
                        "burn_subtitles": True,
                    },
                    {"avatar": avatar.pk, "script": {"text": CHINESE}, "output_name": "北京"},
                ],
                "resolution": "720p",
                "quality": "high",
            },
        )
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert (body["resolution"], body["quality"], body["has_watermark"]) == (
            "720p",
            "high",
            False,
        )
        jobs = body["jobs"]
        assert [j["output_name"] for j in jobs] == ["", "intro_一", "北京"]
        assert jobs[0]["script"]["voice"] == "espeak:en-us" and jobs[0]["script"]["rate"] == 1.2
        assert jobs[0]["audio"] is None and jobs[0]["audio_name"] is None
        assert jobs[1]["audio"] == intro.pk and jobs[1]["burn_subtitles"]
        assert jobs[2]["script"]["voice"] == "espeak:zh-cn" and jobs[2]["script"]["audio"] is None
        assert Script.objects.count() == 2


# --- sheets -------------------------------------------------------------------------------


class TestSheetCheck:
    def test_verdicts_name_what_each_row_makes(self, member, avatar, intro):
        rows = read_sheet(
            "s.csv",
            _csv(
                [
                    ["presenter", "", CHINESE, "", "经销商/北京:一.mp4", "北京, vip", "yes"],
                    [f"#{avatar.pk}", "intro", "", "", "", "", "y"],
                    [
                        "presenter.mp4",
                        "",
                        ENGLISH,
                        "English (US), female (espeak-ng)",
                        "CON",
                        "",
                        "",
                    ],
                ]
            ),
        )
        first, second, third = services.sheet_check(membership=member, rows=rows)
        assert all(v.ok for v in (first, second, third)), [v.errors for v in (first, second, third)]
        assert first.avatar == avatar and first.script.text == CHINESE
        assert first.voice.id == "espeak:zh-cn" and first.output_name == "经销商_北京_一"
        assert first.tags == ["北京", "vip"] and first.subtitles
        assert second.avatar == avatar and second.audio == intro and second.subtitles
        assert third.voice.id == "espeak:en-us-f" and third.output_name == "_CON"
        assert not third.subtitles

    def test_each_problem_is_named_in_its_row(self, member, avatar, upload, intro):
        twin = [
            services.asset_create(
                membership=member, kind="avatar", upload=upload("face.mp4", "twin.mp4", variant=i)
            )
            for i in range(2)
        ]
        plain = services.asset_create(
            membership=member, kind="audio", upload=upload("speech.wav", "plain.wav", variant=1)
        )
        rows = read_sheet(
            "s.csv",
            _csv(
                [
                    ["twin.mp4", "", "Hi.", "", "", "", ""],
                    ["", "", "Hi.", "", "", "", ""],
                    ["presenter", "intro.wav", "Hi.", "", "", "", ""],
                    ["presenter", "", "", "", "", "", ""],
                    ["presenter", "plain.wav", "", "", "", "", "yes"],
                    ["presenter", "", "Hi.", "", "...", "bad/tag", "no"],
                    [f"#{twin[1].pk}", "", "Hi.", "", "", "", ""],
                ]
            ),
        )
        verdicts = services.sheet_check(membership=member, rows=rows)
        errors = {v.number: v.errors for v in verdicts}
        ids = f"#{twin[0].pk}, #{twin[1].pk}"
        assert errors[2] == [
            f"Several avatar videos in the library are called “twin.mp4” ({ids}): write the "
            f"one you mean as its number, for example #{twin[0].pk}."
        ]
        assert errors[3] == ["The avatar is missing: write the name of an avatar video."]
        assert errors[4] == ["Give an audio file or a script, not both."]
        assert errors[5] == ["Give an audio file or a script: the row has neither."]
        assert errors[6] == [
            "“plain.wav” has no subtitles to burn in: attach an SRT file to it first, or "
            "write no in the subtitles column."
        ]
        assert errors[7][0] == "The output name “...” has no characters a file name can use."
        assert "not a valid tag" in errors[7][1]
        assert errors[8] == []  # a shared name, written as its number
        assert plain.pk

    def test_the_api_checks_without_submitting(self, api, avatar):
        before = every_row_count()
        sheet = SimpleUploadedFile("s.csv", _csv([["presenter", "", "Hi.", "nope", "", "", ""]]))
        answer = api.call("POST", api.url("sheet-check"), {"file": sheet}, multipart=True)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert body["ok"] is False and body["rows"][0]["row"] == 2
        assert body["rows"][0]["avatar"] == {"id": avatar.pk, "name": "presenter.mp4"}
        assert body["rows"][0]["errors"][0].startswith("There is no voice “nope”")
        assert every_row_count() == before


class TestSheetSubmit:
    def test_twenty_rows_with_three_bad_ones_are_refused_row_by_row(
        self, member, project, avatar, intro
    ):
        rows = read_sheet("dealers.csv", _csv(_twenty_rows(bad=True)))
        assert len(rows) == 20
        before = every_row_count()
        with pytest.raises(services.SheetRefused) as refused:
            services.sheet_submit(membership=member, project=project, rows=rows)
        errors = refused.value.message_dict
        assert set(errors) == {"row_6", "row_12", "row_18"}
        assert errors["row_6"] == ["There is no avatar video called “nobody.mp4” in the library."]
        assert errors["row_12"][0].startswith("There is no voice “klingon”. Choose one of:")
        assert errors["row_18"] == ["Write yes or no in the subtitles column, not “maybe”."]
        assert refused.value.summary.startswith("3 rows of the sheet have errors")
        assert refused.value.row_messages()[0].startswith("Row 6: There is no avatar video")
        assert every_row_count() == before

    def test_the_api_answers_400_with_every_row_error_in_chinese(self, api, project, avatar, intro):
        before = every_row_count()
        sheet = SimpleUploadedFile("dealers.xlsx", _xlsx(_twenty_rows(bad=True)))
        answer = api.call(
            "POST",
            api.url("sheet-submit"),
            {"project": project.pk, "file": sheet},
            multipart=True,
            headers={"Accept-Language": "zh-hans"},
        )
        error = assert_error(answer, 400, "sheet_invalid")
        assert set(error["fields"]) == {"row_6", "row_12", "row_18"}
        assert error["message"].startswith("表格中有 3 行有错误")
        assert error["fields"]["row_6"] == ["素材库中没有名为“nobody.mp4”的形象视频。"]
        assert every_row_count() == before

    def test_a_good_sheet_makes_the_batch(self, api, member, project, avatar, intro):
        sheet = SimpleUploadedFile("dealers.xlsx", _xlsx(_twenty_rows(bad=False)))
        answer = api.call(
            "POST",
            api.url("sheet-submit"),
            {"project": project.pk, "file": sheet, "tags": ["wave-2"], "resolution": "720p"},
            multipart=True,
        )
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert body["counts"]["total"] == 20 and body["resolution"] == "720p"
        assert sorted(body["tags"]) == ["audio", "english", "wave-2", "中文"]
        batch = Batch.objects.get(pk=body["id"])
        jobs = list(batch.jobs.order_by("id"))
        assert [j.output_name for j in jobs][:3] == ["经销商_0", "dealer_1", "经销商_2"]
        assert sum(j.script_id is not None for j in jobs) == 16
        assert sum(j.audio_id == intro.pk for j in jobs) == 4
        assert [j.burn_subtitles for j in jobs][:5] == [True, False, True, False, True]
        assert Script.objects.count() == 16  # every text differs
        event = AuditEvent.objects.get(action="batch.submitted")
        assert event.detail["sheet"] == {"file": "dealers.xlsx", "rows": 20}
        assert event.file_count == 20

    def test_the_template_reads_back(self, api):
        answer = api.get("sheet-template")
        assert answer.status_code == 200
        assert answer["Content-Type"].startswith("application/vnd.openxmlformats")
        rows = read_sheet("template.xlsx", answer.content)
        assert [r.avatar for r in rows] == ["presenter.mp4", "presenter.mp4"]
        assert rows[0].output_name == "经销商_北京" and rows[0].wants_subtitles

    def test_rendered_sheet_bundle_holds_videos_subtitles_and_names(
        self, member, project, avatar, intro, settings, django_capture_on_commit_callbacks
    ):
        rows = read_sheet(
            "dealers.xlsx",
            _xlsx(
                [
                    ["presenter.mp4", "", CHINESE, "espeak:zh-cn", "经销商_北京", "北京", "是"],
                    ["presenter.mp4", "", CHINESE, "zh-cn", "经销商_北京", "北京", "否"],
                    ["presenter", "", ENGLISH, "en-us", "dealer/shanghai", "shanghai", "no"],
                    ["presenter.mp4", "intro.wav", "", "", "", "", "yes"],
                ]
            ),
        )
        batch = _render_all(
            django_capture_on_commit_callbacks,
            lambda: services.sheet_submit(
                membership=member, project=project, rows=rows, filename="dealers.xlsx"
            ),
        )
        # The two rows speaking the same Chinese text with the same voice share one synthesis.
        assert Script.objects.count() == 2
        assert AuditEvent.objects.filter(action="asset.synthesized").count() == 2
        names, manifest, archive = _bundle(
            member, batch, django_capture_on_commit_callbacks, settings
        )
        assert names == [
            "manifest.csv",
            "经销商_北京.mp4", "经销商_北京.srt",
            "经销商_北京 (2).mp4", "经销商_北京 (2).srt",
            "dealer_shanghai.mp4", "dealer_shanghai.srt",
            "presenter__intro.mp4", "presenter__intro.srt",
        ]  # fmt: skip
        assert [row["path"] for row in manifest] == names[1:]
        by_path = {row["path"]: row for row in manifest}
        for name in names[1:]:
            data = archive.read(name)
            assert by_path[name]["bytes"] == str(len(data))
        srt = archive.read("经销商_北京.srt").decode()
        assert [c.text for c in parse_srt(srt)] == ["各位经销商朋友，大家好。", "欢迎来到北京！"]
        assert archive.read("presenter__intro.srt").decode().endswith("Intro\n")
        assert by_path["dealer_shanghai.srt"]["source_audio"].startswith("Welcome to our")
        archive.close()
