"""The small items of issue 17 in accounts: Copy buttons for one-time secrets, the
organization address made from its name, "Send test event" for webhooks and intranet
receivers, and the audit log's details and action filter in words.

Every webhook here goes to a receiver on 127.0.0.1 (tests.api.test_webhooks.Receiver).
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from accounts import services, webhooks
from accounts.audit import ACTION_LABELS, record_event
from accounts.audit_detail import detail_lines
from accounts.models import AuditEvent, Organization, User, WebhookDelivery, WebhookEndpoint
from accounts.permissions import Role
from accounts.slugs import free_slug, slug_from_name
from heygem_client.webhooks import verify as client_verify
from tests.api.test_webhooks import Receiver
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def _prefer(membership_or_user, language="zh-hans", zone="Asia/Shanghai"):
    user = getattr(membership_or_user, "user", membership_or_user)
    User.objects.filter(pk=user.pk).update(language=language, time_zone=zone)


def _html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- 1. Copy buttons -------------------------------------------------------------------------


def _copy_markup(html: str, field_id: str) -> None:
    """The field, a Copy button naming it (hidden until the script shows it), and a polite
    live region the script says the outcome in."""
    assert re.search(rf'<input id="{field_id}" class="secret" type="text" readonly value="', html)
    button = re.search(
        rf'<button type="button" class="copy" data-copy-target="{field_id}" hidden>', html
    )
    assert button, f"no Copy button for #{field_id}"
    status = re.search(
        rf'<p class="copy-status" id="{field_id}-copied" role="status" aria-live="polite" '
        rf'data-copy-status="{field_id}"></p>',
        html,
    )
    assert status, f"no live region for #{field_id}"


@pytest.fixture
def secret_pages(login, admin, settings):
    """The three pages that show a secret once, as the admin gets them."""
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the webhook goes to loopback; nothing is sent
    client = login(admin)
    invite = client.post(
        reverse("accounts:invite", args=["acme"]), {"email": "new@acme.test", "role": "member"}
    )
    token = client.post(reverse("accounts:token_create", args=["acme"]), {"name": "ci"})
    hook = client.post(
        reverse("accounts:webhook_create", args=["acme"]),
        {"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]},
    )
    return {"invite-link": _html(invite), "token-value": _html(token), "secret-value": _html(hook)}


def test_every_one_time_secret_has_a_copy_button(secret_pages):
    for field_id, html in secret_pages.items():
        _copy_markup(html, field_id)
        assert ">Copy</button>" in html
        assert 'js/app.js"' in html  # the handler comes with every page
    assert "/invite/" in secret_pages["invite-link"]
    assert 'value="hgm_' in secret_pages["token-value"]
    assert 'value="whsec_' in secret_pages["secret-value"]


def test_the_copy_button_in_chinese(login, admin, settings):
    _prefer(admin)
    html = _html(login(admin).post(reverse("accounts:token_create", args=["acme"]), {"name": "ci"}))
    _copy_markup(html, "token-value")
    assert ">复制</button>" in html


def test_the_copy_script_uses_data_attributes_and_translated_words():
    script = (ROOT / "static/js/app.js").read_text()
    assert "button[data-copy-target]" in script and "data-copy-status" in script
    assert "navigator.clipboard" in script and 'execCommand("copy")' in script
    assert 'gettext("Copied")' in script
    # The existing handlers are still there.
    for kept in ("form[data-confirm]", "input.secret", "browser_time_zone", "data-autosubmit"):
        assert kept in script
    catalogue = (ROOT / "accounts/locale/zh_Hans/LC_MESSAGES/djangojs.po").read_text()
    assert 'msgid "Copied"\nmsgstr "已复制"' in catalogue


def test_the_copy_words_reach_the_page_catalogue(client):
    catalogue = client.get(reverse("js_catalog", args=["zh-hans"])).content.decode()
    assert '"Copied": "\\u5df2\\u590d\\u5236"' in catalogue  # 已复制


# --- 2. The organization address from its name -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("华东经销商", "huadong-jingxiaoshang"),
        ("Northwind Traders", "northwind-traders"),
        ("上海分公司", "shanghai-fengongsi"),
        ("Acme 华东经销商 2026", "acme-huadong-jingxiaoshang-2026"),
        ("Café Noir", "cafe-noir"),
        ("ＡＣＭＥ　Ｆｉｌｍｓ", "acme-films"),  # full-width letters and space
        ("under_score  and---dashes", "under-score-and-dashes"),
        ("绿色", "lvse"),  # ü as v
        ("🙂🙂", "org"),
        ("テスト", "org"),
    ],
)
def test_slug_from_name(name, slug):
    assert slug_from_name(name) == slug


def test_a_long_name_is_cut_between_words():
    slug = slug_from_name("The Very Long Name Of A Regional Distribution Partner Company")
    assert slug == "the-very-long-name-of-a-regional"
    assert len(slug) <= 40 and re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", slug)


def test_a_chinese_name_makes_its_address(owner):
    organization = services.organization_create(user=owner.user, name="华东经销商", slug="")
    assert organization.slug == "huadong-jingxiaoshang"
    created = organization.audit_events.get(action="org.created")
    assert created.detail == {"slug": "huadong-jingxiaoshang"}


def test_an_english_name_makes_its_address(owner):
    organization = services.organization_create(user=owner.user, name="  Northwind Traders ")
    assert (organization.name, organization.slug) == ("Northwind Traders", "northwind-traders")


def test_a_taken_address_gets_a_suffix(owner):
    made = [services.organization_create(user=owner.user, name="华东经销商").slug for _ in range(3)]
    assert made == ["huadong-jingxiaoshang", "huadong-jingxiaoshang-2", "huadong-jingxiaoshang-3"]


def test_a_free_suffix_fills_a_gap(owner):
    for slug in ("beijing", "beijing-3", "beijing-north", "beijing-2x"):
        OrganizationFactory(slug=slug)
    assert services.organization_create(user=owner.user, name="北京").slug == "beijing-2"
    assert services.organization_create(user=owner.user, name="北京").slug == "beijing-4"


def test_the_acme_fixture_address_is_not_taken_twice(owner):
    assert services.organization_create(user=owner.user, name="Acme").slug == "acme-2"


@pytest.mark.parametrize(
    ("name", "slug"), [("Admin", "admin-2"), ("API", "api-2"), ("new", "new-2")]
)
def test_a_reserved_address_is_avoided(owner, name, slug):
    assert services.organization_create(user=owner.user, name=name).slug == slug


def test_a_typed_address_is_still_used_or_refused(owner):
    assert services.organization_create(user=owner.user, name="华东", slug="East").slug == "east"
    for typed in ("east", "admin"):
        with pytest.raises(ValidationError) as refused:
            services.organization_create(user=owner.user, name="华东", slug=typed)
        assert "slug" in refused.value.message_dict


def test_finding_a_free_address_is_one_query(django_assert_num_queries):
    for n in ("", "-2", "-3", "-4"):
        OrganizationFactory(slug=f"studio{n}")
    with django_assert_num_queries(1):
        assert free_slug("studio") == "studio-5"


def test_the_form_takes_no_address(login, owner):
    client = login(owner)
    page = _html(client.get(reverse("accounts:org_create")))
    assert "Address (optional)" in page and "Leave it empty to make it from the name" in page
    assert re.search(r'<input type="text" name="slug"[^>]*>', page)
    assert "required" not in re.search(r'<input type="text" name="slug"[^>]*>', page)[0]
    response = client.post(reverse("accounts:org_create"), {"name": "华东经销商", "slug": ""})
    assert response.status_code == 302
    assert response.url == reverse("accounts:org_home", args=["huadong-jingxiaoshang"])
    home = _html(client.get(response.url))
    assert "Organization “华东经销商” created; its address is /o/huadong-jingxiaoshang/." in home
    assert Organization.objects.get(slug="huadong-jingxiaoshang").memberships.get().role == "owner"


def test_the_form_in_chinese(login, owner):
    _prefer(owner)
    client = login(owner)
    page = _html(client.get(reverse("accounts:org_create")))
    assert "访问地址（可选）" in page and "留空则按名称自动生成" in page
    response = client.post(reverse("accounts:org_create"), {"name": "华东经销商"}, follow=True)
    assert "组织“华东经销商”已创建，访问地址为 /o/huadong-jingxiaoshang/。" in _html(response)


# --- 3. Webhooks: test events and intranet receivers -----------------------------------------


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver lives on loopback
    with Receiver() as r:
        yield r


def _send_test(client, endpoint, capture):
    with capture(execute=True):
        return client.post(reverse("accounts:webhook_test", args=["acme", endpoint.pk]))


def test_a_test_event_is_signed_delivered_listed_and_audited(
    login, admin, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["export.ready"]
    )
    client = login(admin)
    response = _send_test(client, endpoint, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response.url == reverse("accounts:webhook", args=["acme", endpoint.pk])

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]["headers"], receiver.requests[0]["body"]
    assert headers["X-HeyGem-Event"] == "ping"
    assert webhooks.verify_signature(secret=secret, body=body, header=headers["X-HeyGem-Signature"])
    assert client_verify(secret, headers, body)
    event = json.loads(body)
    assert event["type"] == "ping" and event["organization"] == {
        "id": admin.organization_id,
        "slug": "acme",
    }
    assert (
        event["data"]["endpoint"] == endpoint.pk
        and event["data"]["requested_by"] == "admin@acme.test"
    )

    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event, delivery.status) == (endpoint, "ping", "delivered")
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)
    assert headers["X-HeyGem-Delivery"] == str(delivery.key)
    audited = AuditEvent.objects.get(action="webhook.tested")
    assert audited.actor == admin.user and audited.target_id == str(endpoint.pk)
    assert audited.detail == {"delivery": str(delivery.key)}

    page = _html(client.get(response.url))
    assert "A test event is on its way to" in page
    assert '<td title="ping">Test event</td>' in page
    assert "Delivered" in page and "HTTP 200" in page
    listing = _html(client.get(reverse("accounts:webhooks", args=["acme"])))
    assert '<td title="ping">Test event</td>' in listing


def test_the_button_is_on_the_webhook_page(login, admin, receiver):
    endpoint, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["job.failed"]
    )
    page = _html(login(admin).get(reverse("accounts:webhook", args=["acme", endpoint.pk])))
    action = reverse("accounts:webhook_test", args=["acme", endpoint.pk])
    assert f'<form method="post" action="{action}" class="inline">' in page
    assert ">Send test event</button>" in page


def test_a_failed_test_event_is_not_retried(admin, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([500]) as failing:
        endpoint, _ = webhooks.webhook_endpoint_create(
            membership=admin, url=failing.url, events=["job.failed"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhook_send_test(membership=admin, endpoint=endpoint)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 500)
    assert delivery.next_attempt_at is None and "gave up" not in delivery.last_error
    assert not Schedule.objects.filter(func="accounts.tasks.deliver_webhook").exists()
    assert len(failing.requests) == 1


def test_a_paused_endpoint_can_still_be_tested(admin, receiver, django_capture_on_commit_callbacks):
    endpoint, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["job.failed"], is_active=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_send_test(membership=admin, endpoint=endpoint)
        # Real events still skip it.
        webhooks.webhook_emit(organization_id=admin.organization_id, event="job.failed", payload={})
    assert receiver.events() == ["ping"]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_test_events_are_throttled_per_endpoint(
    login, admin, receiver, django_capture_on_commit_callbacks
):
    endpoint, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["job.failed"]
    )
    other, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url.replace("?x=1", "?x=2"), events=["job.failed"]
    )
    client = login(admin)
    _send_test(client, endpoint, django_capture_on_commit_callbacks)
    again = _send_test(client, endpoint, django_capture_on_commit_callbacks)
    assert again.status_code == 302
    page = _html(client.get(again.url))
    assert re.search(r"A test event was just sent to this webhook; wait \d+ seconds? before", page)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert AuditEvent.objects.filter(action="webhook.tested").count() == 1
    _send_test(client, other, django_capture_on_commit_callbacks)  # another endpoint: its own
    assert WebhookDelivery.objects.filter(endpoint=other).count() == 1
    # Ten seconds later the first endpoint may be tested again.
    WebhookDelivery.objects.filter(endpoint=endpoint).update(
        created_at=timezone.now() - timedelta(seconds=11)
    )
    _send_test(client, endpoint, django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2
    assert receiver.events() == ["ping", "ping", "ping"]


def test_only_admins_of_the_organization_may_send_test_events(
    client, login, admin, member, viewer, outsider, receiver, make_member
):
    endpoint, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["job.failed"]
    )
    url = reverse("accounts:webhook_test", args=["acme", endpoint.pk])
    for who in (member, viewer):
        assert login(who).post(url).status_code == 403
    assert login(outsider).post(url).status_code == 404
    # The rival's own admin, naming this endpoint under their own address: the same 404.
    rival_admin = make_member(outsider.organization, Role.ADMIN, "admin@rival.test")
    other_url = reverse("accounts:webhook_test", args=["rival", endpoint.pk])
    assert login(rival_admin).post(other_url).status_code == 404
    client.logout()
    assert client.post(url).status_code == 302  # to the login page
    assert not WebhookDelivery.objects.exists() and receiver.requests == []
    with pytest.raises(PermissionDenied):
        webhooks.webhook_send_test(membership=member, endpoint=endpoint)
    # A GET only goes to the webhook's page.
    got = login(admin).get(url)
    assert got.status_code == 302 and got.url == reverse(
        "accounts:webhook", args=["acme", endpoint.pk]
    )
    assert not WebhookDelivery.objects.exists()


def test_a_refused_private_address_names_the_setting(login, admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError) as refused:
        webhooks.webhook_endpoint_create(
            membership=admin, url="http://127.0.0.1:9/hook", events=["job.failed"]
        )
    message = refused.value.message_dict["url"][0]
    assert "public addresses" in message and "WEBHOOK_ALLOW_PRIVATE=true" in message
    client = login(admin)
    page = client.post(
        reverse("accounts:webhook_create", args=["acme"]),
        {"url": "http://[::1]:9/hook", "events": ["job.failed"]},
    )
    assert page.status_code == 400 and "WEBHOOK_ALLOW_PRIVATE=true" in page.content.decode()
    form = _html(client.get(reverse("accounts:webhooks", args=["acme"])))
    assert (
        "Intranet addresses are refused unless an operator sets WEBHOOK_ALLOW_PRIVATE=true" in form
    )
    _prefer(admin)
    page = client.post(
        reverse("accounts:webhook_create", args=["acme"]),
        {"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]},
    ).content.decode()
    assert (
        "Webhook 只发送到公网地址" in page
        and "请运维人员在本服务器上设置 WEBHOOK_ALLOW_PRIVATE=true" in page
    )
    assert not WebhookEndpoint.objects.exists()


@pytest.fixture
def dns_down(monkeypatch):
    """The resolver answers nothing for "localhost" (an intranet name while DNS is offline);
    everything else, and the numeric addresses, still resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return monkeypatch


