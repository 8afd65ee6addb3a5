"""Helpers for the REST API tests: a token client, the error-shape check, a world of objects
for each organization, a tiny WAV upload."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import ApiToken, Membership, Organization, WebhookDelivery, WebhookEndpoint
from accounts.permissions import Role
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob
from tests.factories import MembershipFactory
from tests.worlds import jobs_world, token_for


class Api:
    """The Django test client speaking to /api/v1/orgs/<slug>/… with a Bearer token."""

    def __init__(self, client, token: str | None, slug: str) -> None:
        self.client, self.token, self.slug = client, token, slug

    def url(self, name: str, *args) -> str:
        return reverse(f"api:{name}", args=[self.slug, *args])

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def call(self, method: str, path: str, data=None, *, multipart=False, headers=None, **kw):
        send = getattr(self.client, method.lower())
        if method == "GET":
            return send(path, data or {}, headers=self.headers(headers), **kw)
        if multipart:
            return send(path, data or {}, headers=self.headers(headers), **kw)
        body = json.dumps(data) if data is not None else ""
        return send(
            path, body, content_type="application/json", headers=self.headers(headers), **kw
        )

    def get(self, name, *args, params=None, **kw):
        return self.call("GET", self.url(name, *args), params, **kw)

    def post(self, name, *args, data=None, **kw):
        return self.call("POST", self.url(name, *args), data, **kw)

    def patch(self, name, *args, data=None, **kw):
        return self.call("PATCH", self.url(name, *args), data, **kw)

    def delete(self, name, *args, **kw):
        return self.call("DELETE", self.url(name, *args), **kw)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The one error shape: {"error": {"code", "message", "fields"}}."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def wav_upload(name: str = "tone.wav", seconds: float = 0.5) -> SimpleUploadedFile:
    """A short tone as a WAV upload, written with the standard library."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        frames = int(16000 * seconds)
        w.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(frames))
        )
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="audio/wav")


def srt_upload(name: str = "new.srt") -> SimpleUploadedFile:
    """Subtitles for the worlds' one-second audio."""
    body = "1\n00:00:00,100 --> 00:00:00,900\nHello there\n"
    return SimpleUploadedFile(name, body.encode(), content_type="application/x-subrip")


def sheet_upload(name: str = "sheet.csv") -> SimpleUploadedFile:
    """A one-row batch sheet for the worlds' avatar (a.mp4), speaking a script."""
    body = "avatar,script,output name\na.mp4,Hello there.,greeting\n"
    return SimpleUploadedFile(name, body.encode(), content_type="text/csv")


@dataclass
class World:
    """One organization's objects that the API calls act on."""

    org: Organization
    target: Membership  # a viewer, to change or remove
    colleague: Membership
    own_token: ApiToken | None  # a second token of the acting member (not the one in use)
    other_token: ApiToken  # the colleague's
    project: Project
    avatar: Asset
    audio: Asset
    batch: Batch
    queued_job: RenderJob
    failed_job: RenderJob
    done_job: RenderJob
    output: Output
    export: Export
    spare_audio: Asset
    webhook: WebhookEndpoint
    delivery: WebhookDelivery


def build_world(org: Organization, acting: Membership | None = None) -> World:
    target = MembershipFactory(organization=org, role=Role.VIEWER)
    colleague = MembershipFactory(organization=org, role=Role.MEMBER)
    rows = jobs_world(org)
    webhook = WebhookEndpoint.objects.create(
        organization=org, url="https://93.184.216.34/hook", events=["batch.completed"],
        secret="whsec_test",
    )  # fmt: skip
    delivery = WebhookDelivery.objects.create(
        endpoint=webhook, organization=org, event="batch.completed", payload={"id": "evt_1"},
        status="delivered", attempts=1, last_status_code=200,
    )  # fmt: skip
    return World(
        org=org, target=target, colleague=colleague,
        own_token=token_for(acting, "mine") if acting else token_for(target, "theirs-too"),
        other_token=token_for(colleague, "theirs"),
        webhook=webhook, delivery=delivery, **rows,
    )  # fmt: skip
