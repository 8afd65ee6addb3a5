"""Every list page answers with the same number of queries for 5 rows as for 500, and
paginates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import record_event
from accounts.models import ApiToken, Membership
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class World:
    def __init__(self, owner):
        self.owner = owner
        self.org = owner.organization
        self.project = Project.objects.create(organization=self.org, name="Big")
        self.batch = Batch.objects.create(project=self.project, engine="warp")
        self.tag = Tag.objects.create(organization=self.org, name="x")
        self.batch.tags.add(self.tag)
        common = {"organization": self.org, "duration": 1.0, "bytes": 1, "sha256": "0" * 64}
        self.avatar = Asset.objects.create(
            kind="avatar", file="a.mp4", original_name="a.mp4", **common
        )
        self.audio = Asset.objects.create(
            kind="audio", file="b.wav", original_name="b.wav", **common
        )
        self.n = 0

    def grow(self, total: int) -> None:
        """Bring every list to ``total`` rows."""
        add = total - self.n
        org, i0 = self.org, self.n
        Project.objects.bulk_create(
            Project(organization=org, name=f"P{i0 + i}") for i in range(add)
        )
        batches = Batch.objects.bulk_create(
            Batch(project=self.project, engine="warp", name=f"B{i0 + i}") for i in range(add)
        )
        Batch.tags.through.objects.bulk_create(
            Batch.tags.through(batch_id=b.pk, tag_id=self.tag.pk) for b in batches
        )
        jobs = RenderJob.objects.bulk_create(
            RenderJob(
                batch=self.batch,
                number=i0 + i + 1,
                avatar=self.avatar,
                audio=self.audio,
                engine="warp",
                status=["succeeded", "running", "failed", "queued"][i % 4],
                frames_done=5,
                frames_total=10,
            )
            for i in range(add)
        )
        Output.objects.bulk_create(
            Output(
                job=j,
                file=f"o{j.pk}.mp4",
                thumbnail=f"o{j.pk}.jpg",
                name=f"o{j.pk}.mp4",
                bytes=10,
                sha256="0" * 64,
                crc32=0,
                duration=1.0,
                width=2,
                height=2,
            )
            for j in jobs
            if j.status == "succeeded"
        )
        Export.objects.bulk_create(
            Export(
                organization=org,
                scope="batch",
                scope_key=f"k{i0 + i}",
                label=f"E{i0 + i}",
                status="ready",
                batch=self.batch,
                project=self.project,
            )
            for i in range(add)
        )
        users = [UserFactory.build(email=f"m{i0 + i}@acme.test") for i in range(add)]
        for user in users:
            user.password = "!"
        users = type(users[0]).objects.bulk_create(users) if users else []
        Membership.objects.bulk_create(
            Membership(user=u, organization=org, role="viewer") for u in users
        )
        ApiToken.objects.bulk_create(
            ApiToken(
                organization=org, user=u, name="t", prefix=f"p{u.pk:07d}", token_hash=f"{u.pk:064d}"
            )
            for u in users
        )
        for i in range(add):
            record_event(organization=org, action=f"demo.e{i % 3}", actor=self.owner.user)
        self.n = total


PAGES = {
    "projects": lambda w: "/o/acme/projects/",
    "batches of a project": lambda w: f"/o/acme/projects/{w.project.pk}/",
    "results by tag": lambda w: f"/o/acme/projects/{w.project.pk}/?tag=x",
    "jobs and outputs of a batch": lambda w: f"/o/acme/batches/{w.batch.pk}/",
    "live batch status": lambda w: f"/o/acme/batches/{w.batch.pk}/status.json",
    "exports": lambda w: "/o/acme/exports/",
    "members": lambda w: "/o/acme/members/",
    "tokens": lambda w: "/o/acme/tokens/",
    "audit log": lambda w: "/o/acme/audit/",
    "notifications": lambda w: "/o/acme/notifications/",
    # The other code paths of the pages above: a later page (cut by seq, not OFFSET), a
    # filtered log (plain pagination), a later page of jobs and of their live status.
    "audit log, page 3": lambda w: "/o/acme/audit/?page=3",
    "audit log, filtered": lambda w: "/o/acme/audit/?action=demo&page=2",
    "jobs of a batch, page 3": lambda w: f"/o/acme/batches/{w.batch.pk}/?page=3",
    "live batch status, page 3": lambda w: f"/o/acme/batches/{w.batch.pk}/status.json?page=3",
}


def test_list_pages_run_a_constant_number_of_queries(login, owner, other_org):
    world = World(owner)
    client = login(owner)
    counts: dict[str, list[int]] = {name: [] for name in PAGES}
    for total in (5, 500):
        world.grow(total)
        for name, url in PAGES.items():
            client.get(url(world))  # warm the session and caches
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url(world))
            assert response.status_code == 200, (name, response.status_code)
            counts[name].append(len(queries))
    grows = {name: c for name, c in counts.items() if c[0] != c[1]}
    assert not grows, f"query counts grow with rows (5 rows, 500 rows): {grows}"


@pytest.mark.parametrize(
    ("url", "context_key", "per_page"),
    [
        ("/o/acme/projects/", "page", 25),
        ("/o/acme/exports/", "page", 25),
        ("/o/acme/members/", "page", 50),
        ("/o/acme/tokens/", "page", 50),
        ("/o/acme/audit/", "page", 50),
    ],
)
def test_list_pages_paginate(login, owner, url, context_key, per_page):
    world = World(owner)
    world.grow(120)
    response = login(owner).get(url)
    page = response.context[context_key]
    assert len(page.object_list) == per_page and page.paginator.num_pages > 1
    assert "Next →" in response.content.decode()


def test_batch_page_paginates_its_jobs(login, owner):
    world = World(owner)
    world.grow(120)
    response = login(owner).get(f"/o/acme/batches/{world.batch.pk}/", {"page": 3})
    assert len(response.context["jobs"]) == 20
    status = login(owner).get(f"/o/acme/batches/{world.batch.pk}/status.json", {"page": 3}).json()
    assert status["total"] == 120 and len(status["jobs"]) == 20


def test_pages_show_the_rows_plain_queries_give(login, owner):
    """The shortcuts behind the pages (the audit log cut by seq and counted by its chain head,
    job counts for one page of batches, the batch's total reused by its paginator) show the
    same rows and numbers as the plain queries."""
    from accounts.models import AuditEvent

    world = World(owner)
    world.grow(120)
    client = login(owner)
    seqs = list(
        AuditEvent.objects.filter(organization=world.org)
        .order_by("-seq")
        .values_list("seq", flat=True)
    )
    for asked, shown in [("1", 1), ("2", 2), ("3", 3), ("99", 3), ("x", 1)]:
        page = client.get("/o/acme/audit/", {"page": asked}).context["page"]
        assert page.number == shown and page.paginator.count == len(seqs)
        assert [e.seq for e in page.object_list] == seqs[(shown - 1) * 50 : shown * 50]
    filtered = list(
        AuditEvent.objects.filter(organization=world.org, action__startswith="demo.")
        .order_by("-seq")
        .values_list("seq", flat=True)
    )
    page = client.get("/o/acme/audit/", {"action": "demo", "page": 2}).context["page"]
    assert page.paginator.count == len(filtered) == 120
    assert [e.seq for e in page.object_list] == filtered[50:100]

    Batch.objects.filter(pk=world.batch.pk).update(
        project=Project.objects.create(organization=world.org, name="Other")
    )  # the 120 jobs' batch elsewhere: the 120 empty batches fill the project's pages
    RenderJob.objects.filter(pk__in=RenderJob.objects.values("pk")[:7]).update(
        batch=Batch.objects.filter(project=world.project).order_by("-created_at").first()
    )
    expected = {b.pk: b for b in Batch.objects.filter(project=world.project).with_counts()}
    for number in (1, 2):
        response = client.get(f"/o/acme/projects/{world.project.pk}/", {"page": number})
        for batch in response.context["batches"]:
            plain = expected[batch.pk]
            assert batch.status == plain.status
            assert [batch.jobs_total, batch.jobs_succeeded, batch.jobs_failed] == [
                plain.jobs_total,
                plain.jobs_succeeded,
                plain.jobs_failed,
            ]
            assert [t.name for t in batch.tag_list] == [t.name for t in plain.tags.all()]
    moved = Batch.objects.exclude(project=world.project).get()
    page = client.get(f"/o/acme/batches/{moved.pk}/", {"page": 3}).context["page"]
    assert page.paginator.count == moved.jobs.count() == 113 and page.paginator.num_pages == 3
    assert len(page.object_list) == 13
