"""Tokens and sessions: expiry, revocation, role changes, removal, binding to one
organization, CSRF for the browser, and throttling with Retry-After."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, Membership
from jobs.models import Project
from tests.api.helpers import Api, assert_error

pytestmark = pytest.mark.django_db


def _projects(client, raw: str, slug: str = "acme", **extra):
    return client.get(
        reverse("api:project-list", args=[slug]),
        headers={"Authorization": f"Bearer {raw}"},
        **extra,
    )


def test_a_token_reads_its_organization(client, member, make_token):
    raw = make_token(member)
    response = _projects(client, raw)
    assert response.status_code == 200
    assert response.json()["results"] == []
    token = ApiToken.objects.get(user=member.user)
    assert token.last_used_at is not None


def test_expired_token_is_refused_with_401(client, member, make_token):
    raw = make_token(member, expires_in_days=1)
    ApiToken.objects.filter(user=member.user).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    error = assert_error(_projects(client, raw), 401, "invalid_token")
    assert "expired" in error["message"]


def test_revoked_token_is_refused_at_once(client, member, make_token):
    raw = make_token(member)
    assert _projects(client, raw).status_code == 200
    services.api_token_revoke(membership=member, token=ApiToken.objects.get(user=member.user))
    assert_error(_projects(client, raw), 401, "invalid_token")


def test_revoking_through_the_api_stops_the_token(client, member, make_token):
    raw = make_token(member)
    token = ApiToken.objects.get(user=member.user)
    api = Api(client, raw, "acme")
    assert api.delete("token-detail", token.pk).status_code == 204
    assert_error(api.get("org"), 401, "invalid_token")


def test_removed_member_token_stops_at_once(client, owner, member, make_token):
    raw = make_token(member)
    assert _projects(client, raw).status_code == 200
    services.membership_remove(membership=owner, target=member)
    assert_error(_projects(client, raw), 401, "invalid_token")


def test_a_token_never_grants_more_than_the_current_role(client, owner, member, make_token):
    api = Api(client, make_token(member), "acme")
    assert api.post("project-list", data={"name": "First"}).status_code == 201
    services.membership_change_role(membership=owner, target=member, role="viewer")
    assert_error(api.post("project-list", data={"name": "Second"}), 403, "permission_denied")
    assert api.get("project-list").status_code == 200  # a viewer still reads
    assert not Project.objects.filter(name="Second").exists()
    services.membership_change_role(
        membership=owner, target=Membership.objects.get(pk=member.pk), role="admin"
    )
    assert api.get("audit-list").status_code == 200  # promoted: the same token reads the log


def test_token_of_one_organization_is_404_on_another(client, member, outsider, make_token):
    raw = make_token(member)
    assert_error(_projects(client, raw, slug=outsider.organization.slug), 404, "not_found")
    assert_error(_projects(client, raw, slug="no-such-org"), 404, "not_found")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer hgm_nope_nope", "Bearer not-a-token", "Bearer hgm__"],
)
def test_malformed_or_unknown_tokens_are_401(client, org, header):
    response = client.get(
        reverse("api:project-list", args=["acme"]), headers={"Authorization": header}
    )
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_no_credentials_is_401_even_for_unknown_organizations(client, db):
    response = client.get(reverse("api:project-list", args=["nobody"]))
    assert_error(response, 401, "not_authenticated")


def test_session_reads_and_writes_with_csrf(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    url = reverse("api:project-list", args=["acme"])
    assert browser.get(url).status_code == 200
    body = json.dumps({"name": "From the browser"})
    refused = browser.post(url, body, content_type="application/json")
    error = assert_error(refused, 403, "permission_denied")
    assert "CSRF" in error["message"]
    browser.get(reverse("accounts:tokens", args=["acme"]))  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        url, body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201, accepted.content


def test_session_of_a_non_member_is_404(client, outsider):
    client.force_login(outsider.user)
    assert_error(client.get(reverse("api:project-list", args=["acme"])), 404, "not_found")


def test_a_created_token_is_shown_once(client, member, make_token):
    api = Api(client, make_token(member), "acme")
    created = api.post("token-list", data={"name": "nightly", "expires_in_days": 30})
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    secret = created.json()["token"]
    assert secret.startswith("hgm_")
    listed = api.get("token-list").json()["results"]
    assert all("token" not in t for t in listed)
    assert secret not in json.dumps(listed)
    assert Api(client, secret, "acme").get("org").status_code == 200


def test_token_create_validates(client, member, make_token, settings):
    api = Api(client, make_token(member), "acme")
    error = assert_error(
        api.post("token-list", data={"name": "x", "expires_in_days": 9999}), 400, "invalid"
    )
    assert "expires_in_days" in error["fields"]
    error = assert_error(api.post("token-list", data={}), 400, "invalid")
    assert "name" in error["fields"]


# --- throttling ------------------------------------------------------------------------------


def _fresh_ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_token_throttle_answers_429_with_retry_after(client, member, make_token, settings):
    settings.API_THROTTLE_TOKEN = "3/min"
    raw = make_token(member)
    token = ApiToken.objects.get(user=member.user)
    cache.delete(f"throttle_token_t{token.pk}")
    ip = _fresh_ip()
    for _ in range(3):
        assert _projects(client, raw, REMOTE_ADDR=ip).status_code == 200
    response = _projects(client, raw, REMOTE_ADDR=ip)
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    # The budget is per token: another token of the same person still gets through.
    assert _projects(client, make_token(member, "second"), REMOTE_ADDR=ip).status_code == 200


def test_ip_throttle_comes_before_authentication(client, db, settings):
    settings.API_THROTTLE_IP = "2/min"
    ip = _fresh_ip()
    cache.delete(f"throttle_ip_{ip}")
    url = reverse("api:project-list", args=["acme"])
    bad = {"Authorization": "Bearer hgm_guess_guess"}
    for _ in range(2):
        assert client.get(url, headers=bad, REMOTE_ADDR=ip).status_code == 401
    response = client.get(url, headers=bad, REMOTE_ADDR=ip)
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert client.get(url, headers=bad, REMOTE_ADDR=_fresh_ip()).status_code == 401


def test_unsupported_methods_are_405_in_the_error_shape(client, member, make_token):
    api = Api(client, make_token(member), "acme")
    assert_error(api.call("PUT", api.url("project-list"), {}), 405, "method_not_allowed")
    assert_error(api.call("OPTIONS", api.url("project-list")), 405, "method_not_allowed")
    assert api.call("HEAD", api.url("project-list")).status_code == 200


def test_a_view_cannot_drop_the_scope_or_forget_a_permission():
    from accounts.tenancy.api import OrganizationAPIView

    with pytest.raises(TypeError, match="get_queryset"):

        class Unscoped(OrganizationAPIView):
            def get_queryset(self):
                return Project.objects.all()

    with pytest.raises(TypeError, match="no entry in permissions"):

        class Unguarded(OrganizationAPIView):
            permissions = {"GET": "project.view"}

            def post(self, request, *args, **kwargs):
                return None

    with pytest.raises(TypeError, match="not an action"):

        class Misspelled(OrganizationAPIView):
            permissions = {"GET": "project.veiw"}
