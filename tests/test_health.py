"""/healthz and /readyz: what a load balancer asks an instance, on both stacks."""

import json

import pytest
from django.db import OperationalError, connection

CHECKS = {"database", "cache", "queue", "media", "bundles"}
# The way a load balancer reaches an instance: by its address, over plain HTTP.
PROBE = {"HTTP_HOST": "10.0.0.7:8000"}


def _probe(client, path="/readyz", method="get"):
    response = getattr(client, method)(path, **PROBE)
    body = json.loads(response.content) if response.content else None
    return response, body


@pytest.fixture
def production_like(settings):
    """Host checks and the HTTPS redirect of production: the probes must not hit them."""
    settings.ALLOWED_HOSTS = ["heygem.example.com"]
    settings.SECURE_SSL_REDIRECT = True


@pytest.mark.django_db
def test_liveness_answers_without_touching_the_database(
    client, production_like, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response, body = _probe(client, "/healthz")
    assert response.status_code == 200
    assert body == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert "sessionid" not in response.cookies
    # The same request to a page is refused by the host check: the probe comes first.
    assert client.get("/login/", **PROBE).status_code == 400


@pytest.mark.django_db
def test_readiness_tries_every_dependency(client, production_like):
    response, body = _probe(client)
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    for name, result in body["checks"].items():
        assert result["ok"] is True, name
        assert result["ms"] >= 0


@pytest.mark.django_db
def test_head_gives_the_status_without_a_body(client):
    response = client.head("/readyz", **PROBE)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_other_methods_are_refused(client, path):
    response, body = _probe(client, path, "post")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert body["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db(transaction=True)
def test_database_gone_is_not_ready_and_recovers(client, monkeypatch):
    secret = "password=hunter2 host=db.internal"

    def refuse(*args, **kwargs):
        raise OperationalError(f"could not connect: {secret}")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        response, body = _probe(client)
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {
        "ok": False,
        "error": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert secret not in response.content.decode()  # the kind of error only, never its text
    assert body["checks"]["media"]["ok"] is True  # the other checks still ran

    response, body = _probe(client)  # the database is back
    assert response.status_code == 200, body


@pytest.mark.django_db
def test_queue_down_is_not_ready(client, monkeypatch):
    class Down:
        def ping(self):
            raise ConnectionError("redis://:secret@10.0.0.9:6379/0 refused")

    import django_q.brokers

    monkeypatch.setattr(django_q.brokers, "get_broker", lambda *a, **k: Down())
    response, body = _probe(client)
    assert response.status_code == 503
    assert body["checks"]["queue"]["ok"] is False
    assert body["checks"]["queue"]["error"] == "ConnectionError"
    assert "secret" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.local_storage
def test_media_folder_that_cannot_be_written_is_not_ready(client, settings, tmp_path):
    blocked = tmp_path / "file-in-the-way"
    blocked.write_text("not a folder")
    settings.MEDIA_ROOT = blocked / "media"
    response, body = _probe(client)
    assert response.status_code == 503
    assert body["checks"]["media"]["ok"] is False
    assert body["checks"]["bundles"]["ok"] is True


@pytest.mark.django_db
@pytest.mark.local_storage
def test_a_fresh_install_without_media_folders_yet_is_ready(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "not-yet" / "media"
    settings.EXPORT_ROOT = tmp_path / "not-yet" / "exports"
    response, body = _probe(client)
    assert response.status_code == 200, body


@pytest.mark.django_db
def test_missing_buckets_are_not_ready(client, settings, s3_media):
    response, body = _probe(client)
    assert response.status_code == 200, body  # both buckets there

    settings.MEDIA_S3_BUCKET = "no-such-bucket-media"
    response, body = _probe(client)
    assert response.status_code == 503
    assert body["checks"]["media"] == {
        "ok": False,
        "error": "ClientError",
        "ms": body["checks"]["media"]["ms"],
    }
    assert body["checks"]["bundles"]["ok"] is True

    settings.EXPORT_S3_BUCKET = "no-such-bucket-bundles"
    response, body = _probe(client)
    assert body["checks"]["bundles"]["ok"] is False
