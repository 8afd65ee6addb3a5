"""The jobs pages, uploads, batches, render errors, API errors and scripts in Simplified Chinese
(and still in English): words from the catalogue, plurals by ngettext, status codes kept in
classes and data attributes, inference's errors worded by their code."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django_q import brokers

from accounts import services as account_services
from core.queue import QUEUE_DOWN
from inference.errors import MediaError
from inference.face.video import TOO_SMALL, TURNED_AWAY, FaceVerdict
from inference.media import probe
from jobs import services
from jobs.models import Asset, Batch, RenderJob
from jobs.reasons import (
    face_verdict_text,
    inference_error_text,
    inference_job_error,
    job_error,
    job_error_text,
)
from jobs.services import rendering
from tests.api.helpers import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese(member):
    """The member, reading in Chinese in Shanghai."""
    member.user.language = "zh-hans"
    member.user.time_zone = "Asia/Shanghai"
    member.user.save(update_fields=["language", "time_zone"])
    return member


@pytest.fixture
def api(client, member):
    """The member's API client (a real token)."""
    _, raw = account_services.api_token_create(
        membership=member, name="script", expires_in_days=None
    )
    return Api(client, raw, member.organization.slug)


@pytest.fixture
def project(member):
    return services.project_create(membership=member, name="春季经销商视频")


@pytest.fixture
def avatar(member, upload):
    return services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))


@pytest.fixture
def audio(member, upload):
    return services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))


def _batch(project, member, avatar, audio, statuses, name=""):
    """A batch whose jobs are in ``statuses`` (no queue, no render)."""
    batch = Batch.objects.create(project=project, name=name, engine="warp", created_by=member.user)
    for status in statuses:
        RenderJob.objects.create(
            batch=batch, avatar=avatar, audio=audio, engine="warp", status=status
        )
    return batch


class _DeadBroker:
    def ping(self):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


# --- pages -----------------------------------------------------------------------------------


