"""Accounts in Simplified Chinese and in the person's own time zone: the pages by the saved
choice or the browser, the switch and the profile, the zone preset on the first login, times
shown in the zone, e-mails in the recipient's language, the API's errors by Accept-Language or
the token owner's language, and the audit CSV as Excel on Chinese Windows opens it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from accounts import services
from accounts.models import AuditEvent, Membership, Notification, User
from accounts.notification_emails import notification_email
from accounts.permissions import Role
from accounts.preferences import local_iso
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CHINESE_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
# 14:36 UTC is 22:36 in Shanghai.
MOMENT = dt.datetime(2026, 3, 1, 14, 36, tzinfo=dt.UTC)


def _prefer(membership_or_user, *, language: str = "", time_zone: str = "") -> User:
    user = getattr(membership_or_user, "user", membership_or_user)
    User.objects.filter(pk=user.pk).update(language=language, time_zone=time_zone)
    user.refresh_from_db()
    return user


def _page(client, path: str, **headers) -> str:
    response = client.get(path, **headers)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


# --- which language a page speaks ---------------------------------------------------------------

# Each page of accounts and a sentence it says in Chinese.
CHINESE_PAGES = [
    ("/o/acme/", "当前角色：<strong>所有者</strong>。共 1 位成员。"),
    ("/o/acme/members/", "<h1>“Acme Media”的成员</h1>"),
    ("/o/acme/tokens/", "还没有令牌。可以在下方为第一个脚本创建一个。"),
    ("/o/acme/audit/", "<h1>审计日志</h1>"),
    ("/o/acme/webhooks/", "<h1>Webhook 接收地址</h1>"),
    ("/o/acme/notifications/", "暂无新通知。压缩包打包完成或失败时，消息会出现在这里。"),
    ("/o/acme/settings/", "<h1>组织设置</h1>"),
    ("/orgs/new/", "<h1>新建组织</h1>"),
    ("/profile/", "<h1>语言和时区</h1>"),
]


def test_the_login_page_follows_the_browser(client):
    page = _page(client, "/login/", **CHINESE_BROWSER)
    assert '<html lang="zh-hans">' in page
    assert "<h1>登录</h1>" in page and "第一次使用？请向组织管理员索取邀请链接。" in page
    assert '<label for="id_username">邮箱</label>' in page
    english = _page(client, "/login/", **ENGLISH_BROWSER)
    assert '<html lang="en">' in english and "<h1>Log in</h1>" in english


@pytest.mark.parametrize(("path", "chinese"), CHINESE_PAGES)
def test_pages_speak_the_browsers_chinese(login, owner, outsider, path, chinese):
    page = _page(login(owner), path, **CHINESE_BROWSER)
    assert '<html lang="zh-hans">' in page
    assert chinese in page


@pytest.mark.parametrize(("path", "chinese"), CHINESE_PAGES)
def test_the_saved_language_wins_over_the_browser(login, owner, outsider, path, chinese):
    _prefer(owner, language="zh-hans")
    page = _page(login(owner), path, **ENGLISH_BROWSER)
    assert '<html lang="zh-hans">' in page
    assert chinese in page


def test_english_without_a_choice_or_a_browser_language(login, owner):
    client = login(owner)
    page = _page(client, "/o/acme/members/")
    assert '<html lang="en">' in page
    assert "<h1>Members of Acme Media</h1>" in page and "Owner" in page
    assert "You are <strong>Owner</strong> here. 1 member." in _page(client, "/o/acme/")


def test_roles_and_audit_actions_have_chinese_names(login, owner, member):
    _prefer(owner, language="zh-hans")
    services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
    page = _page(login(owner), "/o/acme/audit/")
    assert '<option value="member.role_changed" >成员角色已变更</option>' in page
    assert 'data-action="member.role_changed" title="member.role_changed">成员角色已变更</td>' in (
        page
    )
    assert "<small>成员身份 " in page  # the target's kind
    assert '<span class="badge success">成功</span>' in page
    members = _page(login(owner), "/o/acme/members/")
    assert '<option value="viewer" selected>访客</option>' in members


def test_a_service_refusal_is_said_in_chinese(login, owner):
    _prefer(owner, language="zh-hans")
    response = login(owner).post(reverse("accounts:org_create"), {"name": "新组织", "slug": "new"})
    assert response.status_code == 200
    assert "“new”是保留地址，请换一个。" in response.content.decode()


def test_a_flash_message_is_said_in_chinese(login, owner, member):
    _prefer(owner, language="zh-hans")
    response = login(owner).post(
        f"/o/acme/members/{member.pk}/role/", {"role": "viewer"}, follow=True
    )
    assert "member@acme.test 的角色已改为访客。" in response.content.decode()


def test_the_locked_out_page_in_chinese(client, member, settings):
    settings.AXES_FAILURE_LIMIT = 1
    response = client.post(
        "/login/",
        {"username": member.user.email, "password": "wrong-password"},
        **CHINESE_BROWSER,
    )
    assert response.status_code == 429
    page = response.content.decode()
    assert "<h1>登录失败次数过多</h1>" in page and "登录已暂停 15 分钟。" in page


def test_the_pages_scripts_get_their_chinese(client):
    catalogue = client.get(reverse("js_catalog", args=["zh-hans"])).content.decode()
    escaped = "%(count)s \\u6761\\u65b0\\u901a\\u77e5"  # 条新通知, as JSON writes it
    assert escaped in catalogue or "%(count)s 条新通知" in catalogue


# --- the switch and the profile ---------------------------------------------------------------


class TestLanguageSwitch:
    url = "/language/"

    def test_saves_the_choice_and_remembers_it_in_a_cookie(self, login, owner):
        client = login(owner)
        response = client.post(self.url, {"language": "zh-hans", "next": "/o/acme/members/"})
        assert response.status_code == 302 and response["Location"] == "/o/acme/members/"
        assert response.cookies["heygem_language"].value == "zh-hans"
        owner.user.refresh_from_db()
        assert owner.user.language == "zh-hans"
        assert '<html lang="zh-hans">' in _page(client, "/o/acme/members/", **ENGLISH_BROWSER)

    def test_signed_out_the_cookie_decides(self, client):
        response = client.post(self.url, {"language": "zh-hans", "next": "/login/"})
        assert response["Location"] == "/login/"
        assert "<h1>登录</h1>" in _page(client, "/login/", **ENGLISH_BROWSER)

    def test_an_unknown_language_changes_nothing(self, login, owner):
        _prefer(owner, language="en")
        client = login(owner)
        response = client.post(self.url, {"language": "klingon", "next": "/o/acme/"})
        assert response.status_code == 302 and response["Location"] == "/o/acme/"
        assert "heygem_language" not in response.cookies
        owner.user.refresh_from_db()
        assert owner.user.language == "en"
        assert "Choose one of the languages offered." in _page(client, "/o/acme/")

    @pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/x"])
    def test_a_next_off_the_site_is_ignored(self, login, owner, elsewhere):
        response = login(owner).post(self.url, {"language": "zh-hans", "next": elsewhere})
        assert response.status_code == 302 and response["Location"] == "/"

    def test_only_post(self, client):
        assert client.get(self.url).status_code == 405


class TestProfile:
    url = "/profile/"

    def test_saves_language_and_zone(self, login, owner):
        client = login(owner)
        response = client.post(self.url, {"language": "zh-hans", "time_zone": "Asia/Shanghai"})
        assert response.status_code == 302 and response["Location"] == self.url
        assert response.cookies["heygem_language"].value == "zh-hans"
        owner.user.refresh_from_db()
        assert (owner.user.language, owner.user.time_zone) == ("zh-hans", "Asia/Shanghai")
        page = _page(client, self.url)
        assert "设置已保存。" in page and "当前：Asia/Shanghai (UTC+08:00)。" in page

    @pytest.mark.parametrize(
        "data",
        [
            {"language": "zh-hans", "time_zone": "Mars/Olympus_Mons"},
            {"language": "zh-hans", "time_zone": ""},
            {"language": "klingon", "time_zone": "Asia/Shanghai"},
        ],
    )
    def test_refuses_a_bogus_value_and_changes_nothing(self, login, owner, data):
        _prefer(owner, language="en", time_zone="Europe/Berlin")
        response = login(owner).post(self.url, data)
        assert response.status_code == 200
        assert 'class="error" role="alert"' in response.content.decode()
        owner.user.refresh_from_db()
        assert (owner.user.language, owner.user.time_zone) == ("en", "Europe/Berlin")
        assert "heygem_language" not in response.cookies


class TestFirstLoginPresetsTheZone:
    def _log_in(self, client, user, zone):
        return client.post(
            "/login/",
            {"username": user.email, "password": PASSWORD, "browser_time_zone": zone},
        )

    def test_the_browsers_zone_is_taken(self, client, member):
        assert self._log_in(client, member.user, "Asia/Shanghai").status_code == 302
        member.user.refresh_from_db()
        assert member.user.time_zone == "Asia/Shanghai"

    def test_an_existing_zone_stays(self, client, member):
        _prefer(member, time_zone="Europe/Berlin")
        assert self._log_in(client, member.user, "Asia/Shanghai").status_code == 302
        member.user.refresh_from_db()
        assert member.user.time_zone == "Europe/Berlin"

    def test_a_zone_the_server_does_not_know_is_ignored(self, client, member):
        assert self._log_in(client, member.user, "Mars/Olympus_Mons").status_code == 302
        member.user.refresh_from_db()
        assert member.user.time_zone == ""


# --- times in the person's zone -----------------------------------------------------------------


def test_times_are_shown_in_the_persons_zone(login, owner):
    _prefer(owner, time_zone="Asia/Shanghai")
    Notification.objects.create(
        user=owner.user, organization=owner.organization, kind="k", message="hi", created_at=MOMENT
    )
    # 16:30 UTC on 1 March is already 2 March in Shanghai.
    Membership.objects.filter(pk=owner.pk).update(created_at=MOMENT.replace(hour=16, minute=30))
    services.api_token_create(membership=owner, name="script", expires_in_days=None)
    client = login(owner)
    page = _page(client, "/o/acme/notifications/")
    shown = '<time datetime="2026-03-01T14:36:00Z" title="Asia/Shanghai">2026-03-01 22:36</time>'
    assert shown in page
    assert "Times are shown in Asia/Shanghai (UTC+08:00)." in page
    members = _page(client, "/o/acme/members/")
    assert 'title="Asia/Shanghai">2026-03-02</time>' in members
    audit = _page(client, "/o/acme/audit/")
    assert '<th scope="col">When (Asia/Shanghai)</th>' in audit
    assert "When (UTC)" not in audit


# --- e-mails ------------------------------------------------------------------------------------


def _notification(membership, **extra) -> Notification:
    return Notification.objects.create(
        user=membership.user,
        organization=membership.organization,
        kind="export.ready",
        level="success",
        message="“春季” 2 videos",
        link="/o/acme/exports/1/",
        created_at=MOMENT,
        **extra,
    )


class TestEmails:
    def test_a_notification_in_the_recipients_language_and_zone(self, member):
        _prefer(member, language="zh-hans", time_zone="Asia/Shanghai")
        with translation.override("en"), timezone.override(dt.UTC):  # the sender's own
            email = notification_email(_notification(member))
        assert email.subject == "【Acme Media】压缩包已就绪：“春季” 2 videos"
        assert email.body.startswith(f"{member.user.display_name}，您好：")
        assert "发送时间：2026-03-01 22:36，时区 Asia/Shanghai (UTC+08:00)。" in email.body
        html = email.alternatives[0][0]
        assert '<html lang="zh-hans">' in html and "在 HeyGem Studio 中查看" in html

    def test_an_english_recipient_gets_english_whatever_is_active(self, member):
        _prefer(member, language="en", time_zone="America/New_York")
        with translation.override("zh-hans"):
            email = notification_email(_notification(member))
        assert email.subject.startswith("[Acme Media] Bundle ready: ")
        assert "Sent at 2026-03-01 09:36, America/New_York (UTC-05:00)." in email.body

    def test_a_lazy_message_is_stored_in_the_recipients_language(self, member):
        _prefer(member, language="zh-hans")
        services.notify(
            user=member.user,
            organization=member.organization,
            kind="k",
            message=translation.gettext_lazy("Bundle ready"),
        )
        assert Notification.objects.get(user=member.user).message == "压缩包已就绪"

    def test_an_invitation_to_a_new_address_speaks_the_inviters_language(
        self, admin, django_capture_on_commit_callbacks
    ):
        _prefer(admin, language="zh-hans", time_zone="Asia/Shanghai")
        with django_capture_on_commit_callbacks(execute=True):
            invitation, raw = services.invitation_create(
                membership=admin, email="new@guest.test", role="viewer"
            )
        sent = mail.outbox[-1]
        assert sent.to == ["new@guest.test"]
        assert sent.subject == "邀请您加入 HeyGem Studio 上的“Acme Media”"
        expires = invitation.expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        assert f"链接将于 {expires} 过期，时区 Asia/Shanghai (UTC+08:00)" in sent.body
        assert "以访客身份加入" in sent.body and raw in sent.body

    def test_an_invitation_to_an_account_speaks_its_language(
        self, admin, other_org, make_member, django_capture_on_commit_callbacks
    ):
        _prefer(admin, language="zh-hans", time_zone="Asia/Shanghai")
        someone = make_member(other_org, Role.MEMBER, "someone@rival.test")
        _prefer(someone, language="en", time_zone="Europe/London")
        with django_capture_on_commit_callbacks(execute=True):
            services.invitation_create(membership=admin, email="someone@rival.test", role="member")
        sent = mail.outbox[-1]
        assert sent.subject == "You are invited to Acme Media on HeyGem Studio"
        assert "Europe/London" in sent.body and "as Member." in sent.body


# --- the API's errors ---------------------------------------------------------------------------


def _token(membership) -> str:
    creator = membership
    if not membership.can("token.create"):  # a viewer's token, made while they were a member
        creator = Membership(user=membership.user, organization=membership.organization)
        creator.role = Role.MEMBER
    return services.api_token_create(membership=creator, name="script", expires_in_days=None)[1]


class TestApiErrors:
    def _get(self, client, token, slug, **headers):
        return client.get(
            reverse("api:org", args=[slug]), HTTP_AUTHORIZATION=f"Bearer {token}", **headers
        )

    def test_by_accept_language(self, client, member, outsider):
        response = self._get(client, _token(member), "rival", **CHINESE_BROWSER)
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "找不到这个组织。"
        assert response["Content-Language"] == "zh-hans"

    def test_by_the_token_owners_language(self, client, member, outsider):
        _prefer(member, language="zh-hans")
        response = self._get(client, _token(member), "rival")
        assert response.json()["error"]["message"] == "找不到这个组织。"
        assert response["Content-Language"] == "zh-hans"
        # A call that asks for a language gets it, whatever the owner's.
        english = self._get(client, _token(member), "rival", **ENGLISH_BROWSER)
        assert english.json()["error"]["message"] == "No such organization."

    def test_a_refusal_names_the_role_in_chinese(self, client, viewer, member):
        _prefer(viewer, language="zh-hans")
        response = client.patch(
            reverse("api:member-detail", args=["acme", member.pk]),
            '{"role": "viewer"}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {_token(viewer)}",
        )
        assert response.status_code == 403
        assert response.json()["error"]["message"] == (
            "当前角色（访客）无权执行这个操作（member.change_role）。"
        )

    def test_a_missing_row_is_named_in_chinese(self, client, owner, outsider):
        _prefer(owner, language="zh-hans")
        elsewhere = Membership.objects.get(organization=outsider.organization)
        response = client.get(
            reverse("api:member-detail", args=["acme", elsewhere.pk]),
            HTTP_AUTHORIZATION=f"Bearer {_token(owner)}",
        )
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"找不到成员身份：{elsewhere.pk}。"

    def test_a_bad_token_by_accept_language(self, client, member):
        response = self._get(client, "hgm_nope_nope", "acme", **CHINESE_BROWSER)
        assert response.status_code == 401
        assert response.json()["error"]["message"].startswith("令牌无效：")

    def test_the_throttle_by_the_token_owners_language(self, client, member, settings):
        from django.core.cache import cache

        _prefer(member, language="zh-hans")
        settings.API_THROTTLE_TOKEN = "1/min"
        token = _token(member)
        cache.clear()
        assert self._get(client, token, "acme").status_code == 200
        response = self._get(client, token, "acme")
        assert response.status_code == 429
        seconds = int(response["Retry-After"])
        with translation.override("zh-hans"):
            expected = translation.ngettext(
                "Too many requests; try again in %(num)d second.",
                "Too many requests; try again in %(num)d seconds.",
                seconds,
            ) % {"num": seconds}
        assert response.json()["error"]["message"] == expected
        assert "请求过于频繁" in expected  # the site's catalogue has it


# --- the audit CSV, as Excel opens it -----------------------------------------------------------


def _excel(raw: bytes) -> list[list[str]]:
    """What Excel on Chinese Windows sees: UTF-8 only because of the byte-order mark."""
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def _check_chinese_cells(rows: list[list[str]], event: AuditEvent) -> None:
    assert rows[0][:4] == ["seq", "created_at (Asia/Shanghai)", "actor", "action"]
    renamed = next(r for r in rows[1:] if r[3] == "org.renamed")
    assert renamed[6] == "杭州数字人工作室"  # the organization's Chinese name, intact
    assert renamed[1] == local_iso(event.created_at, SHANGHAI)
    assert renamed[1].endswith("+08:00")
    assert any(r[3] == "project.created" and r[6] == "春季经销商视频" for r in rows[1:])


@pytest.fixture
def chinese_log(owner, outsider):
    from jobs.services import project_create

    _prefer(owner, language="zh-hans", time_zone="Asia/Shanghai")
    services.organization_rename(membership=owner, name="杭州数字人工作室")
    project_create(membership=owner, name="春季经销商视频")
    return AuditEvent.objects.get(organization=owner.organization, action="org.renamed")


def test_the_audit_csv_page_opens_in_excel(login, owner, chinese_log):
    response = login(owner).get("/o/acme/audit.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    _check_chinese_cells(_excel(b"".join(response.streaming_content)), chinese_log)


@pytest.mark.parametrize(("name", "params"), [("audit-csv", {}), ("audit-list", {"format": "csv"})])
def test_the_audit_csv_of_the_api_opens_in_excel(client, owner, chinese_log, name, params):
    response = client.get(
        reverse(f"api:{name}", args=["acme"]),
        params,
        HTTP_AUTHORIZATION=f"Bearer {_token(owner)}",
    )
    assert response.status_code == 200
    _check_chinese_cells(_excel(b"".join(response.streaming_content)), chinese_log)


def test_the_csv_of_someone_without_a_zone_is_in_utc(login, admin, chinese_log):
    rows = _excel(b"".join(login(admin).get("/o/acme/audit.csv").streaming_content))
    assert rows[0][1] == "created_at (UTC)"
    assert all(r[1].endswith("+00:00") for r in rows[1:])


# --- the admin and the catalogue ----------------------------------------------------------------


def test_the_admin_shows_language_and_zone_in_chinese(client):
    boss = UserFactory(
        email="root@studio.test", is_staff=True, is_superuser=True, language="zh-hans"
    )
    client.force_login(boss)
    page = _page(client, reverse("admin:accounts_user_change", args=[boss.pk]))
    assert "<h2>语言和时区</h2>" in page or ">语言和时区</" in page
    assert 'name="language"' in page and 'name="time_zone"' in page
    listing = _page(client, reverse("admin:accounts_user_changelist"))
    assert ">时区</a>" in listing


def test_the_admin_refuses_a_zone_the_server_does_not_know(db):
    from django.forms import modelform_factory

    from accounts.admin import UserChangeForm

    user = UserFactory(email="someone@studio.test", time_zone="Europe/Berlin")
    form_class = modelform_factory(User, form=UserChangeForm, fields=["email", "time_zone"])
    form = form_class({"email": user.email, "time_zone": "Mars/Olympus_Mons"}, instance=user)
    assert not form.is_valid()
    assert "Mars/Olympus_Mons" in form.errors["time_zone"][0]
    cleared = form_class({"email": user.email, "time_zone": ""}, instance=user)
    assert cleared.is_valid(), cleared.errors  # empty: not chosen, the installation's zone


def test_the_accounts_catalogue_is_complete():
    call_command("messages", "check", "--area", "accounts")
