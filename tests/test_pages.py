"""The pages as a person meets them, with a second organization to catch leaks."""

import csv
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.audit import record_event
from accounts.models import ApiToken, AuditEvent, Invitation, Membership, Organization
from accounts.permissions import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_login_by_email_any_case_and_logout(client, owner, outsider):
    response = client.post(
        reverse("accounts:login"), {"username": "OWNER@Acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    response = client.get(reverse("accounts:home"), follow=True)
    assert response.request["PATH_INFO"] == "/o/acme/"
    assert b"Acme Media" in response.content and b"Rival Films" not in response.content
    client.post(reverse("accounts:logout"))
    assert client.get("/o/acme/").status_code == 302


def test_wrong_password_says_so(client, owner):
    response = client.post(
        reverse("accounts:login"), {"username": owner.user.email, "password": "no"}
    )
    assert response.status_code == 200
    assert b"correct" in response.content  # "Please enter a correct e-mail and password"


def test_new_user_is_asked_to_create_an_organization(client):
    client.force_login(UserFactory())
    assert client.get("/").url == reverse("accounts:org_create")


def test_create_organization_keeps_input_on_error(login, owner):
    client = login(owner)
    response = client.post(reverse("accounts:org_create"), {"name": "My New Org", "slug": "acme"})
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert b'value="My New Org"' in response.content
    response = client.post(
        reverse("accounts:org_create"), {"name": "My New Org", "slug": "new-org"}
    )
    assert response.url == "/o/new-org/"
    assert Membership.objects.get(organization__slug="new-org").role == Role.OWNER


def test_switcher_lists_only_my_organizations(login, owner, outsider, make_member):
    third = Organization.objects.create(name="Third Co", slug="third")
    make_member(third, Role.VIEWER, email=owner.user.email)
    page = login(owner).get("/o/acme/").content.decode()
    assert "Third Co" in page and "Rival Films" not in page


def test_non_member_gets_404_on_every_org_page(login, owner, outsider):
    client = login(outsider)
    for name in ["org_home", "members", "tokens", "audit", "audit_csv", "org_settings"]:
        assert client.get(reverse(f"accounts:{name}", args=["acme"])).status_code == 404
    assert client.get("/o/does-not-exist/").status_code == 404


def test_csrf_is_enforced(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    response = client.post(
        reverse("accounts:invite", args=["acme"]), {"email": "a@b.c", "role": "viewer"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


class TestMembersPage:
    def test_controls_follow_the_role(self, login, owner, member, viewer, admin):
        page = login(viewer).get("/o/acme/members/").content.decode()
        assert "Invite someone" not in page and "Remove" not in page and 'name="role"' not in page
        page = login(admin).get("/o/acme/members/").content.decode()
        assert "Invite someone" in page and "Remove" in page
        # an admin is never offered the owner role, nor controls on the owner's row
        assert 'value="owner">' not in page
        assert (
            f"/members/{owner.pk}/role/" not in page and f"/members/{owner.pk}/remove/" not in page
        )
        assert f"/members/{member.pk}/role/" in page

    def test_invite_shows_the_link_once_and_it_works(self, login, admin):
        client = login(admin)
        response = client.post(
            "/o/acme/members/invite/", {"email": "New@Guest.test", "role": "member"}
        )
        link = re.search(r'value="(http[^"]+/invite/[^"]+/)"', response.content.decode()).group(1)
        assert "/invite/" in link
        assert link.split("/")[-2] not in client.get("/o/acme/members/").content.decode()
        client.logout()
        path = link.split("testserver", 1)[1]
        page = client.get(path)
        assert b"Create your account" in page.content
        response = client.post(
            path,
            {"full_name": "Guest", "password1": "pw-guest-12345", "password2": "pw-guest-12345"},
        )
        assert response.url == "/o/acme/"
        assert Membership.objects.get(user__email="new@guest.test").role == Role.MEMBER
        assert b"already been used" in client.get(path).content

    def test_signup_refusal_keeps_the_name(self, client, admin):
        _, raw = services.invitation_create(membership=admin, email="g@x.test", role="viewer")
        response = client.post(
            f"/invite/{raw}/", {"full_name": "Gail", "password1": "a", "password2": "b"}
        )
        assert response.status_code == 400
        assert b'value="Gail"' in response.content and b"differ" in response.content
        assert not Membership.objects.filter(user__email="g@x.test").exists()

    def test_invalid_invitation_link(self, client):
        response = client.get("/invite/forged-token/")
        assert response.status_code == 400 and b"not valid" in response.content

    def test_invite_refusal_keeps_the_email(self, login, admin, member):
        response = login(admin).post(
            "/o/acme/members/invite/", {"email": "member@acme.test", "role": "viewer"}
        )
        assert response.status_code == 400
        assert (
            b"already a member" in response.content
            and b'value="member@acme.test"' in response.content
        )

    def test_last_owner_message(self, login, owner):
        response = login(owner).post(
            f"/o/acme/members/{owner.pk}/role/", {"role": "viewer"}, follow=True
        )
        assert b"last owner" in response.content
        assert Membership.objects.get(pk=owner.pk).role == Role.OWNER

    def test_forged_role_value(self, login, owner, member):
        login(owner).post(f"/o/acme/members/{member.pk}/role/", {"role": "superuser"})
        assert Membership.objects.get(pk=member.pk).role == Role.MEMBER


class TestTokensPage:
    def test_token_shown_once_then_only_its_prefix(self, login, member, outsider):
        client = login(member)
        response = client.post("/o/acme/tokens/new/", {"name": "nightly", "expires_in_days": "30"})
        raw = re.search(r'value="(hgm_[^"]+)"', response.content.decode()).group(1)
        assert response["Cache-Control"] == "no-store"
        listing = client.get("/o/acme/tokens/").content.decode()
        assert raw not in listing and raw.split("_")[1] in listing
        services.api_token_create(membership=outsider, name="rival-secret", expires_in_days=None)
        assert "rival-secret" not in listing

    def test_bad_expiry_is_refused(self, login, member):
        response = login(member).post(
            "/o/acme/tokens/new/", {"name": "x", "expires_in_days": "100000"}
        )
        assert response.status_code == 400 and b"Choose between" in response.content
        assert not ApiToken.objects.exists()


class TestAuditPage:
    def test_filters_and_csv(self, login, owner, member, outsider):
        services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
        services.api_token_create(membership=owner, name="t", expires_in_days=None)
        services.invitation_create(membership=outsider, email="z@x.test", role="viewer")
        client = login(owner)
        page = client.get("/o/acme/audit/", {"action": "member.role_changed"}).content.decode()
        assert 'data-action="member.role_changed"' in page
        assert 'data-action="token.created"' not in page
        page = client.get("/o/acme/audit/", {"action": "token"}).content.decode()
        assert 'data-action="token.created"' in page
        assert "z@x.test" not in client.get("/o/acme/audit/").content.decode()
        response = client.get("/o/acme/audit.csv", {"actor": "OWNER@"})
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0][:4] == ["seq", "created_at (UTC)", "actor", "action"]
        assert {r[3] for r in rows[1:]} == {"member.role_changed", "token.created"}
        assert all(r[2] == "owner@acme.test" for r in rows[1:])
        assert 'filename="audit_acme_' in response["Content-Disposition"]

    def test_bad_dates_are_refused(self, login, owner):
        response = login(owner).get(
            "/o/acme/audit/", {"since": "2026-02-01", "until": "2026-01-01"}
        )
        assert b"before the start date" in response.content
        assert login(owner).get("/o/acme/audit/", {"since": "yesterday"}).status_code == 200

    def test_csv_cells_cannot_become_formulas(self, login, owner):
        from accounts.audit import Target

        record_event(
            organization=owner.organization, action="x.z", target=Target("t", "1", "=HYPERLINK(1)")
        )
        body = b"".join(login(owner).get("/o/acme/audit.csv").streaming_content).decode()
        assert "'=HYPERLINK(1)" in body

    def test_constant_queries_and_pagination(self, login, owner):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = login(owner)
        counts = {}
        for total in (5, 500):
            existing = AuditEvent.objects.filter(organization=owner.organization).count()
            for i in range(total - existing):
                record_event(
                    organization=owner.organization, action=f"demo.e{i % 3}", actor=owner.user
                )
            client.get("/o/acme/audit/")  # warm the session
            with CaptureQueriesContext(connection) as queries:
                response = client.get("/o/acme/audit/", {"page": 2 if total > 50 else 1})
            assert response.status_code == 200
            assert len(response.context["page"].object_list) == min(total, 50)
            counts[total] = len(queries)
        assert counts[5] == counts[500], counts

    def test_action_choices_are_the_actions_of_this_log(self, login, owner, outsider):
        for action in ["token.created", "member.added", "token.created", "a.first", "z.last"]:
            record_event(organization=owner.organization, action=action)
        record_event(organization=outsider.organization, action="rival.only")
        response = login(owner).get("/o/acme/audit/")
        expected = sorted(
            set(
                AuditEvent.objects.filter(organization=owner.organization).values_list(
                    "action", flat=True
                )
            )
        )
        assert response.context["actions"] == expected
        assert "a.first" in expected and "rival.only" not in expected
        assert '<option value="z.last" >z.last</option>' in response.content.decode()


def test_notifications_page_writes_only_when_something_is_unread(login, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Notification

    services.notify(user=owner.user, organization=owner.organization, kind="k", message="Hello")
    client = login(owner)
    with CaptureQueriesContext(connection) as first:
        assert "Hello" in client.get("/o/acme/notifications/").content.decode()
    assert not Notification.objects.filter(read_at=None).exists()
    with CaptureQueriesContext(connection) as again:
        client.get("/o/acme/notifications/")
    writes = [q["sql"] for q in again.captured_queries if q["sql"].startswith("UPDATE")]
    assert not writes, writes  # nothing to mark: no write lock taken
    assert len(again) == len(first) - 1


def test_url_for_gives_what_reverse_gives(settings):
    from django.urls import clear_url_caches, set_script_prefix

    from accounts.urlcache import url_for

    cases = [
        ("jobs:batch", "acme", 7),
        ("jobs:batch", "acme", 123456789012),
        ("jobs:batch_status", "acme", 7),
        ("jobs:output_download", "other-org_2", 918273645),
        ("exports:detail", "acme", 0),
        ("accounts:org_home", "acme"),
        ("accounts:home",),
        ("accounts:invitation", "tok123"),  # a str last argument: reversed whole
    ]
    try:
        for prefix in ("/", "/studio/"):
            set_script_prefix(prefix)
            for name, *args in cases:
                assert url_for(name, *args) == reverse(name, args=args), (prefix, name, args)
        assert url_for("jobs:batch", "acme", 5).startswith("/studio/o/acme/")
    finally:
        set_script_prefix("/")
    settings.ROOT_URLCONF = "heygem_site.urls"  # a URLconf change empties the caches
    clear_url_caches()
    assert url_for("jobs:batch", "acme", 9) == "/o/acme/batches/9/"