def test_projects_page_in_chinese(login, chinese, project, outsider):
    services.project_create(membership=outsider, name="Rival secret project")
    page = login(chinese).get("/o/acme/projects/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "<h1>项目</h1>" in page and "<title>项目 · HeyGem Studio</title>" in page
    assert ">批量任务</th>" in page
    assert "<h2>新建项目</h2>" in page and ">创建项目</button>" in page
    assert '<label for="id_name">名称</label>' in page and ">说明</label>" in page
    assert "春季经销商视频" in page and "Rival secret project" not in page
    assert "New project" not in page and "Create project" not in page


def test_project_page_in_chinese(login, chinese, project, avatar, audio):
    _batch(project, chinese, avatar, audio, ["succeeded", "failed", "failed"], name="北京经销商")
    _batch(project, chinese, avatar, audio, ["queued"])
    page = login(chinese).get(f"/o/acme/projects/{project.pk}/").content.decode()
    assert ">新建批量任务</a>" in page and ">打包下载整个项目</a>" in page
    # Badge words translated; the codes stay in the classes.
    assert '<span class="badge partial">部分完成</span>' in page
    assert '<span class="badge queued">排队中</span>' in page
    assert '1 / 3 <small class="error">2 个失败</small>' in page
    assert "由 member@acme.test 提交" in page
    assert ">状态</th>" in page and ">提交时间</th>" in page
    assert "Submitted" not in page and "failed</small>" not in page


def test_batch_new_page_in_chinese(login, chinese, project, avatar, settings):
    settings.ASSET_MAX_BYTES = 200_000_000
    url = f"/o/acme/projects/{project.pk}/batches/new/"
    page = login(chinese).get(url).content.decode()
    assert "<title>新建批量任务 · HeyGem Studio</title>" in page
    assert "每个文件不超过 200 MB" in page
    assert "<legend>形象视频</legend>" in page and "<legend>音频</legend>" in page
    assert ">上传形象视频</label>" in page and ">上传音频（可一次选择多个）</label>" in page
    assert '<option value="warp" selected>Warp（无需模型权重）</option>' in page
    assert "根据语音响度驱动嘴唇和下颌动作" in page
    assert "用英文逗号分隔" in page and ">提交批量任务</button>" in page
    assert "1.0 秒</small>" in page  # the library's avatar: its duration in Chinese units
    assert "Submit batch" not in page and "Upload avatar videos" not in page


def test_batch_page_in_chinese_with_plurals_status_words_and_errors(
    login, chinese, project, avatar, audio
):
    batch = _batch(project, chinese, avatar, audio, ["queued", "running", "failed", "failed"])
    running, failed_now, failed_before = batch.jobs.order_by("id")[1:]
    RenderJob.objects.filter(pk=running.pk).update(frames_done=12, frames_total=25)
    RenderJob.objects.filter(pk=failed_now.pk).update(
        **job_error("time_limit", seconds=900).fields()
    )
    # A job that failed before codes were stored: its English text is what there is.
    failed_before.error = "Internal error: OSError: something old — gave up after 3 attempts."
    failed_before.save(update_fields=["error"])

    page = login(chinese).get(f"/o/acme/batches/{batch.pk}/").content.decode()
    assert f"<title>批量任务 {batch.pk} · HeyGem Studio</title>" in page
    assert '<span class="badge running" data-batch-status>渲染中</span>' in page
    assert "共 4 个视频 · 引擎 warp" in page
    assert "已结束 <span data-batch-finished>2</span> / 4 个。" in page
    assert '<span class="badge queued" data-status>排队中</span>' in page
    assert '<span class="badge failed" data-status>失败</span>' in page
    assert "<small data-frames>12 / 25 帧</small>" in page
    assert "已达到每个任务 900 秒的时间上限，渲染已停止。" in page
    assert "Internal error: OSError: something old" in page
    assert ">一键打包下载</a>" in page and 'aria-label="批量任务进度"' in page
    # Times: in the reader's zone, labelled by <time> (no hand-written "UTC").
    assert re.search(
        r'由 member@acme\.test 提交于 <time datetime="[^"]+Z" title="Asia/Shanghai">', page
    )
    assert "UTC" not in page.split("<footer")[0]

    status = login(chinese).get(f"/o/acme/batches/{batch.pk}/status.json").json()
    assert (status["status"], status["status_label"]) == ("running", "渲染中")
    words = {j["status"]: j["status_label"] for j in status["jobs"]}
    assert words == {"queued": "排队中", "running": "渲染中", "failed": "失败"}
    errors = [j["error"] for j in status["jobs"] if j["error"]]
    assert errors == [
        "已达到每个任务 900 秒的时间上限，渲染已停止。",
        "Internal error: OSError: something old — gave up after 3 attempts.",
    ]


def test_batch_page_in_english_keeps_the_words_and_plurals(login, member, project, avatar, audio):
    one = _batch(project, member, avatar, audio, ["succeeded"])
    page = login(member).get(f"/o/acme/batches/{one.pk}/").content.decode()
    assert '<span class="badge succeeded" data-batch-status>succeeded</span>' in page
    assert "1 video · engine warp" in page
    assert "<span data-batch-finished>1</span> of 1 finished." in page
    two = _batch(project, member, avatar, audio, ["queued", "canceled"])
    RenderJob.objects.filter(batch=two, status="canceled").update(
        **job_error("canceled_before_start").fields()
    )
    page = login(member).get(f"/o/acme/batches/{two.pk}/").content.decode()
    assert "2 videos · engine warp" in page and "Canceled before it started." in page
    assert '<span class="badge canceled" data-status>canceled</span>' in page


# --- uploads and batches refused --------------------------------------------------------------


def test_upload_refused_for_no_face_in_chinese_and_in_english(login, chinese, other_org, media_dir):
    with open(media_dir / "noface.mp4", "rb") as f:
        zh = login(chinese).post("/o/acme/assets/upload/", {"kind": "avatar", "file": f})
    assert zh.status_code == 400
    assert zh.json()["error"].startswith("“noface.mp4”的前 1 秒内未检测到人脸。")
    chinese.user.language = "en"
    chinese.user.save(update_fields=["language"])
    with open(media_dir / "noface.mp4", "rb") as f:
        en = login(chinese).post("/o/acme/assets/upload/", {"kind": "avatar", "file": f})
    assert en.json()["error"].startswith("No face was found in the first 1 second of “noface.mp4”.")
    assert not Asset.objects.exists()


def test_upload_accepted_says_so_in_the_page_language(login, chinese, media_dir):
    with open(media_dir / "speech.wav", "rb") as f:
        response = login(chinese).post("/o/acme/assets/upload/", {"kind": "audio", "file": f})
    assert response.status_code == 201 and response.json()["verdict"] == "已通过"


def test_a_file_that_is_not_media_is_refused_in_chinese(member, upload, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("这不是视频，只是一段文字。\n" * 50, encoding="utf-8")
    with pytest.raises(MediaError) as raised:
        probe(notes, verify=True)
    assert raised.value.code == "unreadable"  # inference's code: no Django there
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        services.asset_create(
            membership=member,
            kind="avatar",
            upload=services.UploadedMedia(notes, "宣传片.mp4"),
        )
    assert refused.value.messages == [
        "“宣传片.mp4”：该文件不是可读取的音频或视频文件（可能已损坏，或是改了扩展名的其他文件）。"
        "请上传视频（MP4、MOV、MKV、WebM）或音频文件（WAV、MP3、M4A、AAC、OGG、FLAC）。"
    ]
    assert not Asset.objects.exists()


def test_face_verdicts_in_chinese():
    small = FaceVerdict(
        TOO_SMALL, seconds=3.0, frame_width=1920, frame_height=1080, face_height=90.0
    )
    turned = dataclasses.replace(small, problem=TURNED_AWAY, face_height=400.0, yaw=-52.4)
    with translation.override("zh-hans"):
        assert face_verdict_text(small, "远景.mp4") == (
            "“远景.mp4”中的人脸太小：高约 90 像素，占画面高度（1080 像素）的 8%。此视频中的人脸"
            "至少需要 130 像素高（画面高度的 12%，且不少于 80 像素）。请上传人脸在画面中占比更大的"
            "近景视频。"
        )
        assert face_verdict_text(turned, "侧脸.mp4") == (
            "“侧脸.mp4”中的人脸没有正对镜头（侧转约 52°，最多允许 35°）。请上传人物直视镜头的视频。"
        )
    assert "too small: about 90 px tall, 8% of the 1080 px frame height" in face_verdict_text(
        small, "far.mp4"
    )


def test_batch_form_with_nothing_chosen_is_refused_in_chinese(login, chinese, project):
    response = login(chinese).post(
        f"/o/acme/projects/{project.pk}/batches/new/", {"engine": "warp", "tags": ""}
    )
    assert response.status_code == 400
    page = response.content.decode()
    # The refusal sits on the avatars' fieldset, which names it (no longer among the files).
    assert 'id="avatars_error"><p>请至少选择或上传一个形象视频。</p>' in page
    assert not Batch.objects.exists()


def test_batch_refused_when_the_queue_is_down_in_chinese(
    member, project, avatar, audio, monkeypatch
):
    monkeypatch.setattr(brokers, "get_broker", lambda *a, **k: _DeadBroker())
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        services.batch_submit(membership=member, project=project, avatars=[avatar], audios=[audio])
    with translation.override("zh-hans"):
        assert refused.value.messages == [str(QUEUE_DOWN)]
    assert "无法连接任务队列" in refused.value.messages[0]
    assert not Batch.objects.exists()


def test_too_many_videos_is_one_plural_sentence(member, project, avatar, audio, settings):
    settings.BATCH_MAX_JOBS = 0
    with pytest.raises(ValidationError) as one:
        services.batch_submit(membership=member, project=project, avatars=[avatar], audios=[audio])
    assert "makes 1 video here (1 × 1); one batch may hold at most 0." in one.value.messages[0]
    with translation.override("zh-hans"), pytest.raises(ValidationError) as zh:
        services.batch_submit(membership=member, project=project, avatars=[avatar], audios=[audio])
    assert "将生成 1 个视频（1 × 1），而一个批量任务最多包含 0 个。" in zh.value.messages[0]


# --- render errors, notifications -----------------------------------------------------------


def test_a_render_refused_by_inference_is_worded_for_each_reader(
    login, chinese, make_member, org, project, avatar, audio
):
    batch = _batch(project, chinese, avatar, audio, ["running"])
    job = batch.jobs.get()
    exc = MediaError(
        "The file is truncated (it ends too early). Upload the complete file again.",
        code="truncated",
    )
    rendering._finish(job.pk, RenderJob.Status.FAILED, inference_job_error(exc))
    job.refresh_from_db()
    assert job.error == str(exc) and job.error_code == "truncated"  # English kept for webhooks
    zh = login(chinese).get(f"/o/acme/batches/{batch.pk}/").content.decode()
    assert "文件被截断（提前结束）。请重新上传完整的文件。" in zh
    english = make_member(org, email="second@acme.test")
    en = login(english).get(f"/o/acme/batches/{batch.pk}/").content.decode()
    assert "The file is truncated (it ends too early)." in en
    with translation.override("zh-hans"):
        # A code this version has no words for keeps the library's English, introduced.
        new = MediaError("The avatar is upside down.", code="upside_down")
        assert inference_error_text(new) == "素材文件无法使用：The avatar is upside down."
        stored = inference_job_error(new)
        assert job_error_text(stored.code, stored.params) == "渲染失败：The avatar is upside down."


def test_the_completion_notification_is_stored_in_the_submitters_language(
    chinese, member, project, avatar, audio
):
    batch = _batch(project, chinese, avatar, audio, ["succeeded", "failed"])
    assert services.batch_check_completed(batch_id=batch.pk)
    note = chinese.user.notifications.get()
    assert note.message == (
        f"批量任务 {batch.pk}（项目“春季经销商视频”）已结束："
        "2 个视频中已渲染 1 个，1 个失败或已取消。"
    )


# --- API and scripts -------------------------------------------------------------------------


def test_api_errors_follow_accept_language(api, outsider, project, audio, upload):
    body = {"project": project.pk, "avatars": [], "audios": [audio.pk]}
    zh = api.post("batch-list", data=body, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.status_code == 400
    assert zh.json()["error"]["fields"]["avatars"] == ["请至少选择或上传一个形象视频。"]
    en = api.post("batch-list", data=body, headers={"Accept-Language": "en"})
    assert en.json()["error"]["fields"]["avatars"] == [
        "Choose or upload at least one avatar video."
    ]
    # Another organization's avatar is missing here, said in the caller's language.
    rival = services.asset_create(membership=outsider, kind="avatar", upload=upload("face.mp4"))
    missing = api.post(
        "batch-list",
        data={"project": project.pk, "avatars": [rival.pk], "audios": [audio.pk]},
        headers={"Accept-Language": "zh-CN"},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "所选形象视频素材中有一个不存在。"
    assert not Batch.objects.exists()


def test_api_job_error_in_the_language_of_the_call(api, member, project, avatar, audio):
    batch = _batch(project, member, avatar, audio, ["failed"])
    RenderJob.objects.filter(batch=batch).update(**job_error("disk_full").fields())
    job = batch.jobs.get()
    zh = api.get("job-detail", job.pk, headers={"Accept-Language": "zh-CN"}).json()
    assert zh["error"].startswith("渲染节点或媒体存储的磁盘已满")
    en = api.get("job-detail", job.pk, headers={"Accept-Language": "en"}).json()
    assert en["error"].startswith("The disk of the render worker or of the media storage is full")


def test_the_script_catalogue_has_the_jobs_words(client):
    js = client.get("/jsi18n/zh-hans.js").content.decode("utf-8")
    catalog = json.loads(re.search(r"const newcatalog = (\{.*?\});", js, re.S).group(1))
    assert catalog["Uploading %(num)s file…"] == ["正在上传 %(num)s 个文件…"]
    assert catalog["%(done)s / %(total)s frame"] == ["%(done)s / %(total)s 帧"]
    assert catalog["upload verdict\x04accepted"] == "已通过"
    assert catalog["Play %(name)s"] == "播放 %(name)s"
    assert (
        catalog["the upload was interrupted; try this file again"] == "上传已中断，请重新上传此文件"
    )
    # English is the source: no entries, the scripts' own words are shown.
    assert "Uploading" not in client.get("/jsi18n/en.js").content.decode("utf-8")
