"""Security headers on every page, and a clean 503 when the database goes away."""

import pytest
from django.db import OperationalError

from accounts import tenancy

pytestmark = pytest.mark.django_db


def test_strict_content_security_policy(client, login, owner):
    response = login(owner).get("/o/acme/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("style-src-attr")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    # Pages carry no inline scripts, so the policy breaks nothing.
    assert "<script>" not in response.content.decode()


def test_database_gone_gives_a_503_page_and_json(login, owner, monkeypatch):
    client = login(owner)

    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tenancy, "membership_for", gone)
    page = client.get("/o/acme/members/")
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert b"Briefly unavailable" in page.content
    status = client.get("/o/acme/batches/1/status.json", HTTP_ACCEPT="application/json")
    assert status.status_code == 503
    assert status.json()["error"]["code"] == "service_unavailable"
    monkeypatch.undo()
    assert client.get("/o/acme/members/").status_code == 200  # and it recovers
