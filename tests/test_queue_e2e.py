"""End to end through real django-q2 qcluster processes: the broker of the stack under test
(ORM on SQLite, Redis on the scale-out pass), real renders, and a worker killed mid-job."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.storage import media as storage
from jobs import services
from jobs.models import Output, RenderJob
from tests.factories import MembershipFactory
from tests.media import make_audio
from tests.stack import storage_env

pytestmark = [pytest.mark.queue, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
LIVENESS_S = 300  # a hung cluster fails the test instead of hanging the suite


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host = db["USER"] or "postgres", db["HOST"] or "127.0.0.1"
    return f"postgres://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def queue_name(monkeypatch):
    """A render queue of this test's own, so parallel test runs never steal each other's tasks."""
    from django.conf import settings
    from django_q.conf import Conf

    name = f"render-e2e-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(settings, "RENDER_QUEUE", name)
    monkeypatch.setattr(Conf, "SYNC", False)
    return name


@contextmanager
def qcluster(queue_name: str, tmp_path: Path, *, scratch: Path | None = None):
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "Q_SYNC": "0",
        "Q_RENDER_QUEUE": queue_name,
        "Q_CLUSTER_NAME": queue_name,
        "DATABASE_URL": _database_url(),
        "LOG_DIR": str(tmp_path / "log"),
        "RENDER_BATCH_SIZE": "4",
        **storage_env(scratch=str(scratch) if scratch else None),
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    log = open(tmp_path / f"qcluster-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so SIGKILL reaches every worker
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            # The cluster's main process stops its workers itself on SIGTERM; whatever is
            # left in the group afterwards is killed.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _wait_for(predicate, what: str, log_dir: Path):
    deadline = time.monotonic() + LIVENESS_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in log_dir.glob("qcluster-*.log"))
    pytest.fail(f"gave up waiting for {what} after {LIVENESS_S} s; cluster log:\n{logs}")


@pytest.fixture
def setup_batch(tmp_path, upload):
    member = MembershipFactory(role="member")
    project = services.project_create(membership=member, name="E2E")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    return member, project, avatar


def test_batch_renders_through_a_real_cluster(setup_batch, upload, queue_name, tmp_path):
    member, project, avatar = setup_batch
    audios = [
        services.asset_create(
            membership=member, kind="audio", upload=upload("speech.wav", f"take{i}.wav", variant=i)
        )
        for i in range(3)
    ]
    with qcluster(queue_name, tmp_path):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=audios
        )
        _wait_for(
            lambda: not batch.jobs.exclude(status__in=RenderJob.FINAL).exists(),
            "the batch to finish",
            tmp_path,
        )
    jobs = list(batch.jobs.select_related("output"))
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error for j in jobs]
    assert all(j.worker_pid and j.worker_pid != os.getpid() for j in jobs)
    for job in jobs:
        assert storage.size(job.output.file.name) == job.output.bytes
    assert _scratch_left(settings.RENDER_SCRATCH_DIR) == []


def _scratch_left(folder) -> list[Path]:
    folder = Path(folder)
    return sorted(folder.iterdir()) if folder.exists() else []


def test_two_clusters_share_a_batch_and_never_run_a_job_twice(
    setup_batch, upload, queue_name, tmp_path
):
    member, project, avatar = setup_batch
    audios = [
        services.asset_create(
            membership=member,
            kind="audio",
            upload=upload("speech.wav", f"line{i:02d}.wav", variant=i),
        )
        for i in range(20)
    ]
    scratch = [tmp_path / "scratch-host-a", tmp_path / "scratch-host-b"]
    with (
        qcluster(queue_name, tmp_path, scratch=scratch[0]) as first,
        qcluster(queue_name, tmp_path, scratch=scratch[1]) as second,
    ):
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=audios
        )
        _wait_for(
            lambda: not batch.jobs.exclude(status__in=RenderJob.FINAL).exists(),
            "20 jobs to finish on two clusters",
            tmp_path,
        )
        cluster_pids = {first.pid, second.pid}
        jobs = list(batch.jobs.all())
        # While the clusters still run: which one (process group) each job's worker was in.
        parents = {_parent_cluster(j.worker_pid, cluster_pids) for j in jobs}
    assert [j.status for j in jobs] == ["succeeded"] * 20, [j.error for j in jobs if j.error]
    assert all(j.attempts == 1 for j in jobs)  # nobody ran a job twice
    assert batch.jobs.filter(output__isnull=False).count() == 20
    # Each render ran in a worker process of one of the two clusters, and both took work.
    assert parents == cluster_pids, parents
    # Each "host" worked in its own scratch folder and cleaned it after every job.
    assert all(folder.is_dir() for folder in scratch)
    assert _scratch_left(scratch[0]) == _scratch_left(scratch[1]) == []


def _parent_cluster(pid: int, clusters: set[int]) -> int | None:
    """The cluster (its process group leader) a worker process belongs to."""
    try:
        group = os.getpgid(pid)
        return group if group in clusters else None
    except ProcessLookupError:
        return None


@pytest.mark.fault
def test_killed_worker_leaves_no_output_and_the_job_recovers(
    setup_batch, queue_name, tmp_path, settings
):
    member, project, avatar = setup_batch
    long_audio = make_audio(tmp_path / "long.wav", seconds=12)
    audio = services.asset_create(
        membership=member, kind="audio", upload=services.UploadedMedia(long_audio, "long.wav")
    )
    with qcluster(queue_name, tmp_path) as cluster:
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
        job = batch.jobs.get()
        _wait_for(
            lambda: RenderJob.objects.filter(
                pk=job.pk, status="running", frames_done__gt=0
            ).exists(),
            "the render to start",
            tmp_path,
        )
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
    job.refresh_from_db()
    assert job.status == "running"  # nobody told the database: the reaper must notice
    out_dir = f"outputs/{project.organization_id}/{batch.pk}/"
    assert not Output.objects.filter(job=job).exists()

    settings.RENDER_LEASE_S = 0
    with qcluster(queue_name, tmp_path):
        assert services.reap_stale_jobs() == 1
        job.refresh_from_db()
        assert job.status in ("queued", "running", "succeeded") and "stopped responding" in (
            job.error or "stopped responding"
        )
        # Nothing of the dead attempt is left: no temp file, and no final file either (the
        # kill may land after the rename but before the row is written).
        assert not [n for n in storage.list_names(out_dir) if f"job{job.pk}-a1." in n]
        _wait_for(
            lambda: RenderJob.objects.filter(pk=job.pk, status__in=RenderJob.FINAL).exists(),
            "the retried job to finish",
            tmp_path,
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    # The killed attempt's scratch folder on this host was swept by the next attempt.
    assert _scratch_left(settings.RENDER_SCRATCH_DIR) == []
