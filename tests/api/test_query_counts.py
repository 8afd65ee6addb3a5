"""Every list endpoint answers with the same number of queries for 3 rows as for 30, and
paginates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import record_event
from accounts.models import ApiToken, WebhookDelivery, WebhookEndpoint
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


class Rows:
    """Grows every list of one organization to ``n`` rows."""

    def __init__(self, owner):
        self.org = owner.organization
        self.project = Project.objects.create(organization=self.org, name="Big")
        self.batch = Batch.objects.create(project=self.project, engine="warp")
        self.tag = Tag.objects.create(organization=self.org, name="t")
        common = {"organization": self.org, "duration": 1.0, "bytes": 1, "sha256": "0" * 64}
        self.avatar = Asset.objects.create(kind="avatar", file="a.mp4", original_name="a", **common)
        self.audio = Asset.objects.create(kind="audio", file="b.wav", original_name="b", **common)
        self.webhook = WebhookEndpoint.objects.create(
            organization=self.org, url="https://93.184.216.34/", events=["job.failed"], secret="s"
        )
        self.n = 0

    def grow(self, total: int) -> None:
        org, add = self.org, total - self.n
        for i in range(self.n, total):
            MembershipFactory(organization=org, role="member")
            project = Project.objects.create(organization=org, name=f"P{i}")
            batch = Batch.objects.create(project=project, engine="warp", name=f"B{i}")
            batch.tags.add(self.tag)
            job = RenderJob.objects.create(
                batch=self.batch, avatar=self.avatar, audio=self.audio, engine="warp",
                status="succeeded" if i % 2 else "running", frames_done=1, frames_total=2,
            )  # fmt: skip
            Output.objects.create(
                job=job, file=f"o{job.pk}.mp4", name=f"o{i}.mp4", bytes=1, sha256="0" * 64,
                crc32=0, duration=1.0, width=2, height=2,
            )  # fmt: skip
            Asset.objects.create(
                organization=org, kind="audio", file=f"x{i}.wav", original_name=f"x{i}",
                duration=1.0, bytes=1, sha256=f"{i + 1:064x}",
            )  # fmt: skip
            Export.objects.create(
                organization=org, scope="batch", scope_key=f"batch:{batch.pk}", batch=batch,
                label="x", status="ready",
            )  # fmt: skip
            ApiToken.objects.create(
                organization=org, user=org.memberships.first().user, name=f"t{i}",
                prefix=f"p{org.pk}x{i}", token_hash=f"{org.pk}-{i}-".ljust(64, "x"),
            )  # fmt: skip
            WebhookEndpoint.objects.create(
                organization=org, url=f"https://93.184.216.34/{i}", events=["job.failed"],
                secret="s",
            )  # fmt: skip
            WebhookDelivery.objects.create(
                endpoint=self.webhook, organization=org, event="job.failed", payload={}
            )
            record_event(organization=org, action="batch.submitted")
        self.n += add


LISTS = [
    ("member-list", lambda r: ()),
    ("token-list", lambda r: ()),
    ("audit-list", lambda r: ()),
    ("webhook-list", lambda r: ()),
    ("webhook-deliveries", lambda r: (r.webhook.pk,)),
    ("project-list", lambda r: ()),
    ("asset-list", lambda r: ()),
    ("batch-list", lambda r: ()),
    ("batch-detail", lambda r: (r.batch.pk,)),
    ("output-list", lambda r: ()),
    ("export-list", lambda r: ()),
]


@pytest.mark.parametrize(("name", "args"), LISTS, ids=[n for n, _ in LISTS])
def test_constant_queries(api_as, owner, name, args):
    rows = Rows(owner)
    api = api_as(owner)
    api.get("org")  # the first request of a token records its last use: not part of the count

    def count(total: int) -> tuple[int, int]:
        rows.grow(total)
        with CaptureQueriesContext(connection) as queries:
            response = api.get(name, *args(rows), params={"limit": 200})
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        size = len(body["jobs"]) if name == "batch-detail" else len(body["results"])
        return len(queries), size

    small, small_rows = count(3)
    large, large_rows = count(30)
    assert large_rows > small_rows
    assert small == large, (
        f"{name}: {small} queries for {small_rows} rows, {large} for {large_rows}"
    )


def test_lists_paginate(api_as, owner):
    rows = Rows(owner)
    rows.grow(7)
    api = api_as(owner)
    first = api.get("project-list", params={"limit": 5}).json()
    assert first["count"] == 8 and len(first["results"]) == 5 and first["next"]
    second = api.call("GET", first["next"]).json()
    assert len(second["results"]) == 3 and second["next"] is None
    ids = {p["id"] for p in first["results"]} | {p["id"] for p in second["results"]}
    assert len(ids) == 8
