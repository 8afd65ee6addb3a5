"""Benchmark: the dashboard's main pages under 50 concurrent clients, served by gunicorn.

One command builds a throwaway installation, fills it, serves it, measures it and removes it:

1. a temp ``VAR_DIR`` (SQLite by default; ``--database-url postgres://…/bench_pages`` creates
   that database, runs ANALYZE after the seed, and drops it at the end), ``manage.py migrate``
   and ``createcachetable``, with DJANGO_ENV=development, DEBUG=false, ALLOWED_HOSTS=127.0.0.1;
2. a seed through the ORM in a child process (bulk inserts, ~5 s): one organization with an
   owner (random password, logged in through the real form), 30 members, 3 invitations, 12 API
   tokens, 20 projects, ``--jobs`` render jobs in batches of 50 plus one batch of 1,000 (the
   most a batch may hold), mostly succeeded (each with an Output row; the files are fake, all
   thumbnails point at one tiny JPEG), the last tenth of the batches still running (queued /
   running / failed jobs), 8 tags, 100 exports, 60 notifications and 5,000 audit events (a
   hash chain built like ``record_event`` does, checked with ``manage.py verify_audit``); plus
   two organizations with the same shapes: "tiny" (a handful of rows) and "page" (one full
   page of every list);
3. the constant-query check, in-process (``django.test.Client`` and ``CaptureQueriesContext``
   on the same database, one thread): each page's query count in the three organizations
   (equal, or the page is flagged with its repeated statements); each SELECT re-run alone,
   best of 15, and those >= 2.5x slower with the seeded rows than with one page of them named
   (time that grows with the table, not with the page); and for the seeded organization each
   page's size, ``reverse()`` calls and time, split into SQL, template rendering and the rest;
4. ``gunicorn heygem_site.wsgi`` on 127.0.0.1 (a free port), a login (GET the form for the CSRF
   cookie, POST the credentials), a preflight (every page answers 200 to the session), one
   client alone (the service time of each page, without queueing), then ``--clients`` threads
   cycling through the pages (org home, projects, a project, a batch, its status.json,
   exports, an export, members, tokens, audit log pages 1 and 5, notifications) twice:
   a. capacity: without pauses for ``--saturation-seconds``: 50 requests always in flight, so
      latency is clients / throughput (Little's law): it measures throughput;
   b. the measured run: each client is a person who reads a page before the next click, a
      pause of ``--think`` seconds on average (uniform between 0 and twice that; ``--think 0``
      makes this run pause-free too), for ``--warmup`` (not counted) plus ``--seconds``;
   at most ``--max-requests`` requests each;
5. per run and page: count, p50, p95, p99, max, errors (non-2xx/3xx, a redirect to the login
   page, or an exception); throughput; each client's own mean latency (fairness); the CPU used
   by gunicorn (per request), by this load generator and by the rest of the machine in the
   window (the machine is shared: read that line before the figures). LAST line:
   ``pages p95 ms: N`` (the p95 of all requests of the measured run, in ms). Goal: < 100 ms on
   the 2-core machine.

Server: ``--worker-class sync --workers 2*cores+1`` (gunicorn's rule; 5 here). The app is
CPU-bound (SQLite in-process, ~5-16 ms of Python per page on this VM), so threads add no
throughput, and a sync worker accepts a connection only when it is free: the kernel's accept
queue hands requests out first come, first served, as behind a buffering reverse proxy (nginx
opens one upstream connection per request), so the tail is queueing, not bad luck. With
``--worker-class gthread`` each worker accepts greedily and keeps a keep-alive connection for
its whole life: 50 connections opened at once were spread 1/1/24/24 over 4 workers, so p95
measured where the unlucky connections landed (p95/p50 of 10 instead of 1.2).

    .venv/bin/python bench/pages.py [--clients 50] [--seconds 20] [--jobs 10000]
        [--workers 5] [--worker-class sync|gthread --threads 2] [--connection keep-alive|close]
        [--think 1] [--saturation-seconds 15]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_pages] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.cookies
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from common import clean_environ, django_setup, log, pct, proc_stat_cpu, wait_for_gunicorn

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
OWNER_EMAIL = "owner@bench.example"
TINY_EMAIL = "tiny-owner@bench.example"
PAGE_EMAIL = "page-owner@bench.example"


# =================================================================================================
# Child phases (run with the throwaway environment; Django is set up only there)
# =================================================================================================


def _tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), (40, 90, 160)).save(buffer, "JPEG", quality=60)
    return buffer.getvalue()


def seed_org(*, slug: str, name: str, email: str, password: str, scale: dict, rng) -> dict:
    """One organization with ``scale`` rows of everything; returns its page paths."""
    import datetime as dt

    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.audit import compute_hash
    from accounts.models import (
        ApiToken,
        AuditEvent,
        Invitation,
        Membership,
        Notification,
        Organization,
        User,
    )
    from exports.models import Export
    from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag

    now = timezone.now()
    start = now - dt.timedelta(days=30)
    hexes = secrets.token_hex

    with transaction.atomic():
        owner = User.objects.create_user(email, password, full_name=f"{name} Owner")
        org = Organization.objects.create(name=name, slug=slug, created_at=start)
        owner_membership = Membership.objects.create(
            user=owner, organization=org, role="owner", created_at=start
        )
        # -- members: one password hash for all (hashing 30 times would take ~15 s) --
        unusable = make_password(None)
        roles = ["admin"] * 3 + ["viewer"] * 7
        users = User.objects.bulk_create(
            User(email=f"{slug}-m{i:03d}@bench.example", full_name=f"Member {i}", password=unusable)
            for i in range(scale["members"])
        )
        Membership.objects.bulk_create(
            Membership(
                user=u,
                organization=org,
                role=roles[i] if i < len(roles) else "member",
                created_at=start + dt.timedelta(hours=i),
            )
            for i, u in enumerate(users)
        )
        actors = [owner, *users]
        Invitation.objects.bulk_create(
            Invitation(
                organization=org,
                email=f"{slug}-invited{i}@bench.example",
                role="member",
                token_hash=hexes(32),
                invited_by=owner,
                expires_at=now + dt.timedelta(hours=48),
            )
            for i in range(scale["invitations"])
        )
        ApiToken.objects.bulk_create(
            ApiToken(
                organization=org,
                user=owner,
                name=f"ci-script-{i}",
                prefix=hexes(4),
                token_hash=hexes(32),
                created_at=start + dt.timedelta(days=i % 30),
                expires_at=(now + dt.timedelta(days=90)) if i % 3 else None,
                revoked_at=now if i % 5 == 4 else None,
                last_used_at=now - dt.timedelta(hours=i) if i % 2 else None,
            )
            for i in range(scale["tokens"])
        )

        # -- projects, tags, assets --
        projects = Project.objects.bulk_create(
            Project(
                organization=org,
                name=f"Campaign {i + 1:02d}",
                description="Spring launch videos for the north region." if i % 2 else "",
                created_by=owner,
                created_at=start + dt.timedelta(hours=i),
            )
            for i in range(scale["projects"])
        )
        tags = Tag.objects.bulk_create(
            Tag(organization=org, name=t)
            for t in ["north", "south", "promo", "training", "cn", "en", "q3", "draft"][
                : scale["tags"]
            ]
        )
        media = {"organization": org, "created_by": owner}
        avatars = Asset.objects.bulk_create(
            Asset(
                kind="avatar",
                file=f"assets/{org.pk}/avatar-{i}.mp4",
                original_name=f"主播_{i + 1}.mp4",
                container="mov,mp4",
                duration=12.0,
                video_codec="h264",
                width=1280,
                height=720,
                fps=25.0,
                bytes=8_000_000,
                sha256=f"a{i:063x}",  # one library entry per content: each its own
                **media,
            )
            for i in range(scale["avatars"])
        )
        audios = Asset.objects.bulk_create(
            Asset(
                kind="audio",
                file=f"assets/{org.pk}/audio-{i}.wav",
                original_name=f"script_{i + 1:04d}.wav",
                container="wav",
                duration=20.0 + i % 40,
                audio_codec="pcm_s16le",
                sample_rate=16000,
                bytes=640_000,
                sha256=f"b{i:063x}",
                **media,
            )
            for i in range(scale["audios"])
        )

        # -- batches: sizes, owners, times; the last tenth still in progress --
        sizes, left = [], scale["jobs"]
        if scale["big_batch"] and left >= 2 * scale["big_batch"]:
            sizes.append(scale["big_batch"])
            left -= scale["big_batch"]
        while left > 0:
            sizes.append(min(scale["batch_size"], left))
            left -= sizes[-1]
        # The first project holds a quarter of the batches (so its page paginates).
        others = projects[1:] or projects
        spread = scale["spread"]  # every spread-th batch goes to the first project
        homes = [
            projects[0] if i % spread == 0 else others[i % len(others)] for i in range(len(sizes))
        ]
        step = dt.timedelta(days=29) / max(1, len(sizes))
        in_progress_from = len(sizes) - max(1, len(sizes) // 10)
        # The big batch comes first in `sizes`, so make it the most recent (in progress).
        created = [start + step * (i + 1) for i in range(len(sizes))]
        if scale["big_batch"] and sizes[0] == scale["big_batch"]:
            created[0] = now - dt.timedelta(minutes=30)
        batches = Batch.objects.bulk_create(
            Batch(
                project=homes[i],
                name=f"Batch {i + 1:03d}" if i % 3 else "",
                created_by=actors[i % len(actors)],
                engine="warp",
                created_at=created[i],
                completed_at=None
                if (i >= in_progress_from or (i == 0 and scale["big_batch"]))
                else created[i] + dt.timedelta(minutes=40),
            )
            for i in range(len(sizes))
        )
        Batch.tags.through.objects.bulk_create(
            Batch.tags.through(batch_id=b.pk, tag_id=tags[(i + k) % len(tags)].pk)
            for i, b in enumerate(batches)
            for k in range(1 + i % 2)
        )

        # -- jobs and outputs --
        thumb = "outputs/bench-thumb.jpg"
        jobs, statuses = [], []
        for i, (batch, size) in enumerate(zip(batches, sizes, strict=True)):
            in_progress = batch.completed_at is None
            for k in range(size):
                if in_progress:
                    status = ("succeeded", "succeeded", "running", "queued", "failed")[k % 5]
                else:
                    status = "failed" if rng.random() < 0.05 else "succeeded"
                statuses.append(status)
                t0 = batch.created_at + dt.timedelta(seconds=k)
                done = status in ("succeeded", "failed")
                jobs.append(
                    RenderJob(
                        batch=batch,
                        number=k + 1,
                        avatar=avatars[(i + k) % len(avatars)],
                        audio=audios[(i * 7 + k) % len(audios)],
                        engine="warp",
                        status=status,
                        frames_done=500 if status == "succeeded" else (k * 13) % 500,
                        frames_total=500 if status != "queued" else 0,
                        attempts=0 if status == "queued" else 1 + (status == "failed"),
                        error="ffmpeg exited with status 1: Invalid data found when processing "
                        "input (the audio track is damaged)"
                        if status == "failed"
                        else "",
                        worker_host="" if status == "queued" else "gpu-1",
                        worker_pid=None if status == "queued" else 4242,
                        device="" if status == "queued" else "cpu",
                        queued_at=t0,
                        started_at=None if status == "queued" else t0 + dt.timedelta(seconds=5),
                        finished_at=t0 + dt.timedelta(seconds=60) if done else None,
                        heartbeat_at=now if status == "running" else None,
                    )
                )
        jobs = RenderJob.objects.bulk_create(jobs, batch_size=1000)
        assert all(j.pk for j in jobs), "bulk_create returned no primary keys"
        outputs = Output.objects.bulk_create(
            (
                Output(
                    job=job,
                    file=f"outputs/{hexes(16)}.mp4",
                    thumbnail=thumb,
                    name=f"{job.avatar.original_name.rsplit('.', 1)[0]}__"
                    f"{job.audio.original_name.rsplit('.', 1)[0]}.mp4",
                    bytes=2_000_000 + (n * 7919) % 18_000_000,
                    sha256=hexes(32),
                    crc32=rng.getrandbits(32),
                    duration=20.0 + n % 40,
                    width=1280,
                    height=720,
                    created_at=job.finished_at,
                )
                for n, job in enumerate(jobs)
                if job.status == "succeeded"
            ),
            batch_size=1000,
        )

        # -- exports --
        finished = [b for b in batches if b.completed_at]
        export_statuses = ["ready"] * 8 + ["expired", "failed"]
        exports = []
        for i in range(scale["exports"]):
            status = ("queued", "building")[i] if i < 2 else export_statuses[i % 10]
            if i % 4 == 3 or not finished:
                scope, project, batch = "project", projects[i % len(projects)], None
                key, label = f"project:{project.pk}", f"Project {project.name}"
            else:
                batch = finished[i % len(finished)]
                scope, project = "batch", batch.project
                key, label = f"batch:{batch.pk}", f"{project.name} › {batch}"
            if status in ("queued", "building"):
                key += f";bench:{i}"  # one active export per scope: keep them apart
            asked = start + dt.timedelta(hours=6 * i)
            exports.append(
                Export(
                    organization=org,
                    requested_by=actors[i % len(actors)],
                    requested_by_label=actors[i % len(actors)].email,
                    scope=scope,
                    scope_key=key,
                    project=project,
                    batch=batch,
                    label=label,
                    status=status,
                    file_count=50,
                    total_bytes=500_000_000 + i * 1_000_003,
                    zip_bytes=500_010_000 + i * 1_000_003
                    if status in ("ready", "expired")
                    else None,
                    storage="local",
                    storage_key=f"{i}/heygem_batch_result_20250101_1200_{i}.zip",
                    filename=f"heygem_batch_result_20250101_1200_{i}.zip",
                    requested_at=asked,
                    started_at=None if status == "queued" else asked + dt.timedelta(seconds=3),
                    finished_at=asked + dt.timedelta(seconds=40)
                    if status in ("ready", "expired", "failed")
                    else None,
                    expires_at=(now + dt.timedelta(hours=20))
                    if status == "ready"
                    else (asked + dt.timedelta(hours=24) if status == "expired" else None),
                    error="The disk is full." if status == "failed" else "",
                    attempts=0 if status == "queued" else 1,
                    download_count=i % 3,
                )
            )
        exports = Export.objects.bulk_create(exports)

        # -- notifications (a few unread) --
        Notification.objects.bulk_create(
            Notification(
                user=owner,
                organization=org,
                level=("success", "success", "error")[i % 3],
                kind=("export.ready", "batch.finished", "export.failed")[i % 3],
                message=f"Bundle {i} is ready." if i % 3 != 2 else f"Bundle {i} failed: disk full",
                link=f"/o/{slug}/exports/{exports[i % len(exports)].pk}/" if exports else "",
                created_at=start + dt.timedelta(hours=4 * i),
                read_at=None if i >= scale["notifications"] - 5 else now,
            )
            for i in range(scale["notifications"])
        )

        # -- the audit chain, built as record_event would (seq, prev_hash, hash, head) --
        actions = [
            ("batch.submitted", "batch"),
            ("export.requested", "export"),
            ("export.built", "export"),
            ("export.downloaded", "export"),
            ("asset.uploaded", "asset"),
            ("project.created", "project"),
            ("token.created", "apitoken"),
            ("member.role_changed", "membership"),
            ("export.failed", "export"),
        ]
        history = [
            ("org.created", owner, "organization", org.pk, name, {"slug": slug}),
            ("member.added", owner, "membership", owner_membership.pk, email, {"role": "owner"}),
        ]
        for i in range(scale["audit"] - len(history)):
            action, target_type = actions[i % len(actions)]
            actor = actors[i % len(actors)]
            history.append(
                (action, actor, target_type, 1000 + i, f"{target_type} {1000 + i}", {"n": i})
            )
        seq, prev, events = 0, "", []
        step = dt.timedelta(days=29) / max(1, len(history))
        for i, (action, actor, target_type, target_id, label, detail) in enumerate(history):
            seq += 1
            event = AuditEvent(
                organization_id=org.pk,
                seq=seq,
                actor_id=actor.pk,
                actor_label=actor.email,
                action=action,
                target_type=target_type,
                target_id=str(target_id),
                target_label=label,
                file_count=50 if action.startswith("export.") else None,
                total_bytes=500_000_000 + i if action.startswith("export.") else None,
                ip=f"203.0.113.{i % 250 + 1}",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) bench/pages.py",
                outcome="failure" if action == "export.failed" else "success",
                detail=detail,
                created_at=start + step * i,
                prev_hash=prev,
            )
            event.hash = prev = compute_hash(event)
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=1000)
        Organization.objects.filter(pk=org.pk).update(audit_head_seq=seq, audit_head_hash=prev)

    # The page set: index 0 of each list is the heaviest variant (used by the query check).
    o = f"/o/{slug}"
    by_project = Counter(b.project_id for b in batches)
    busiest = sorted(projects, key=lambda p: -by_project[p.pk])
    # The biggest batch still in progress first, then a sample of the others.
    heaviest = max(range(len(batches)), key=lambda i: (sizes[i], batches[i].completed_at is None))
    rest = [b for i, b in enumerate(batches) if i != heaviest]
    ordered_batches = [batches[heaviest], *rest[:: max(1, len(rest) // 7)]]
    ready = [e for e in exports if e.status == "ready"] or exports
    batch_paths = [f"{o}/batches/{b.pk}/" for b in ordered_batches]
    pages = {
        "org home": [f"{o}/"],
        "projects": [f"{o}/projects/"],
        "project": [f"{o}/projects/{p.pk}/" for p in busiest[:6]],
        "batch": batch_paths,
        "batch status.json": [f"{p}status.json" for p in batch_paths],
        "exports": [f"{o}/exports/"],
        "export": [f"{o}/exports/{e.pk}/" for e in ready[:6]],
        "members": [f"{o}/members/"],
        "library": [f"{o}/library/", f"{o}/library/?kind=audio&q=script_00"],
        "tokens": [f"{o}/tokens/"],
        "audit": [f"{o}/audit/"],
        "audit page 5": [f"{o}/audit/?page=5"],
        "notifications": [f"{o}/notifications/"],
    }
    return {
        "slug": slug,
        "email": email,
        "password": password,
        "pages": pages,
        "rows": {
            "members": len(users) + 1,
            "projects": len(projects),
            "batches": len(batches),
            "largest batch": max(sizes),
            "jobs": len(jobs),
            "jobs by status": dict(Counter(statuses)),
            "outputs": len(outputs),
            "exports": len(exports),
            "audit events": seq,
            "tokens": scale["tokens"],
            "notifications": scale["notifications"],
        },
    }


def phase_seed(state: Path, jobs: int) -> None:

    django_setup()
    from django.conf import settings

    started = time.perf_counter()
    thumb = Path(settings.MEDIA_ROOT) / "outputs" / "bench-thumb.jpg"
    thumb.parent.mkdir(parents=True, exist_ok=True)
    thumb.write_bytes(_tiny_jpeg())
    rng = random.Random(20251219)
    big = seed_org(
        slug="bench",
        name="Bench Studio",
        email=OWNER_EMAIL,
        password=secrets.token_urlsafe(12),
        rng=rng,
        scale={
            "members": 29,  # + the owner = 30
            "invitations": 3,
            "tokens": 12,
            "projects": 20,
            "tags": 8,
            "avatars": 6,
            "audios": 200,
            "jobs": jobs,
            "batch_size": 50,
            "big_batch": 1000,
            "exports": 100,
            "notifications": 60,
            "audit": 5000,
            "spread": 4,  # a quarter of the batches in one project (46: two pages)
        },
    )
    # One full page of every list (and a little more), to tell page fill from growth.
    page = seed_org(
        slug="page",
        name="Page Studio",
        email=PAGE_EMAIL,
        password=secrets.token_urlsafe(12),
        rng=rng,
        scale={
            "members": 55,
            "invitations": 3,
            "tokens": 55,
            "projects": 30,
            "tags": 8,
            "avatars": 2,
            "audios": 10,
            "jobs": 130,  # one batch of 60 in progress, 35 of 2, all in one project
            "batch_size": 2,
            "big_batch": 60,
            "exports": 30,
            "notifications": 110,
            "audit": 300,
            "spread": 1,
        },
    )
    tiny = seed_org(
        slug="tiny",
        name="Tiny Studio",
        email=TINY_EMAIL,
        password=secrets.token_urlsafe(12),
        rng=rng,
        scale={
            "members": 2,
            "invitations": 1,
            "tokens": 2,
            "projects": 2,
            "tags": 2,
            "avatars": 1,
            "audios": 5,
            "jobs": 10,  # two batches of 5: one finished, one in progress (every status)
            "batch_size": 5,
            "big_batch": 0,
            "exports": 3,
            "notifications": 6,
            "audit": 6,
            "spread": 1,
        },
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        # Planner statistics, as autovacuum would gather them a minute after a bulk load.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    state.write_text(
        json.dumps(
            {"big": big, "page": page, "tiny": tiny, "seconds": time.perf_counter() - started}
        )
    )


def _compact_sql(sql: str, width: int = 330) -> str:
    """The head of the column list and everything from FROM on: what makes a query slow."""
    head, sep, tail = sql.partition(" FROM ")
    text = f"{head[:110]} … FROM {tail}" if sep and len(head) > 110 else sql
    return text if len(text) <= width else text[: width - 1] + "…"


def _normalize_sql(sql: str) -> str:
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "N", sql)
    return re.sub(r"IN \((?:\s*(?:N|\?|%s)\s*,?)+\)", "IN (…)", sql)


class _Timer:
    """Splits a request's time: SQL (timed around every execute), template rendering (the
    outermost Template.render, minus the SQL run lazily inside it) and the rest."""

    def __init__(self) -> None:
        self.depth = 0
        self.reset()

    def reset(self) -> None:
        self.sql = self.sql_in_template = self.template = 0.0
        self.each: list[tuple[float, str]] = []
        self.statements: list[tuple[str, object]] = []
        self.urls = 0

    def execute(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - t0
            self.sql += spent
            self.each.append((spent * 1000, sql))
            self.statements.append((sql, params))
            if self.depth:
                self.sql_in_template += spent

    def wrap_reverse(self, reverse):
        def counted(*args, **kwargs):
            self.urls += 1
            return reverse(*args, **kwargs)

        return counted

    def wrap_render(self, render):
        def timed(template, *args, **kwargs):
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return render(template, *args, **kwargs)
            finally:
                self.depth -= 1
                if not self.depth:
                    self.template += time.perf_counter() - t0

        return timed


def _best_of(connection, sql: str, params, repeat: int = 15) -> float:
    """One SELECT of a page timed on its own, best of ``repeat`` (ms); 0 for writes."""
    if not sql.lstrip().upper().startswith("SELECT"):
        return 0.0
    best = math.inf
    with connection.cursor() as cursor:
        for _ in range(repeat):
            t0 = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            best = min(best, time.perf_counter() - t0)
    return best * 1000


def phase_queries(state: Path, repeat: int) -> None:
    """Query counts per page, big vs. tiny organization, and in-process timings."""
    django_setup()
    from django.db import connection
    from django.template.backends.jinja2 import Template
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls.resolvers import URLResolver

    from accounts.models import User

    timer = _Timer()
    Template.render = timer.wrap_render(Template.render)
    URLResolver._reverse_with_prefix = timer.wrap_reverse(URLResolver._reverse_with_prefix)
    data = json.loads(state.read_text())
    result: dict = {}
    for which in ("tiny", "page", "big"):
        org = data[which]
        client = Client(HTTP_HOST=HOST)
        client.force_login(User.objects.get(email=org["email"]))
        for name, paths in org["pages"].items():
            path = paths[0]
            client.get(path)  # warm: template compilation, URL resolver, …
            runs = []
            for _ in range(repeat):
                timer.reset()
                with connection.execute_wrapper(timer.execute):
                    t0 = time.perf_counter()
                    with CaptureQueriesContext(connection) as ctx:
                        response = client.get(path)
                    wall = time.perf_counter() - t0
                runs.append(
                    {
                        "ms": wall * 1000,
                        "sql_ms": timer.sql * 1000,
                        "template_ms": (timer.template - timer.sql_in_template) * 1000,
                        "status": response.status_code,
                        "kb": len(response.content) / 1024,
                        "sql": [q["sql"] for q in ctx.captured_queries],
                        "slowest": max(timer.each, default=(0.0, "")),
                        "urls": timer.urls,
                    }
                )
            statements = timer.statements
            queries = runs[-1]["sql"]
            repeated = Counter(_normalize_sql(q) for q in queries)
            result.setdefault(name, {})[which] = {
                "path": path,
                "status": runs[-1]["status"],
                "kb": runs[-1]["kb"],
                "urls": runs[-1]["urls"],
                "queries": len(queries),
                **{
                    k: statistics.median(r[k] for r in runs)
                    for k in ("ms", "sql_ms", "template_ms")
                },
                "repeated": [[n, q[:300]] for q, n in repeated.most_common(3) if n > 1],
                "slowest": min((r["slowest"] for r in runs), key=lambda x: x[0]),
                "each_ms": [_best_of(connection, sql, params) for sql, params in statements],
                "sql": queries,
            }
    state.with_name("queries.json").write_text(json.dumps(result))


# =================================================================================================
# The parent: environment, server, load, report
# =================================================================================================


class Setup:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
        self.var = self.tmp / "var"
        self.var.mkdir()
        self.created_db: str | None = None
        self.server: subprocess.Popen | None = None
        self.server_log = self.tmp / "gunicorn.log"
        env = clean_environ()
        env.update(
            DJANGO_ENV="development",
            VAR_DIR=str(self.var),
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_SETTINGS_MODULE="heygem_site.settings",
            PYTHONPATH=str(ROOT),
        )
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        self.env = env

    # -- processes --
    def run(self, *argv: str, what: str) -> str:
        done = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def manage(self, *argv: str) -> str:
        return self.run("manage.py", *argv, what=f"manage.py {' '.join(argv)}")

    def phase(self, *argv: str) -> str:
        return self.run(str(Path(__file__).resolve()), *argv, what=f"phase {argv[1]}")

    # -- PostgreSQL --
    def create_database(self) -> None:
        import psycopg
        from psycopg import sql

        url = urllib.parse.urlsplit(self.args.database_url)
        name = url.path.lstrip("/")
        if not name.startswith("bench"):
            raise SystemExit(
                f"--database-url: the database name {name!r} must start with 'bench' "
                "(it is dropped at the end)."
            )
        admin = urllib.parse.urlunsplit(url._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created_db = name

    def drop_database(self) -> None:
        if not self.created_db:
            return
        import psycopg
        from psycopg import sql

        url = urllib.parse.urlsplit(self.args.database_url)
        admin = urllib.parse.urlunsplit(url._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.created_db)
                )
            )
        self.created_db = None

    # -- gunicorn --
    def start_server(self) -> int:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        a = self.args
        argv = [
            sys.executable, "-m", "gunicorn", "heygem_site.wsgi:application",
            "--bind", f"{HOST}:{port}",
            "--workers", str(a.workers),
            "--threads", str(a.threads if a.worker_class == "gthread" else 1),
            "--worker-class", a.worker_class,
            "--keep-alive", "30",  # the clients keep their connections busy; never drop them
            "--backlog", "2048",
            "--timeout", "60",
            "--graceful-timeout", "5",
            "--log-level", "warning",
        ]  # fmt: skip
        self.server = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.server_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return wait_for_gunicorn(self.server, HOST, port, self.server_log)

    def stop_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            self.server.wait(15)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(5)

    def cleanup(self) -> None:
        try:
            self.stop_server()
        finally:
            try:
                self.drop_database()
            finally:
                if not self.args.keep:
                    shutil.rmtree(self.tmp, ignore_errors=True)


# -- HTTP -----------------------------------------------------------------------------------------


def login(port: int, email: str, password: str) -> str:
    """GET the login form (CSRF cookie + token), POST the credentials; return a Cookie header."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    page = response.read().decode()
    jar = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not token or "csrftoken" not in jar:
        raise SystemExit("login page: no CSRF token")
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": email, "password": password}
    )
    conn.request(
        "POST",
        "/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken'].value}",
        },
    )
    response = conn.getresponse()
    response.read()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    conn.close()
    if response.status != 302 or "sessionid" not in jar:
        raise SystemExit(f"login failed: HTTP {response.status}")
    return "; ".join(f"{k}={jar[k].value}" for k in ("csrftoken", "sessionid"))


