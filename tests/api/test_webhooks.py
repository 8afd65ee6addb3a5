"""Webhooks: URL checks, signed deliveries to a real receiver on loopback, retries through
django-q2 schedules, the events the services emit, and the admin pages."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from accounts import services as account_services
from accounts import webhooks
from accounts.models import WebhookDelivery, WebhookEndpoint
from exports import services as export_services
from heygem_client.webhooks import verify as client_verify
from jobs.models import RenderJob
from jobs.services import rendering
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers with the next
    scripted status (200 once the script runs out)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/heygem?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        return [r["headers"]["X-HeyGem-Event"] for r in self.requests]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver lives on loopback
    with Receiver() as r:
        yield r


def _endpoint(admin, url, events=tuple(webhooks.EVENTS)):
    return webhooks.webhook_endpoint_create(membership=admin, url=url, events=events)


# --- URL checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "not a url",
        "https://user:pw@93.184.216.34/",
        "https://93.184.216.34/#frag",
    ],
)
def test_unsafe_urls_are_refused(admin, url):
    with pytest.raises(ValidationError) as caught:
        _endpoint(admin, url)
    assert "url" in caught.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_api_refuses_loopback_unless_allowed(api_as, admin, settings):
    api = api_as(admin)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["batch.completed"]}
    error = assert_error(api.post("webhook-list", data=body), 400, "invalid")
    assert "loopback" in error["fields"]["url"][0]
    assert (
        api.post("webhook-list", data={**body, "url": "https://93.184.216.34/h"}).status_code == 201
    )
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert api.post("webhook-list", data=body).status_code == 201
    error = assert_error(api.post("webhook-list", data={**body, "events": ["nope"]}), 400)
    assert "events" in error["fields"]


def test_the_secret_is_shown_once(api_as, admin):
    api = api_as(admin)
    created = api.post(
        "webhook-list", data={"url": "https://93.184.216.34/h", "events": ["export.ready"]}
    )
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    pk = created.json()["id"]
    assert "secret" not in api.get("webhook-detail", pk).json()
    assert secret not in api.get("webhook-list").content.decode()
    rotated = api.post("webhook-rotate-secret", pk).json()["secret"]
    assert rotated != secret and WebhookEndpoint.objects.get(pk=pk).secret == rotated


# --- delivery, signature, retry --------------------------------------------------------------


def _run_due_schedules():
    """What a qcluster's scheduler does every few seconds (tasks run inline in tests)."""
    from django_q.scheduler import scheduler

    scheduler()


def test_signed_delivery_retried_after_a_500(
    api_as, admin, org, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([500]) as receiver:
        created = api_as(admin).post(
            "webhook-list", data={"url": receiver.url, "events": ["batch.completed"]}
        )
        secret = created.json()["secret"]
        with django_capture_on_commit_callbacks(execute=True):
            sent = webhooks.webhook_emit(
                organization_id=org.pk, event="batch.completed", payload={"batch": 7}
            )
        assert sent == 1
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending", 1, 500,
        )  # fmt: skip
        assert delivery.next_attempt_at > timezone.now()
        retry = Schedule.objects.get(func="accounts.tasks.deliver_webhook")
        assert retry.schedule_type == Schedule.ONCE and retry.args == str(delivery.pk)

        # Time passes: the scheduler hands the one-off schedule to a worker.
        past = timezone.now() - timedelta(seconds=1)
        Schedule.objects.filter(pk=retry.pk).update(next_run=past)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=past)
        _run_due_schedules()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        "delivered", 2, 200,
    )  # fmt: skip
    assert delivery.delivered_at and not delivery.last_error
    assert not Schedule.objects.filter(func="accounts.tasks.deliver_webhook").exists()
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first["body"] == second["body"]  # the same bytes on every attempt
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        timestamp = headers["X-HeyGem-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        assert headers["X-HeyGem-Signature"] == webhooks.signature_header(
            secret, int(timestamp), body
        )
        assert webhooks.verify_signature(
            secret=secret, body=body, header=headers["X-HeyGem-Signature"]
        )
        assert client_verify(secret, headers, body)
        assert not webhooks.verify_signature(
            secret="whsec_wrong", body=body, header=headers["X-HeyGem-Signature"]
        )
        assert not webhooks.verify_signature(
            secret=secret, body=body + b" ", header=headers["X-HeyGem-Signature"]
        )
        assert headers["X-HeyGem-Event"] == "batch.completed"
        assert headers["X-HeyGem-Delivery"] == str(delivery.key)
    event = json.loads(first["body"])
    assert event["type"] == "batch.completed" and event["data"] == {"batch": 7}
    assert event["organization"] == {"id": org.pk, "slug": "acme"}
    old = int(time.time()) - 3600
    stale = webhooks.signature_header(secret, old, first["body"])
    assert not webhooks.verify_signature(secret=secret, body=first["body"], header=stale)

    listed = api_as(admin).get("webhook-deliveries", created.json()["id"]).json()["results"]
    assert listed[0]["status"] == "delivered" and listed[0]["attempts"] == 2
    assert listed[0]["last_status_code"] == 200


