"""Simplified Chinese and time zones for bundles, the site's error pages, the API's errors,
manifest.csv and the command-line client (English stays the default)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
import zoneinfo
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.http import QueryDict
from django.template.loader import render_to_string
from django.utils import translation

from accounts.preferences import local_iso
from accounts.services import api_token_create
from exports import budgets, services
from exports.models import Export
from exports.scope import scope_from_params
from heygem_client import i18n as client_i18n
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
HAN = re.compile(r"[\u4e00-\u9fff]")


def _speaks_chinese(user, zone: str = "Asia/Shanghai") -> None:
    user.language, user.time_zone = "zh-hans", zone
    user.save(update_fields=["language", "time_zone"])


def _scope(membership, **params):
    q = QueryDict(mutable=True)
    for key, value in params.items():
        q.setlist(key, value if isinstance(value, list) else [str(value)])
    return scope_from_params(membership, q)


def _build(membership, capture, **params) -> Export:
    with capture(execute=True):
        export, created = services.export_request(
            membership=membership, scope=_scope(membership, **params)
        )
    assert created
    export.refresh_from_db()
    return export


def _manifest_bytes(export: Export) -> bytes:
    path = Path(django_settings.EXPORT_ROOT) / export.storage_key
    if export.storage == "s3":
        from core.storage.bundles import bundle_store

        path = Path(django_settings.EXPORT_ROOT).parent / "from-bucket" / export.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        bundle_store("s3").download(export.storage_key, path)
    with zipfile.ZipFile(path) as bundle:
        assert bundle.namelist()[0] == "manifest.csv"
        return bundle.read("manifest.csv")


# --- the bundle pages ---------------------------------------------------------------------------


class TestBundlePagesInChinese:
    def test_confirm_list_and_detail(
        self, login, member, outsider, make_outputs, django_capture_on_commit_callbacks
    ):
        _speaks_chinese(member.user)
        batch, _ = make_outputs(member, ["第一条.mp4", "第二条.mp4"], batch_name="第一批")
        client = login(member)
        slug = member.organization.slug

        confirm = client.get(f"/o/{slug}/exports/new/", {"batch": batch.pk}).content.decode()
        assert '<html lang="zh-hans">' in confirm
        assert "打包成一个 ZIP 下载" in confirm and "打包 2 个视频" in confirm
        assert "<span data-count>2</span> 个视频，共 <span data-size>" in confirm
        assert "Download as one ZIP" not in confirm and "Pack 2 videos" not in confirm

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/o/{slug}/exports/new/", {"batch": batch.pk})
        export = Export.objects.get()
        assert export.status == "ready", export.error

        listing = client.get(f"/o/{slug}/exports/").content.decode()
        assert "<h1>打包下载</h1>" in listing and ">可下载</span>" in listing
        assert "发起人" in listing and "Asked by" not in listing

        detail = client.get(response.url).content.decode()
        assert "下载 ZIP（" in detail and "可下载至 " in detail
        # Times are in the person's zone, labelled with it; no hard-coded "UTC" any more.
        assert 'title="Asia/Shanghai"' in detail
        shown = export.expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        assert f">{shown}</time>" in detail
        assert f"{shown}</time> UTC" not in detail
        status = client.get(f"/o/{slug}/exports/{export.pk}/status.json").json()
        assert (status["status"], status["status_label"]) == ("ready", "可下载")

        # Another organization's person gets the Chinese "not found", never the bundle.
        _speaks_chinese(outsider.user)
        foreign = login(outsider).get(f"/o/{slug}/exports/{export.pk}/")
        assert foreign.status_code == 404 and "未找到" in foreign.content.decode()
        assert export.label not in foreign.content.decode()

    def test_english_stays_the_default(self, login, member, make_outputs):
        batch, _ = make_outputs(member, ["a.mp4"])
        confirm = login(member).get(
            f"/o/{member.organization.slug}/exports/new/", {"batch": batch.pk}
        )
        text = confirm.content.decode()
        assert '<html lang="en">' in text and "Pack 1 video<" in text
        assert not HAN.search(text.split("<footer")[0].replace("简体中文", ""))

    def test_the_build_writes_its_notification_and_error_in_the_requesters_language(
        self, member, make_outputs, settings, django_capture_on_commit_callbacks
    ):
        _speaks_chinese(member.user)
        batch, outputs = make_outputs(member, ["a.mp4", "b.mp4", "c.mp4"])
        ready = _build(member, django_capture_on_commit_callbacks, batch=batch.pk)
        note = member.user.notifications.get(kind="export.ready")
        assert note.message == f"压缩包“{ready.label}”已打包完成（3 个视频）。"

        from core.storage import media as media_storage

        media_storage.save_bytes(outputs[1].file.name, b"shorter")
        Export.objects.update(status="expired")
        failed = _build(member, django_capture_on_commit_callbacks, batch=batch.pk)
        assert failed.status == "failed"
        assert failed.error == (
            "b.mp4：文件在渲染后被改动过。请重新渲染该视频或不再选中它，然后重新发起打包。"
        )
        note = member.user.notifications.get(kind="export.failed")
        assert note.message.startswith(f"压缩包“{failed.label}”打包失败：b.mp4：")


# --- manifest.csv ------------------------------------------------------------------------------


class TestManifest:
    def test_bom_chinese_names_and_times_in_the_requesters_zone(
        self, member, make_outputs, django_capture_on_commit_callbacks
    ):
        from jobs.models import Project

        _speaks_chinese(member.user)
        project = Project.objects.create(organization=member.organization, name="春季推广")
        _, outputs = make_outputs(member, ["北京.mp4", "上海.mp4"], project=project)
        ids = [o.pk for o in outputs]
        export = _build(member, django_capture_on_commit_callbacks, output=ids)
        data = _manifest_bytes(export)

        assert data.startswith(b"\xef\xbb\xbf")  # what Excel needs to read UTF-8
        text = data.decode("utf-8-sig")
        header = text.split("\r\n", 1)[0].split(",")
        assert header[:3] == ["path", "bytes", "sha256"]
        assert header[-1] == "rendered_at (Asia/Shanghai)"
        rows = list(csv.reader(io.StringIO(text)))[1:]
        by_path = {row[0]: row for row in rows}
        for output in outputs:
            path = next(p for p in by_path if p.endswith("/" + output.name))
            assert path.startswith("春季推广/")  # the Chinese project name, intact
            stamp = by_path[path][-1]
            assert stamp == local_iso(output.created_at, SHANGHAI)
            assert stamp.endswith("+08:00")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", stamp)
        # The bundle's own name is stamped in the requester's zone too.
        built = export.finished_at.astimezone(SHANGHAI)
        assert built.strftime("%Y%m%d") in export.filename

    def test_a_requester_without_a_zone_gets_utc(
        self, member, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _ = make_outputs(member, ["a.mp4"])
        export = _build(member, django_capture_on_commit_callbacks, batch=batch.pk)
        rows = list(csv.reader(io.StringIO(_manifest_bytes(export).decode("utf-8-sig"))))
        assert rows[0][-1] == "rendered_at (UTC)" and rows[1][-1].endswith("+00:00")


# --- the site's error pages ---------------------------------------------------------------------


class TestErrorPages:
    def test_404_in_chinese_by_accept_language(self, login, member, outsider):
        # Someone who has not chosen a language: the browser's decides.
        client = login(outsider)
        response = client.get("/o/acme/exports/", **CHINESE)  # another organization's page
        page = response.content.decode()
        assert response.status_code == 404
        assert '<html lang="zh-hans">' in page and "<h1>未找到</h1>" in page
        assert "这里什么也没有" in page
        english = client.get("/o/acme/exports/", HTTP_ACCEPT_LANGUAGE="en")
        assert "<h1>Not found</h1>" in english.content.decode()
        client.logout()
        nowhere = client.get("/no/such/page/", **CHINESE)
        assert nowhere.status_code == 404 and "<h1>未找到</h1>" in nowhere.content.decode()

    def test_413_page_and_api_in_chinese_by_accept_language(self, client, settings):
        settings.UPLOAD_MAX_REQUEST_BYTES = 1_000_000
        big = {"CONTENT_LENGTH": str(5_000_000), **CHINESE}
        page = client.generic("POST", "/o/acme/assets/upload/", b"", **big)
        text = page.content.decode()
        assert page.status_code == 413 and '<html lang="zh-hans">' in text
        assert "<h1>上传内容过大</h1>" in text and "本次上传 5 MB" in text
        assert page["Content-Language"] == "zh-hans"
        api = client.generic("POST", "/api/v1/orgs/acme/assets/", b"", **big)
        body = assert_error(api, 413, "too_large")
        assert body["message"].startswith("本次上传 5 MB，超过每次请求 1 MB 的上限")

    def test_429_page_in_chinese_with_the_wait_as_a_plural(
        self, login, member, make_outputs, settings
    ):
        cache.clear()
        settings.EXPORT_REQUEST_RATE = "1/hour"
        _speaks_chinese(member.user)
        batch, _ = make_outputs(member, ["a.mp4"])
        client = login(member)
        url = f"/o/{member.organization.slug}/exports/new/"
        assert client.post(url, {"batch": batch.pk}).status_code == 302
        refused = client.post(url, {"batch": batch.pk})
        text = refused.content.decode()
        wait = int(refused["Retry-After"])
        assert refused.status_code == 429 and "<h1>请稍等片刻</h1>" in text
        assert f"打包请求过于频繁，请 {wait} 秒后再试。" in text

    def test_database_gone_answers_in_chinese(self, login, member, monkeypatch):
        from django.db import OperationalError

        from accounts.tenancy import pages as tenancy_pages

        def gone(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        _speaks_chinese(member.user)
        client = login(member)
        monkeypatch.setattr(tenancy_pages, "membership_for", gone)
        page = client.get("/o/acme/exports/")
        assert page.status_code == 503 and "<h1>服务暂时不可用</h1>" in page.content.decode()
        status = client.get("/o/acme/exports/1/status.json", HTTP_ACCEPT="application/json")
        assert status.status_code == 503
        # The API's one error shape (code, message, fields), in the person's language.
        assert status.json() == {
            "error": {
                "code": "service_unavailable",
                "message": "服务暂时不可用（数据库）。请一分钟后重试。",
                "fields": {},
            }
        }

    def test_500_and_503_pages_speak_the_active_language(self):
        with translation.override("zh-hans"):
            crashed = render_to_string("500.html")
            away = render_to_string("503.html", {"message": "数据库不可用"})
        assert '<html lang="zh-hans">' in crashed and "服务器出错了" in crashed
        assert "服务暂时不可用" in away and "正在进行的渲染和打包会继续" in away
        with translation.override("en"):
            assert "Something went wrong on our side" in render_to_string("500.html")


def test_budget_messages_are_plurals():
    with translation.override("en"):
        assert budgets.message("export-request", 1).endswith("Try again in 1 second.")
        assert budgets.message("export-request", 30).endswith("Try again in 30 seconds.")
        assert budgets.message("export-download", 2).startswith(
            "You have downloaded bundles too often"
        )
    with translation.override("zh-hans"):
        assert budgets.message("export-download", 30) == "下载压缩包过于频繁，请 30 秒后再试。"


# --- the API's errors ---------------------------------------------------------------------------


class TestApiErrorsInChinese:
    @pytest.fixture
    def headers(self, member):
        _, token = api_token_create(membership=member, name="ci", expires_in_days=None)
        return {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"}

    def test_not_found_and_validation(self, client, member, outsider, headers):
        base = f"/api/v1/orgs/{member.organization.slug}"
        nowhere = assert_error(client.get("/api/v1/nowhere/", headers=headers), 404, "not_found")
        assert nowhere["message"] == "没有这个 API 地址，请参阅 /api/docs/。"

        missing = assert_error(
            client.get(f"{base}/exports/999999/", headers=headers), 404, "not_found"
        )
        assert HAN.search(missing["message"]), missing

        empty = assert_error(
            client.post(f"{base}/exports/", {}, content_type="application/json", headers=headers),
            400,
            "invalid",
        )
        assert empty["message"] == "请指定要打包的内容：批量任务、项目、标签或选中的视频。"

        wrong = assert_error(
            client.post(
                f"{base}/exports/", {"batch": "x"}, content_type="application/json", headers=headers
            ),
            400,
            "invalid",
        )
        assert wrong["message"].startswith("请检查以下字段：batch。 batch：")
        assert HAN.search(wrong["fields"]["batch"][0])

        # Another organization's outputs are answered like missing ones, in Chinese.
        from jobs.models import Output

        foreign = Output.objects.filter(job__batch__project__organization=outsider.organization)
        assert not foreign.exists()
        gone = assert_error(
            client.post(
                f"{base}/exports/", {"outputs": [987654]}, content_type="application/json",
                headers=headers,
            ),
            404,
            "not_found",
        )  # fmt: skip
        assert gone["message"] == "部分选中的视频不存在。"
        english = client.get("/api/v1/nowhere/", headers={"Accept-Language": "en"}).json()
        assert english["error"]["message"] == "There is no such API address; see /api/docs/."

    def test_throttled_bundle_request_with_the_wait_in_chinese(
        self, client, member, make_outputs, headers, settings
    ):
        cache.clear()
        settings.EXPORT_REQUEST_RATE = "1/hour"
        batch, _ = make_outputs(member, ["a.mp4"])
        url = f"/api/v1/orgs/{member.organization.slug}/exports/"
        first = client.post(
            url, {"batch": batch.pk}, content_type="application/json", headers=headers
        )
        assert first.status_code == 201
        Export.objects.update(status="expired")
        refused = client.post(
            url, {"batch": batch.pk}, content_type="application/json", headers=headers
        )
        body = assert_error(refused, 429, "throttled")
        assert body["message"] == f"打包请求过于频繁，请 {refused['Retry-After']} 秒后再试。"


# --- the command-line client ----------------------------------------------------------------------


ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m heygem_client`` in a clean environment with these locale variables."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE") and not k.startswith("HEYGEM_")
    }
    # The messages must not depend on which system locales happen to be installed.
    clean["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "heygem_client", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


class TestClientLanguage:
    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({"LANG": "zh_CN.UTF-8"}, "zh_Hans"),
            ({"LANG": "zh_Hans"}, "zh_Hans"),
            ({"LC_MESSAGES": "zh-Hans"}, "zh_Hans"),
            ({"LANG": "C"}, "en"),
            ({"LANG": "zh_TW.UTF-8"}, "en"),
            ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
            ({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}, "zh_Hans"),
            ({}, "en"),
        ],
    )
    def test_the_locale_variables_choose(self, environ, expected):
        assert client_i18n.language(environ) == expected

    def test_help_in_chinese_and_english(self):
        chinese = _cli("--help", LANG="zh_CN.UTF-8")
        assert chinese.returncode == 0, chinese.stderr
        assert chinese.stdout.startswith("用法：python -m heygem_client")
        assert "HeyGem Studio 命令行客户端。" in chinese.stdout
        assert (
            "显示此帮助信息并退出" in chinese.stdout
            and "服务器地址，或设置 HEYGEM_URL" in chinese.stdout
        )
        submit = _cli("submit", "--help", LANG="zh_CN.UTF-8")
        assert "上传一个形象视频和一个音频文件夹，并进行渲染。" in submit.stdout
        english = _cli("--help", LANG="C")
        assert english.returncode == 0
        assert english.stdout.startswith("usage: python -m heygem_client")
        assert "show this help message and exit" in english.stdout
        assert not HAN.search(english.stdout)

    def test_errors_in_chinese_and_english(self):
        no_token = _cli("status", LANG="zh_CN.UTF-8")
        assert no_token.returncode == 2
        assert (
            no_token.stderr.strip()
            == "错误：缺少 API 令牌：请使用 --token 参数或设置 HEYGEM_TOKEN。"
        )
        bad_url = _cli(
            "status", "--token", "hgm_x_y", "--org", "acme", "--url", "ftp://files.example",
            LANG="zh_CN.UTF-8",
        )  # fmt: skip
        assert bad_url.returncode == 2
        assert bad_url.stderr.startswith("错误：仅支持 http(s) 地址，不支持 'ftp://files.example")
        usage = _cli("submit", LC_ALL="zh_CN.UTF-8")
        assert usage.returncode == 2
        assert "python -m heygem_client submit：错误：缺少以下必需参数：--avatar" in usage.stderr
        english = _cli("status", LANG="C")
        assert english.returncode == 2
        assert english.stderr.strip() == "error: No API token: pass --token or set HEYGEM_TOKEN."
        english_usage = _cli("submit", LANG="C")
        assert "error: the following arguments are required: --avatar" in english_usage.stderr

    def test_api_calls_ask_for_the_clients_language(self, monkeypatch):
        monkeypatch.delenv("LC_ALL", raising=False)
        monkeypatch.delenv("LC_MESSAGES", raising=False)
        monkeypatch.setenv("LANG", "zh_CN.UTF-8")
        assert client_i18n.accept_language() == "zh-Hans"
        monkeypatch.setenv("LANG", "en_GB.UTF-8")
        assert client_i18n.accept_language() == "en"