class Connection:
    """One keep-alive connection (reconnects after a failure), or with ``keep_alive=False``
    a new connection per request."""

    def __init__(self, port: int, cookie: str, keep_alive: bool = True) -> None:
        self.port, self.headers, self.conn = port, {"Cookie": cookie}, None
        if not keep_alive:
            self.headers["Connection"] = "close"

    def get(self, path: str) -> tuple[int, int, str]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
            if response.will_close:
                self.close()
            return response.status, len(body), response.getheader("Location", "")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def server_pids(master: int) -> list[int]:
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == master:
                    pids.append(int(entry.name))
    return pids


def machine_cpu() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far (stolen: by the hypervisor)."""
    cpu = proc_stat_cpu()
    return sum(cpu[k] for k in ("user", "nice", "system", "irq", "softirq")), cpu["steal"]


def load_test(
    port: int, cookies: list[str], pages: dict, args, server_pid: int, think: float
) -> dict:
    names = list(pages)
    start_gate = threading.Barrier(args.clients + 1)
    records: list[list[tuple[int, float, float, bool]]] = [[] for _ in range(args.clients)]
    errors: Counter = Counter()
    budget = [args.max_requests]
    lock = threading.Lock()
    t_start = t_measure = t_end = 0.0

    def client(index: int) -> None:
        conn = Connection(port, cookies[index % len(cookies)], args.connection == "keep-alive")
        pause = random.Random(index)
        mine = records[index]
        start_gate.wait()
        step = index  # clients start at different pages, so the mix is even at every moment
        while True:
            begin = time.perf_counter()
            if begin >= t_end:
                break
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            page = step % len(names)
            paths = pages[names[page]]
            path = paths[(step // len(names)) % len(paths)]
            step += 1
            try:
                status, _size, location = conn.get(path)
                ok = 200 <= status < 400 and "/login/" not in location
                if not ok:
                    with lock:
                        errors[f"{names[page]}: HTTP {status} {location}".strip()] += 1
            except Exception as exc:
                ok = False
                with lock:
                    errors[f"{names[page]}: {type(exc).__name__}: {exc}"] += 1
            end = time.perf_counter()
            if begin >= t_measure:
                mine.append((page, begin, end - begin, ok))
            if think:  # a person reading the page before the next click
                time.sleep(min(pause.uniform(0, 2 * think), max(0.0, t_end - end)))
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    pids = server_pids(server_pid)
    t_start = time.perf_counter()
    t_measure = t_start + args.warmup
    t_end = t_measure + args.seconds
    start_gate.wait()
    time.sleep(max(0.0, t_measure - time.perf_counter()))
    cpu0 = (cpu_seconds(pids), time.process_time(), *machine_cpu(), time.perf_counter())
    time.sleep(max(0.0, t_end - time.perf_counter()))
    cpu1 = (cpu_seconds(pids), time.process_time(), *machine_cpu(), time.perf_counter())
    for t in threads:
        t.join(120)
    wall = cpu1[4] - cpu0[4]
    merged = [r for rs in records for r in rs]
    per_client = [statistics.fmean(r[2] for r in rs) * 1000 for rs in records if rs]
    return {
        "names": names,
        "records": merged,
        "per_client": per_client,
        "errors": errors,
        "wall": wall,
        "server_cpu": cpu1[0] - cpu0[0],
        "client_cpu": cpu1[1] - cpu0[1],
        "machine_busy": cpu1[2] - cpu0[2],
        "stolen": cpu1[3] - cpu0[3],
    }


def solo(port: int, cookie: str, pages: dict, rounds: int) -> dict[str, list[float]]:
    """One client alone: the service time of each page, without queueing."""
    conn, times = Connection(port, cookie), {}
    for _ in range(rounds):
        for name, paths in pages.items():
            for path in paths[:2]:
                t0 = time.perf_counter()
                conn.get(path)
                times.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
    conn.close()
    return times


def preflight(port: int, cookie: str, pages: dict) -> None:
    """Every path answers 200 with the session (not a redirect to the login page)."""
    conn = Connection(port, cookie)
    bad = []
    for name, paths in pages.items():
        for path in paths:
            status, size, location = conn.get(path)
            if status != 200 or size < 200:
                bad.append(f"{name} {path}: HTTP {status} {location} ({size} bytes)")
    conn.close()
    if bad:
        raise SystemExit("preflight failed:\n  " + "\n  ".join(bad))


# -- report ---------------------------------------------------------------------------------------


def report_queries(queries: dict) -> list[str]:
    log("\n== Queries per page, in three organizations: tiny (a handful of rows), page (one full")
    log("   page of every list) and seeded; then, for the seeded one: response size, reverse()")
    log("   calls and time in ms in-process, one thread, median of 5: SQL (all queries), template")
    log("   (rendering, minus the SQL it runs lazily) and rest (middleware, session, view, ORM)")
    log(
        f"{'page':<20}{'tiny':>5}{'page':>5}{'seeded':>7} {'':<6}{'KB':>6}{'urls':>5}{'ms':>7}"
        f"{'sql':>6}{'template':>9}{'rest':>6}"
    )
    growing = []
    for name, sides in queries.items():
        tiny, page, big = sides["tiny"], sides["page"], sides["big"]
        flag = "GROWS" if big["queries"] > min(tiny["queries"], page["queries"]) else ""
        if flag:
            growing.append(name)
        rest = big["ms"] - big["sql_ms"] - big["template_ms"]
        log(
            f"{name:<20}{tiny['queries']:>5}{page['queries']:>5}{big['queries']:>7} {flag:<6}"
            f"{big['kb']:>6.1f}{big['urls']:>5}{big['ms']:>7.1f}{big['sql_ms']:>6.1f}"
            f"{big['template_ms']:>9.1f}{rest:>6.1f}"
        )
        for which, side in sides.items():
            if side["status"] != 200:
                log(f"    !! {which}: {side['path']} answered HTTP {side['status']}")
    for name in growing:
        sides = queries[name]
        counts = " -> ".join(str(sides[w]["queries"]) for w in ("tiny", "page", "big"))
        log(f"  {name} ({sides['big']['path']}): {counts} queries; repeated statements:")
        for n, sql in sides["big"]["repeated"]:
            log(f"    {n}x {_compact_sql(sql)}")
    if not growing:
        log("  constant: no page runs more queries with the seeded rows than with a handful")
    slower = []
    for name, sides in queries.items():
        page, big = sides["page"], sides["big"]
        if len(page["each_ms"]) != len(big["each_ms"]):
            continue
        for index, (p_ms, b_ms) in enumerate(zip(page["each_ms"], big["each_ms"], strict=True)):
            if b_ms >= 1.0 and b_ms >= 2.5 * p_ms:
                slower.append((name, p_ms, b_ms, _normalize_sql(big["sql"][index])))
    log(
        "  statements whose time grows with the rows behind the page (each alone, best of 15, "
        "page -> seeded):"
        if slower
        else "  no statement takes much longer with the seeded rows than with one page of them"
    )
    for name, p_ms, b_ms, sql in slower:
        log(f"    {name}: {p_ms:.2f} -> {b_ms:.2f} ms: {_compact_sql(sql)}")
    return growing


def report_load(result: dict, solo_times: dict, clients: int, think: float, title: str) -> float:
    names, records = result["names"], result["records"]
    log(f"\n== {title}: {clients} clients for {result['wall']:.1f} s (after the warm-up)")
    log(
        f"{'page':<20}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'solo p50':>10}"
    )
    for index, name in enumerate(names):
        mine = [r for r in records if r[0] == index]
        lat = [r[2] * 1000 for r in mine]
        bad = sum(1 for r in mine if not r[3])
        solo_p50 = statistics.median(solo_times.get(name) or [float("nan")])
        log(
            f"{name:<20}{len(mine):>7}{pct(lat, 50):>9.1f}{pct(lat, 95):>9.1f}"
            f"{pct(lat, 99):>9.1f}{max(lat, default=float('nan')):>9.1f}{bad:>8}{solo_p50:>10.1f}"
        )
    lat = [r[2] * 1000 for r in records]
    bad = sum(1 for r in records if not r[3])
    throughput = len(records) / result["wall"] if result["wall"] else 0.0
    log(
        f"{'all':<20}{len(records):>7}{pct(lat, 50):>9.1f}{pct(lat, 95):>9.1f}"
        f"{pct(lat, 99):>9.1f}{max(lat, default=float('nan')):>9.1f}{bad:>8}"
    )
    if result["per_client"]:
        spread = sorted(result["per_client"])
        log(
            f"each client's own mean latency: min {spread[0]:.0f}, median "
            f"{statistics.median(spread):.0f}, max {spread[-1]:.0f} ms"
        )
    for what, n in result["errors"].most_common(10):
        log(f"  error x{n}: {what}")
    cores = os.cpu_count() or 1
    per_request = result["server_cpu"] / len(records) * 1000 if records else float("nan")
    other = result["machine_busy"] - result["server_cpu"] - result["client_cpu"]
    # Little's law for a closed loop without pauses: latency = clients / throughput.
    little = (
        f" (Little: {clients} clients / {throughput:.1f} req/s = "
        f"{1000 * clients / throughput:.0f} ms)"
        if throughput and not think
        else ""
    )
    log(
        f"\nthroughput: {throughput:.1f} requests/s; mean latency "
        f"{statistics.fmean(lat or [0]):.1f} ms{little}"
    )
    log(
        f"CPU over the window ({cores} cores = {cores * result['wall']:.1f} core-s): gunicorn "
        f"{result['server_cpu']:.1f} s ({per_request:.2f} ms per request, so at most "
        f"~{1000 * cores / per_request if per_request else 0:.0f} req/s on {cores} cores), "
        f"this load generator {result['client_cpu']:.1f} s, other processes {max(0, other):.1f} s"
        + (f", stolen by the hypervisor {result['stolen']:.1f} s" if result["stolen"] > 0.1 else "")
    )
    return pct(lat, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before measuring")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers"
    )
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="mean pause (s) between a person's requests in the measured run (0: none)",
    )
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=15.0,
        help="first, the same clients without pauses for this long: capacity (0: skip)",
    )
    parser.add_argument(
        "--connection",
        choices=["keep-alive", "close"],
        default="keep-alive",
        help="one persistent connection per client, or a new one per request",
    )
    parser.add_argument("--sessions", type=int, default=1, help="logins shared by the clients")
    parser.add_argument("--max-requests", type=int, default=500_000, help="hard request cap")
    parser.add_argument("--database-url", default="", help="postgres://…/bench_… (else SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (debugging)")
    parser.add_argument("--phase", choices=["seed", "queries"], help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "seed":
        return phase_seed(args.state, args.jobs)
    if args.phase == "queries":
        return phase_queries(args.state, repeat=5)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup = Setup(args)
    try:
        load1 = os.getloadavg()[0]
        db = args.database_url or "SQLite (WAL) in the temp dir"
        log(f"bench/pages.py: {args.jobs} jobs, {args.clients} clients, {args.seconds:g} s;")
        log(f"  database: {db}; temp dir {setup.tmp}; load average before: {load1:.2f}")
        t0 = time.perf_counter()
        if args.database_url:
            setup.create_database()
        setup.manage("migrate", "--noinput", "-v", "0")
        setup.manage("createcachetable")
        t1 = time.perf_counter()
        state = setup.tmp / "seed.json"
        setup.phase("--phase", "seed", "--state", str(state), "--jobs", str(args.jobs))
        seed = json.loads(state.read_text())
        log(f"migrated in {t1 - t0:.1f} s, seeded in {seed['seconds']:.1f} s:")
        log("  " + json.dumps(seed["big"]["rows"], ensure_ascii=False))
        verified = setup.manage("verify_audit").strip().splitlines()
        log("verify_audit: " + "; ".join(verified))

        setup.phase("--phase", "queries", "--state", str(state))
        growing = report_queries(json.loads(state.with_name("queries.json").read_text()))

        port = setup.start_server()
        threads = args.threads if args.worker_class == "gthread" else 1
        log(
            f"\ngunicorn heygem_site.wsgi on {HOST}:{port}: {args.workers} workers x "
            f"{threads} threads ({args.worker_class}); clients: "
            + (
                "a new connection per request (sync workers close them)"
                if args.worker_class == "sync" or args.connection == "close"
                else "one keep-alive connection each"
            )
        )
        big = seed["big"]
        cookies = [login(port, big["email"], big["password"]) for _ in range(args.sessions)]
        preflight(port, cookies[0], big["pages"])
        solo_times = solo(port, cookies[0], big["pages"], rounds=5)
        if args.saturation_seconds and args.think:
            # Capacity: every client sends its next request the moment the last one is
            # answered, so 50 requests are always in flight; latency is then clients /
            # throughput (Little's law), a measure of throughput, not of a person's wait.
            saturated = load_test(
                port,
                cookies,
                big["pages"],
                argparse.Namespace(**{**vars(args), "seconds": args.saturation_seconds}),
                setup.server.pid,
                think=0.0,
            )
            report_load(
                saturated, solo_times, args.clients, 0.0, "capacity, no pauses (throughput)"
            )
        result = load_test(port, cookies, big["pages"], args, setup.server.pid, think=args.think)
        title = (
            f"the measured run, each client a person pausing {args.think:g} s on average "
            f"(uniform 0-{2 * args.think:g} s) between pages"
            if args.think
            else "the measured run, no pauses"
        )
        p95 = report_load(result, solo_times, args.clients, args.think, title)
        if growing:
            log(f"pages whose query count grows with rows: {', '.join(growing)}")
        log(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        setup.cleanup()
    log(f"pages p95 ms: {round(p95)}")


if __name__ == "__main__":
    main()
