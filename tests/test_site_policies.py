"""Security headers on every page, and a clean 503 when the database goes away."""

import pytest
from django.db import OperationalError

from accounts.tenancy import pages as tenancy_pages

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


@pytest.mark.fault
def test_database_gone_gives_a_503_page_and_json(login, owner, monkeypatch):
    client = login(owner)

    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tenancy_pages, "membership_for", gone)
    page = client.get("/o/acme/members/")
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert b"Briefly unavailable" in page.content
    status = client.get("/o/acme/batches/1/status.json", HTTP_ACCEPT="application/json")
    assert status.status_code == 503
    assert status.json()["error"]["code"] == "service_unavailable"
    monkeypatch.undo()
    assert client.get("/o/acme/members/").status_code == 200  # and it recovers


class _DeadBroker:
    def ping(self):
        import redis

        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.mark.fault
def test_queue_down_refuses_submit_and_export_and_creates_nothing(
    member, make_outputs, upload, monkeypatch
):
    from django.core.exceptions import ValidationError
    from django.http import QueryDict

    from exports import services as export_services
    from exports.models import Export
    from exports.scope import scope_from_params
    from jobs import services
    from jobs.models import Batch, RenderJob

    project = services.project_create(membership=member, name="P")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    batch, _ = make_outputs(member, ["a.mp4"])
    monkeypatch.setattr("django_q.brokers.get_broker", lambda *a, **k: _DeadBroker())
    with pytest.raises(ValidationError, match="task queue cannot be reached"):
        services.batch_submit(membership=member, project=project, avatars=[avatar], audios=[audio])
    q = QueryDict(mutable=True)
    q["batch"] = str(batch.pk)
    with pytest.raises(ValidationError, match="task queue cannot be reached"):
        export_services.export_request(membership=member, scope=scope_from_params(member, q))
    assert not Batch.objects.filter(project=project).exists()
    assert not RenderJob.objects.filter(batch__project=project).exists()
    assert not Export.objects.exists()