def test_dns_failure_at_save_is_refused_with_what_to_do(admin, settings, dns_down):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError) as refused:
        webhooks.webhook_endpoint_create(
            membership=admin, url="http://localhost:9/hook", events=["job.failed"]
        )
    message = refused.value.message_dict["url"][0]
    assert "localhost could not be resolved" in message
    assert "WEBHOOK_ALLOW_PRIVATE=true" in message and "intranet" in message
    assert not WebhookEndpoint.objects.exists()


def test_dns_failure_at_save_is_not_fatal_when_private_addresses_are_allowed(
    login, admin, settings, dns_down, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        url = f"http://localhost:{port}/hooks/heygem"
        client = login(admin)
        form = _html(client.get(reverse("accounts:webhooks", args=["acme"])))
        assert "This server also allows private (intranet) addresses." in form
        saved = client.post(
            reverse("accounts:webhook_create", args=["acme"]),
            {"url": url, "events": ["job.failed"]},
        )
        assert saved.status_code == 200 and "send a test event from" in saved.content.decode()
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.url == url

        # While DNS is still down the test event fails, and says why.
        _send_test(client, endpoint, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "failed" and "could not be resolved" in delivery.last_error
        page = _html(client.get(reverse("accounts:webhook", args=["acme", endpoint.pk])))
        assert "localhost could not be resolved" in page

        # DNS is back: the next test event arrives.
        dns_down.undo()
        WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        _send_test(client, endpoint, django_capture_on_commit_callbacks)
    assert receiver.events() == ["ping"]
    assert WebhookDelivery.objects.filter(status="delivered").count() == 1


# --- 4. The audit log in words ---------------------------------------------------------------


def _audit_page(client, **params) -> str:
    return _html(client.get(reverse("accounts:audit", args=["acme"]), params))


def _cell(html: str, action: str) -> str:
    """The Details cell of the (newest) row of ``action``."""
    row = re.search(rf'<td data-action="{re.escape(action)}".*?</tr>', html, re.S)
    assert row, f"no row for {action}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[0], re.S)
    return cells[-1]


@pytest.fixture
def detailed_log(owner, org):
    def add(action, detail, **kwargs):
        return record_event(
            organization=org, action=action, actor=owner.user, detail=detail, **kwargs
        )

    add("member.role_changed", {"from": "member", "to": "viewer"})
    add("org.renamed", {"from": "Acme", "to": "Acme <Media>"})
    add(
        "export.built",
        {"zip_bytes": 1_572_864, "seconds": 1.25, "scope": "batch:12", "storage": "local"},
    )
    add(
        "invitation.revoked",
        {"role": "admin", "reason": "inviter now member", "inviter": "a@acme.test"},
    )
    add("webhook.created", {"events": ["batch.completed", "job.failed"], "active": True})
    add("token.created", {"expires_at": "2026-12-07T14:36:00+00:00"})
    add("demo.unknown", {"note": "<script>alert(1)</script>", "sha256": "ab" * 32})
    return org


def test_the_detail_column_reads_as_labelled_values(login, owner, detailed_log):
    html = _audit_page(login(owner))
    assert "{'" not in html and "&#39;from&#39;" not in html  # no dict print
    assert '<th scope="col">Details</th>' in html
    role = _cell(html, "member.role_changed")
    assert "<dt>From:</dt><dd>Member</dd>" in role and "<dt>To:</dt><dd>Viewer</dd>" in role
    renamed = _cell(html, "org.renamed")
    assert "<dt>To:</dt><dd>Acme &lt;Media&gt;</dd>" in renamed  # names are names, escaped
    built = _cell(html, "export.built")
    assert "<dt>ZIP size:</dt><dd>1.5 MB</dd>" in built
    assert "<dt>Time taken (s):</dt><dd>1.25</dd>" in built
    assert "<dt>Scope:</dt><dd>Batch 12</dd>" in built
    revoked = _cell(html, "invitation.revoked")
    assert "<dt>Role:</dt><dd>Admin</dd>" in revoked
    assert "<dt>Reason:</dt><dd>the person who sent it is now Member</dd>" in revoked
    assert "<dt>Invited by:</dt><dd>a@acme.test</dd>" in revoked
    hook = _cell(html, "webhook.created")
    assert "<dt>Events:</dt><dd>Batch finished, Video job failed</dd>" in hook
    assert "<dt>Enabled:</dt><dd>yes</dd>" in hook
    assert "<dt>Expires:</dt><dd>2026-12-07 14:36</dd>" in _cell(html, "token.created")
    unknown = _cell(html, "demo.unknown")
    assert "<dt>note:</dt><dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>" in unknown
    assert "<script>alert(1)" not in html
    # A long value is cut, the whole of it in the title.
    assert f'<dd title="{"ab" * 32}">{"ab" * 23}a…</dd>' in unknown


def test_the_detail_column_in_chinese_and_the_readers_zone(login, owner, detailed_log):
    _prefer(owner)
    html = _audit_page(login(owner))
    assert '<th scope="col">详情</th>' in html
    role = _cell(html, "member.role_changed")
    assert "<dt>原为：</dt><dd>成员</dd>" in role and "<dt>改为：</dt><dd>访客</dd>" in role
    built = _cell(html, "export.built")
    assert "<dt>ZIP 大小：</dt>" in built and "<dt>范围：</dt><dd>批量任务 12</dd>" in built
    assert "<dt>启用：</dt><dd>是</dd>" in _cell(html, "webhook.created")
    assert "<dt>过期时间：</dt><dd>2026-12-07 22:36</dd>" in _cell(html, "token.created")
    assert "发出邀请的人现在是成员" in _cell(html, "invitation.revoked")


def test_a_real_service_detail_reads_well(login, owner, member):
    services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
    event = AuditEvent.objects.get(action="member.role_changed")
    lines = [(line.key, line.label, line.value) for line in detail_lines(event)]
    assert lines == [("from", "From", "Member"), ("to", "To", "Viewer")]


def test_the_action_filter_is_in_words_and_grouped(login, owner, member):
    services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
    record_event(organization=owner.organization, action="member.added", actor=owner.user)
    record_event(organization=owner.organization, action="token.created", actor=owner.user)
    client = login(owner)
    html = _audit_page(client)
    assert '<optgroup label="Members">' in html and '<optgroup label="API tokens">' in html
    assert '<option value="member" >Members: all actions</option>' in html
    assert '<option value="member.role_changed" >Member&#39;s role changed</option>' in html
    assert '<option value="token.created" >API token created</option>' in html
    assert '<option value="token" ' not in html  # one action: no "all" entry
    filtered = _audit_page(client, action="member")
    assert '<option value="member" selected>Members: all actions</option>' in filtered
    shown = set(re.findall(r'<td data-action="([^"]+)"', filtered))
    assert shown == {"member.role_changed", "member.added"}
    _prefer(owner)
    html = _audit_page(client)
    assert '<optgroup label="成员">' in html and ">成员：全部操作</option>" in html


def test_every_action_the_code_records_has_a_name():
    """An action recorded anywhere in accounts, jobs or exports is named on the audit page
    (its filter and its rows) instead of showing its code."""
    recorded = set()
    for area in ("accounts", "jobs", "exports"):
        for path in (ROOT / area).rglob("*.py"):
            recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', path.read_text()))
    assert {"org.created", "webhook.tested", "export.built"} <= recorded
    assert not sorted(recorded - set(ACTION_LABELS))


def test_the_audit_csv_detail_is_json(login, owner, detailed_log):
    body = b"".join(login(owner).get("/o/acme/audit.csv").streaming_content).decode("utf-8-sig")
    rows = {row["action"]: row for row in csv.DictReader(io.StringIO(body))}
    assert json.loads(rows["member.role_changed"]["detail"]) == {"from": "member", "to": "viewer"}
    assert json.loads(rows["org.renamed"]["detail"])["to"] == "Acme <Media>"
    assert "{'" not in body


def test_the_audit_page_still_costs_the_same_queries(login, owner, org):
    """The details come with the rows: no query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(owner)
    counts = []
    for extra in (1, 30):
        for _ in range(extra):
            record_event(
                organization=org, action="member.role_changed", actor=owner.user,
                detail={"from": "member", "to": "viewer"},
            )  # fmt: skip
        client.get(reverse("accounts:audit", args=["acme"]))
        with CaptureQueriesContext(connection) as queries:
            html = _audit_page(client)
        assert "<dt>From:</dt><dd>Member</dd>" in html
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_another_organization_sees_none_of_it(login, outsider, detailed_log, admin, receiver):
    endpoint, _ = webhooks.webhook_endpoint_create(
        membership=admin, url=receiver.url, events=["job.failed"]
    )
    client = login(outsider)
    assert client.get(reverse("accounts:audit", args=["acme"])).status_code == 404
    html = _html(client.get(reverse("accounts:audit", args=["rival"])))
    assert "Acme &lt;Media&gt;" not in html and "webhook.created" not in html
    assert (
        client.post(reverse("accounts:webhook_test", args=["rival", endpoint.pk])).status_code
        == 404
    )
    assert not WebhookDelivery.objects.exists()