def test_gives_up_after_the_last_attempt(admin, org, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with Receiver([503, 503, 503]) as receiver:
        _endpoint(admin, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={})
        delivery = WebhookDelivery.objects.get()
        assert webhooks.webhook_deliver(delivery_id=delivery.pk) == "skipped"  # not due yet
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert webhooks.webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.last_status_code == 503
    assert "gave up after 2 attempts" in delivery.last_error
    assert delivery.next_attempt_at is None
    assert len(receiver.requests) == 2


def test_backoff_grows():
    delays = [webhooks.retry_delay(n).total_seconds() for n in range(1, 7)]
    assert delays == sorted(delays) and delays[0] == 30 and delays[-1] <= 6 * 3600


def test_a_destination_that_turned_private_is_not_contacted(
    admin, org, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        _endpoint(admin, receiver.url)
        settings.WEBHOOK_ALLOW_PRIVATE = False
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "loopback" in delivery.last_error
    assert receiver.requests == []


def test_redirects_are_not_followed(admin, org, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([302]) as receiver:
        _endpoint(admin, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code == 302 and "redirects are not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_the_sweeper_sends_what_a_lost_task_left(admin, org, receiver):
    _endpoint(admin, receiver.url)
    webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={})  # not sent:
    assert receiver.requests == []  # the test transaction never commits, so nothing was queued
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert webhooks.webhook_deliver_due() == 1
    assert WebhookDelivery.objects.get().status == "delivered"
    assert receiver.events() == ["job.failed"]


def test_only_subscribed_active_endpoints_get_events(admin, org, receiver):
    _endpoint(admin, receiver.url, events=["export.ready"])
    paused, _ = _endpoint(admin, receiver.url)
    webhooks.webhook_endpoint_update(membership=admin, endpoint=paused, is_active=False)
    assert webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={}) == 0
    assert webhooks.webhook_emit(organization_id=org.pk, event="export.ready", payload={}) == 1
    with pytest.raises(ValueError):
        webhooks.webhook_emit(organization_id=org.pk, event="made.up", payload={})


def test_emit_never_breaks_the_caller(admin, org, receiver, monkeypatch):
    _endpoint(admin, receiver.url)

    def broken(*args, **kwargs):
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(WebhookDelivery.objects, "create", broken)
    assert webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={}) == 0
    assert WebhookEndpoint.objects.count() == 1  # the surrounding transaction still works


# --- what the services emit ------------------------------------------------------------------


def _bodies(receiver, event):
    return [
        json.loads(r["body"]) for r in receiver.requests if json.loads(r["body"])["type"] == event
    ]


def test_batch_completed_and_job_failed(
    admin, member, org, receiver, make_outputs, django_capture_on_commit_callbacks
):
    _endpoint(admin, receiver.url)
    batch, (output,) = make_outputs(member, ["ok"])
    job = RenderJob.objects.create(
        batch=batch, avatar=output.job.avatar, audio=output.job.audio, engine="warp",
        status="running",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        rendering._finish(job.pk, RenderJob.Status.FAILED, "The audio has no sound.")
    assert receiver.events() == ["job.failed", "batch.completed"]
    (failed,) = _bodies(receiver, "job.failed")
    assert failed["data"] == {"job": job.pk, "batch": batch.pk, "error": "The audio has no sound."}
    (completed,) = _bodies(receiver, "batch.completed")
    assert (
        completed["data"]["batch"] == batch.pk and completed["data"]["project"] == batch.project_id
    )
    assert completed["data"]["counts"] == {"succeeded": 1, "failed": 1}
    assert completed["data"]["status"] == "partial" and completed["data"]["total"] == 2


def test_export_ready_and_failed(
    admin, member, owner, org, receiver, make_outputs, django_capture_on_commit_callbacks
):
    from exports.scope import scope_from_params

    _endpoint(admin, receiver.url, events=["export.ready", "export.failed"])
    batch, _ = make_outputs(member, ["a", "b"])
    scope = scope_from_params(member, {"batch": [batch.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = export_services.export_request(membership=member, scope=scope)
    (ready,) = _bodies(receiver, "export.ready")
    assert ready["data"]["export"] == export.pk and ready["data"]["file_count"] == 2
    assert ready["data"]["zip_bytes"] > 0
    assert ready["data"]["download"].endswith(
        reverse("api:export-download", args=["acme", export.pk])
    )

    other, _ = make_outputs(member, ["c"], project=batch.project)
    scope = scope_from_params(member, {"batch": [other.pk]})
    export, _ = export_services.export_request(membership=member, scope=scope)
    account_services.membership_remove(membership=owner, target=member)
    with django_capture_on_commit_callbacks(execute=True):
        export_services.build_export(export_id=export.pk)
    (failed,) = _bodies(receiver, "export.failed")
    assert failed["data"]["export"] == export.pk and "no longer allowed" in failed["data"]["reason"]


# --- the admin pages -------------------------------------------------------------------------


def test_pages_list_add_show_secret_deliveries_and_remove(login, admin, org, receiver):
    client = login(admin)
    page = client.get(reverse("accounts:webhooks", args=["acme"]))
    assert page.status_code == 200 and b"No webhooks yet" in page.content
    added = client.post(
        reverse("accounts:webhook_create", args=["acme"]),
        {"url": receiver.url, "description": "farm bot", "events": ["job.failed"]},
    )
    assert added.status_code == 200 and added["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.encode() in added.content
    webhooks.webhook_emit(organization_id=org.pk, event="job.failed", payload={})
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    webhooks.webhook_deliver_due()
    listing = client.get(reverse("accounts:webhooks", args=["acme"]))
    assert endpoint.secret.encode() not in listing.content
    assert b"farm bot" in listing.content and b"Delivered" in listing.content
    detail = client.get(reverse("accounts:webhook", args=["acme", endpoint.pk]))
    assert b"HTTP 200" in detail.content and endpoint.secret.encode() not in detail.content
    paused = client.post(reverse("accounts:webhook_toggle", args=["acme", endpoint.pk]))
    assert paused.status_code == 302 and not WebhookEndpoint.objects.get().is_active
    rotated = client.post(reverse("accounts:webhook_rotate", args=["acme", endpoint.pk]))
    assert WebhookEndpoint.objects.get().secret.encode() in rotated.content
    removed = client.post(reverse("accounts:webhook_delete", args=["acme", endpoint.pk]))
    assert removed.status_code == 302 and not WebhookEndpoint.objects.exists()


def test_page_shows_why_a_url_was_refused(login, admin):
    client = login(admin)
    response = client.post(
        reverse("accounts:webhook_create", args=["acme"]),
        {"url": "http://127.0.0.1/x", "events": ["job.failed"]},
    )
    assert response.status_code == 400 and b"loopback" in response.content
    assert not WebhookEndpoint.objects.exists()


def test_members_cannot_see_webhook_pages(login, member, admin, receiver):
    endpoint, _ = _endpoint(admin, receiver.url)
    client = login(member)
    assert client.get(reverse("accounts:webhooks", args=["acme"])).status_code == 403
    assert client.get(reverse("accounts:webhook", args=["acme", endpoint.pk])).status_code == 403


def test_api_sends_a_test_event_and_lists_its_delivery(
    api_as, admin, receiver, django_capture_on_commit_callbacks
):
    endpoint, _secret = _endpoint(admin, receiver.url, events=["batch.completed"])
    api = api_as(admin)
    with django_capture_on_commit_callbacks(execute=True):
        sent = api.post("webhook-test", endpoint.pk)
    assert sent.status_code == 202, sent.content
    body = sent.json()
    assert body["event"] == "ping"
    (request,) = receiver.requests
    assert json.loads(request["body"])["type"] == "ping"
    listed = api.get("webhook-deliveries", endpoint.pk).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(d["event"], d["status"]) for d in rows] == [("ping", "delivered")]
    again = api.post("webhook-test", endpoint.pk)
    assert "A test event was just sent" in assert_error(again, 400)["message"]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
