"""Doors locked: login lockout, per-user budgets for bundles, safe file names and headers."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts.audit import RequestMeta
from accounts.services import api_token_create
from core.http import client_ip, content_disposition
from core.storage import media as storage
from exports.models import Export
from tests.api.helpers import assert_error
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        "/login/", {"username": email, "password": password}, REMOTE_ADDR=ip, follow=False
    )


class TestLoginLockout:
    def test_wrong_passwords_lock_that_email_from_that_address(self, client, member, settings):
        settings.AXES_FAILURE_LIMIT = 3
        email = member.user.email
        for attempt in range(2):
            response = _login(client, email.upper() if attempt else email, "wrong-password")
            assert response.status_code == 200 and "Please enter a correct" in response.text
        third = _login(client, email, "wrong-password")  # the limit: locked from here on
        assert third.status_code == 429
        locked = _login(client, email, PASSWORD)  # even the right password, now
        assert locked.status_code == 429
        assert "Too many failed log-ins" in locked.text
        assert "_auth_user_id" not in client.session
        # Someone else's guessing from another network does not lock the real person out.
        assert _login(client, email, PASSWORD, ip="198.51.100.20").status_code == 302

    def test_success_resets_the_count(self, client, member, settings):
        settings.AXES_FAILURE_LIMIT = 3
        email = member.user.email
        for _ in range(2):
            _login(client, email, "wrong-password")
        assert _login(client, email, PASSWORD).status_code == 302
        client.logout()
        for _ in range(2):
            assert _login(client, email, "wrong-password").status_code == 200
        assert _login(client, email, PASSWORD).status_code == 302

    def test_behind_the_proxy_the_last_forwarded_address_counts(self, rf, settings):
        settings.USE_X_FORWARDED_FOR = True
        request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
        # The first entry is whatever the client sent; the last is what our proxy saw.
        assert client_ip(request) == "203.0.113.9"
        assert RequestMeta.from_request(request).ip == "203.0.113.9"
        settings.USE_X_FORWARDED_FOR = False
        assert client_ip(request) == "10.0.0.2"


@pytest.fixture
def batch(member, make_outputs):
    cache.clear()
    batch, _ = make_outputs(member, ["a.mp4"])
    return batch


class TestBundleBudgets:
    def test_pages_refuse_extra_bundle_requests_with_429(self, login, member, batch, settings):
        settings.EXPORT_REQUEST_RATE = "2/hour"
        client = login(member)
        url = f"/o/{member.organization.slug}/exports/new/"
        for _ in range(2):
            assert client.post(url, {"batch": batch.pk}).status_code == 302
            Export.objects.update(status="expired")  # so the next is a new request
        refused = client.post(url, {"batch": batch.pk})
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert "asked for bundles too often" in refused.text
        assert Export.objects.count() == 2  # nothing created by the refused one

    def test_api_shares_the_budget_and_answers_in_its_error_shape(
        self, client, member, batch, settings
    ):
        settings.EXPORT_REQUEST_RATE = "1/hour"
        _, token = api_token_create(membership=member, name="ci", expires_in_days=None)
        url = f"/api/v1/orgs/{member.organization.slug}/exports/"
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post(url, {"batch": batch.pk}, headers=headers).status_code == 201
        Export.objects.update(status="expired")
        refused = client.post(url, {"batch": batch.pk}, headers=headers)
        body = assert_error(refused, 429, "throttled")
        assert "too often" in body["message"] and refused["Retry-After"]
        assert Export.objects.count() == 1
        # The pages count against the same budget of that person.
        client.force_login(member.user)
        page = client.post(f"/o/{member.organization.slug}/exports/new/", {"batch": batch.pk})
        assert page.status_code == 429 and Export.objects.count() == 1

    def test_downloads_have_a_budget_too(
        self, login, member, batch, settings, django_capture_on_commit_callbacks
    ):
        settings.EXPORT_DOWNLOAD_RATE = "2/hour"
        client = login(member)
        slug = member.organization.slug
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/o/{slug}/exports/new/", {"batch": batch.pk})
        export = Export.objects.get()
        assert export.status == "ready", export.error
        url = f"/o/{slug}/exports/{export.pk}/download/"
        for _ in range(2):
            assert client.get(url).status_code in (200, 302)
        refused = client.get(url)
        assert refused.status_code == 429 and refused["Retry-After"]
        assert "downloaded bundles too often" in refused.text


class TestNames:
    @pytest.mark.parametrize(
        "name",
        [
            "evil\r\nSet-Cookie: a=b.mp4",
            'quote"d\\name.mp4',
            "数字人\x00\x7f.mp4",
            "../../etc/passwd",
        ],
    )
    def test_content_disposition_cannot_inject_headers(self, name):
        value = content_disposition(name)
        assert "\r" not in value and "\n" not in value and "\x00" not in value
        ascii_part = value.split(";")[1]
        assert ascii_part.count('"') == 2  # the quoted name cannot be closed early
        assert "/" not in value.split("filename*=")[1].split("''", 1)[1]  # %2F, not a path

    @pytest.mark.local_storage  # served by this app, not redirected to a bucket
    def test_output_names_with_control_characters_download_safely(
        self, login, member, make_outputs
    ):
        _, outputs = make_outputs(member, ["bad\r\nX-Evil: 1.mp4"])
        response = login(member).get(
            f"/o/{member.organization.slug}/outputs/{outputs[0].pk}/download/"
        )
        assert response.status_code == 200
        assert "X-Evil" not in response.headers
        assert "\n" not in response["Content-Disposition"]

    @pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "a\\b", "a\x00b", "."])
    def test_stored_names_cannot_leave_the_media_folder(self, bad):
        with pytest.raises(ValueError, match="not a media name"):
            storage.media_path(bad)
        with pytest.raises(ValueError, match="not a media name"):
            storage.save_bytes(bad, b"x")
