"""Faults, injected for real: a worker SIGKILLed in the middle of a bundle, a broker that fails
after the commit, a disk that fills up under a bundle or under a render.

Whatever happens: no partial file is left anywhere, the job or export ends retried or failed
with a reason a person can act on (never left running or building), and the audit chain of
every organization still verifies. The SIGKILL of a render worker, the database going away
during a request and the queue being down at submit time are in tests/test_queue_e2e.py and
tests/test_site_policies.py (also marked ``fault``).

The tests about local disks (temp files, ENOSPC) keep local media and bundle folders even in
the S3 pass (``local_storage``); the broker test runs on the storage of the stack under test.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
import zlib
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import OperationalError
from django.http import QueryDict
from django.utils import timezone

from accounts.audit import verify_chain
from accounts.models import AuditEvent, Organization
from accounts.tenancy import pages as tenancy_pages
from core.storage import media as storage
from exports import services as export_services
from exports import zipwriter
from exports.models import Export
from exports.scope import scope_from_params
from jobs import services
from jobs.models import Batch, Output, RenderJob
from tests.browser import cluster as qc
from tests.stack import files_under

pytestmark = pytest.mark.fault
LIVENESS_S = 300  # a hung cluster fails the test instead of hanging the suite
DISK_FULL = re.compile(r"(?i)no space left|disk (is )?full|disk space")


# --- helpers ----------------------------------------------------------------------------------


def assert_audit_intact() -> None:
    """Every organization's chain verifies, and so does ``manage.py verify_audit``."""
    organizations = list(Organization.objects.order_by("slug"))
    assert organizations
    for organization in organizations:
        report = verify_chain(organization)
        assert report.ok, f"{organization.slug}: {report.problem}"
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=io.StringIO())
    assert "The audit chain is intact." in out.getvalue()


def _scope(membership, **params):
    q = QueryDict(mutable=True)
    for key, value in params.items():
        q[key] = str(value)
    return scope_from_params(membership, q)


def _wait_for(predicate, what: str, clusters=()):
    deadline = time.monotonic() + LIVENESS_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    logs = "\n".join(c.describe() for c in clusters)
    pytest.fail(f"gave up waiting for {what} after {LIVENESS_S} s\n{logs}")


def _gone(pid: int) -> bool:
    """The process has exited (a zombie its parent has not reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


@pytest.fixture
def tiny_disk(tmp_path):
    """``mount(name, size)``: a small tmpfs of its own, unmounted afterwards; the test is
    skipped when mounting is not permitted here (the injected-ENOSPC tests still run)."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command: cannot make a small file system here")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if result.returncode:
            pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
        mounted.append(where)
        return where

    def resize(where: Path, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)

    mount.resize = resize
    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=False)


# --- real clusters ----------------------------------------------------------------------------


class Queues:
    """Queue names of this test's own (parallel runs never take each other's tasks); this
    process enqueues to them instead of running tasks inline."""

    def __init__(self, monkeypatch, tmp_path: Path) -> None:
        from django.conf import settings as django_settings
        from django_q.conf import Conf

        self.render = qc.unique_name("render-fault")
        self.light = qc.unique_name("light-fault")
        self.log_dir = tmp_path / "qcluster-logs"
        monkeypatch.setattr(Conf, "SYNC", False)
        monkeypatch.setattr(django_settings, "RENDER_QUEUE", self.render)
        monkeypatch.setattr(Conf, "CLUSTER_NAME", self.light)

    @contextmanager
    def cluster(self, name: str, **env: str):
        """A qcluster serving ``name``, on this test's database, broker and storage."""
        extra = {"Q_RENDER_QUEUE": self.render, **env}
        with qc.qcluster(name, log_dir=self.log_dir, extra_env=extra) as started:
            yield started

    def purge(self) -> None:
        from django_q.brokers import get_broker

        for name in (self.render, self.light):
            get_broker(name).purge_queue()  # nothing left behind on a shared Redis


@pytest.fixture
def queues(monkeypatch, tmp_path):
    made = Queues(monkeypatch, tmp_path)
    yield made
    made.purge()


# --- 1. an export worker SIGKILLed mid-build ---------------------------------------------------


def _big_outputs(member, make_outputs, count: int, mib: int):
    """Finished outputs of ``mib`` MiB each, real data (no holes: the writer would skip
    those), so a build takes long enough to be killed in the middle."""
    batch, outputs = make_outputs(member, [f"take {i}.mp4" for i in range(count)])
    block = os.urandom(1 << 20)
    for n, output in enumerate(outputs):
        sha, crc = hashlib.sha256(), 0
        with open(storage.media_path(output.file.name), "wb") as f:
            for i in range(mib):
                chunk = block if i else n.to_bytes(4, "big") + block[4:]
                f.write(chunk)
                sha.update(chunk)
                crc = zlib.crc32(chunk, crc)
        Output.objects.filter(pk=output.pk).update(
            bytes=mib << 20, sha256=sha.hexdigest(), crc32=crc
        )
    return batch


def _kill_build_midway(export: Export, cluster, export_root: Path) -> tuple[int, list[Path]]:
    """Wait until the export is building and its temp file is on disk, then SIGKILL the
    worker process running it. Returns the pid and the files of this export the kill left
    behind: the temp file (or, if the kill landed just after its rename, the unrecorded
    final file).

    The folder is polled every few milliseconds (the database only when a temp file shows,
    and now and then to notice a build that ended): a build of the test's bundle lasts
    about a second here, hundreds of polls."""
    deadline = time.monotonic() + LIVENESS_S
    for poll in itertools.count():
        temps = list(export_root.glob(f".building-*_{export.pk}.zip.part"))
        if temps or poll % 200 == 0:
            row = Export.objects.get(pk=export.pk)
            if temps and row.status == "building" and row.worker_pid:
                break
            if row.status in ("ready", "failed"):
                pytest.fail(f"the build ended ({row.status}) before it could be killed")
        if time.monotonic() > deadline:
            pytest.fail(f"no build started after {LIVENESS_S} s\n{cluster.describe()}")
        time.sleep(0.002)
    pid = row.worker_pid
    # The worker is a child of this test's cluster, not the cluster's sentinel nor us.
    assert pid not in (os.getpid(), cluster.process.pid)
    assert os.getpgid(pid) == cluster.process.pid
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: _gone(pid), f"worker {pid} to die", [cluster])
    left = sorted(export_root.glob(f"*_{export.pk}.zip*"))
    assert left, "the kill left no file of the build: it was not killed mid-build"
    return pid, left


@pytest.mark.queue
@pytest.mark.local_storage
@pytest.mark.django_db(transaction=True)
def test_export_worker_killed_mid_build_is_built_again_then_failed_leaving_nothing(
    member, make_outputs, queues, settings
):
    export_root = Path(settings.EXPORT_ROOT)
    batch = _big_outputs(member, make_outputs, count=4, mib=160)
    scope = _scope(member, batch=batch.pk)
    try:
        with queues.cluster(queues.light, Q_WORKERS="1") as cluster:
            export, created = export_services.export_request(membership=member, scope=scope)
            assert created

            # Build 1 dies in the middle of writing the bundle.
            first_pid, first_left = _kill_build_midway(export, cluster, export_root)
            export.refresh_from_db()
            # Nobody told anyone: the dispatcher (every minute) must notice.
            assert export.status == "building" and export.attempts == 1
            settings.EXPORT_LEASE_S = 0  # (here only: the cluster keeps the 300 s default)
            export_services.dispatch_waiting()
            export.refresh_from_db()
            assert not [p for p in first_left if p.exists()]
            assert export.status in ("queued", "building"), export.error
            assert f"pid {first_pid}" in export.error and "Building it again" in export.error

            # Build 2 (a new worker of the same cluster) dies too: the export fails, for good.
            second_pid, second_left = _kill_build_midway(export, cluster, export_root)
            assert second_pid != first_pid and not set(second_left) & set(first_left)
            export.refresh_from_db()
            assert export.status == "building" and export.attempts == 2
            export_services.dispatch_waiting()
            export.refresh_from_db()
            assert export.status == "failed"
            assert f"pid {second_pid}" in export.error and "Ask for it again" in export.error
            assert files_under(export_root) == []  # no temp file, no final file
            failed = AuditEvent.objects.get(action="export.failed", target_id=str(export.pk))
            assert failed.detail["reason"] == export.error
            assert not AuditEvent.objects.filter(action="export.built").exists()
            assert member.user.notifications.filter(kind="export.failed").count() == 1

            # The same selection can be bundled again, by the same cluster.
            settings.EXPORT_LEASE_S = 300
            again, created = export_services.export_request(membership=member, scope=scope)
            assert created and again.pk != export.pk
            _wait_for(
                lambda: Export.objects.filter(pk=again.pk, status__in=("ready", "failed")).exists(),
                "the bundle to be built again",
                [cluster],
            )
        again.refresh_from_db()
        assert again.status == "ready", again.error
        bundle = export_root / again.storage_key
        assert files_under(export_root) == [bundle]
        assert bundle.stat().st_size == again.zip_bytes
        with zipfile.ZipFile(bundle) as z:
            assert z.namelist() == ["manifest.csv"] + [f"take {i}.mp4" for i in range(4)]
            assert z.testzip() is None
        assert_audit_intact()
    finally:
        # 1.3 GB of test data: not kept for pytest's last three runs.
        shutil.rmtree(storage.media_path("outputs"), ignore_errors=True)
        shutil.rmtree(export_root, ignore_errors=True)


@pytest.mark.local_storage
@pytest.mark.django_db
def test_a_build_taken_for_dead_while_it_was_only_stalled_keeps_nothing(
    member, make_outputs, settings, monkeypatch
):
    """A worker that stalls past the lease (not dead) is taken over; when it comes back, the
    row is no longer its attempt's: its bundle is dropped, not marked ready twice."""
    from core.storage.bundles import LocalBundleStore

    batch, _ = make_outputs(member, ["a.mp4", "b.mp4"])
    export, _ = export_services.export_request(
        membership=member, scope=_scope(member, batch=batch.pk)
    )
    enqueued: list[int] = []
    monkeypatch.setattr(export_services, "_enqueue_build", enqueued.append)
    real_save = LocalBundleStore.save

    def save_then_stall(self, *args, **kwargs):
        stored = real_save(self, *args, **kwargs)
        settings.EXPORT_LEASE_S = 0  # meanwhile the dispatcher took it for dead ...
        export_services.dispatch_waiting()
        settings.EXPORT_LEASE_S = 300
        return stored  # ... and then it comes back

    monkeypatch.setattr(LocalBundleStore, "save", save_then_stall)
    assert export_services.build_export(export_id=export.pk) == "queued"
    export.refresh_from_db()
    assert export.status == "queued" and "stopped responding" in export.error
    assert files_under(settings.EXPORT_ROOT) == []
    assert not AuditEvent.objects.filter(action="export.built").exists()
    assert enqueued == [export.pk]  # built again (here: by hand, below)

    monkeypatch.setattr(LocalBundleStore, "save", real_save)
    assert export_services.build_export(export_id=export.pk) == "ready"
    export.refresh_from_db()
    assert export.attempts == 2 and export.error == ""
    assert files_under(settings.EXPORT_ROOT) == [Path(settings.EXPORT_ROOT) / export.storage_key]
    assert AuditEvent.objects.filter(action="export.built").count() == 1
    assert_audit_intact()


# --- 2. a broker failing between the queue check and the enqueue --------------------------------


@pytest.mark.queue
@pytest.mark.django_db(transaction=True)
def test_jobs_left_queued_by_a_failed_enqueue_get_a_task_again_and_render_once(
    member, upload, queues, settings, monkeypatch
):
    from django_q import tasks as q_tasks
    from django_q.brokers import get_broker
    from django_q.models import Task

    project = services.project_create(membership=member, name="Broker faults")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))

    def broker_gone(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to the broker. Connection refused.")

    # The queue check passes; the broker goes away before the enqueue after commit.
    with monkeypatch.context() as m:
        m.setattr(q_tasks, "async_task", broker_gone)
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
    job = batch.jobs.get()
    assert job.status == "queued"  # the submission is kept: rows and audit row committed
    broker = get_broker(queues.render)
    assert broker.queue_size() == 0  # ... but no task exists for it

    assert services.reap_stale_jobs() == 0  # a fresh job's task may still be on its way
    settings.RENDER_LEASE_S = 0  # now it has been queued "too long"
    assert services.reap_stale_jobs() == 1
    assert broker.queue_size() == 1
    assert services.reap_stale_jobs() == 0  # its task is in the broker now: not a second one

    # Enqueued twice on purpose, and two workers take both tasks at once: rendered once.
    services.enqueue_renders([job.pk])
    assert broker.queue_size() == 2
    settings.RENDER_LEASE_S = 120
    with queues.cluster(queues.render, RENDER_WORKERS="2", RENDER_BATCH_SIZE="4") as cluster:
        tasks = Task.objects.filter(name__startswith=f"render-job-{job.pk}-")
        _wait_for(lambda: tasks.count() == 2, "both tasks to have run", [cluster])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.attempts == 1
    assert Output.objects.filter(job=job).count() == 1
    assert sorted(t.result for t in tasks) == ["skipped", "succeeded"]
    assert broker.queue_size() == 0
    assert_audit_intact()


# --- 3. the bundle disk fills up ---------------------------------------------------------------


def _assert_failed_for_disk_full(export: Export, member, export_root) -> None:
    export.refresh_from_db()
    assert export.status == "failed"
    assert export.error.startswith("No space left on the bundle disk"), export.error
    assert "free space" in export.error and "ask for the bundle again" in export.error
    assert str(export_root) not in export.error  # tenants read it: no server paths
    assert files_under(export_root) == []  # no temp file, no final file
    event = AuditEvent.objects.get(action="export.failed", target_id=str(export.pk))
    assert event.outcome == "failure" and event.detail["reason"] == export.error
    assert member.user.notifications.filter(kind="export.failed").exists()


@pytest.mark.local_storage
@pytest.mark.django_db
def test_bundle_disk_full_injected_fails_with_a_reason_and_leaves_nothing(
    member, make_outputs, settings, monkeypatch
):
    batch, _ = make_outputs(member, ["a.mp4", "b.mp4", "c.mp4"], size=256 * 1024)
    export_root = Path(settings.EXPORT_ROOT)
    real_copy = zipwriter._Copier.copy
    seen: list[list[Path]] = []

    def copy_until_the_disk_is_full(self, body, ticker):
        if seen:  # the second video: part of it fits, then the disk is full
            os.write(self.out_fd, b"\0" * 4096)
            seen.append(list(export_root.glob(".building-*")))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        seen.append([])
        return real_copy(self, body, ticker)

    monkeypatch.setattr(zipwriter._Copier, "copy", copy_until_the_disk_is_full)
    scope = _scope(member, batch=batch.pk)
    export, _ = export_services.export_request(membership=member, scope=scope)
    assert export_services.build_export(export_id=export.pk) == "failed"
    assert len(seen) == 2 and seen[1], "the bundle was being written to a temp file"
    _assert_failed_for_disk_full(export, member, export_root)

    # Space is back: the same selection bundles.
    monkeypatch.setattr(zipwriter._Copier, "copy", real_copy)
    again, created = export_services.export_request(membership=member, scope=scope)
    assert created and export_services.build_export(export_id=again.pk) == "ready"
    assert_audit_intact()


@pytest.mark.local_storage
@pytest.mark.django_db
def test_bundle_disk_full_for_real_on_a_small_file_system(
    member, make_outputs, settings, tiny_disk
):
    settings.EXPORT_ROOT = export_root = tiny_disk("bundle-disk", "2m")
    batch, _ = make_outputs(member, ["a.mp4", "b.mp4", "c.mp4"], size=1024 * 1024)
    scope = _scope(member, batch=batch.pk)
    export, _ = export_services.export_request(membership=member, scope=scope)
    assert export_services.build_export(export_id=export.pk) == "failed"
    _assert_failed_for_disk_full(export, member, export_root)
    assert re.search(r"needs 3\.\d MB; 2\.\d MB is free", export.error), export.error

    tiny_disk.resize(export_root, "16m")  # the administrator made room
    again, created = export_services.export_request(membership=member, scope=scope)
    assert created and export_services.build_export(export_id=again.pk) == "ready"
    again.refresh_from_db()
    assert files_under(export_root) == [export_root / again.storage_key]
    assert_audit_intact()


# --- 4. the disk fills up under a render ------------------------------------------------------


@pytest.mark.local_storage
@pytest.mark.django_db
def test_render_disk_full_fails_with_a_reason_and_leaves_nothing(
    member, upload, settings, tiny_disk, tmp_path, monkeypatch
):
    """Written against behaviour only: media and the render scratch folder on one tiny disk,
    filled up after the inputs are stored, so writing the video fails with ENOSPC."""
    disk = tiny_disk("render-disk", "4m")
    settings.MEDIA_ROOT = disk / "media"
    settings.RENDER_SCRATCH_DIR = disk / "scratch"
    system_tmp = tmp_path / "tmp"  # whatever the render puts in the system temp folder
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    project = services.project_create(membership=member, name="Full disk")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    batch = services.batch_submit(
        membership=member, project=project, avatars=[avatar], audios=[audio]
    )  # (tasks run inline, after commit: never in this test's transaction)
    job = batch.jobs.get()
    inputs = files_under(disk)
    filler = disk / "filler"
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(disk).free - 16 * 1024)

    settings.RENDER_MAX_ATTEMPTS = 2
    for _ in range(settings.RENDER_MAX_ATTEMPTS):  # a retry, if any, runs here too
        services.render_job_run(job_id=job.pk)
        job.refresh_from_db()
        if job.status in RenderJob.FINAL:
            break
    assert job.status == "failed", (job.status, job.error)
    assert DISK_FULL.search(job.error), job.error
    assert not Output.objects.filter(job=job).exists()
    # No output, no temp file, no scratch; the avatar's landmarks (measured before the disk
    # ran out) are kept with the asset for the next job.
    prepared = disk / "media" / f"prep/{member.organization_id}/{avatar.pk}/warp.npz"
    assert files_under(disk) == sorted([*inputs, filler, prepared])
    assert files_under(system_tmp) == []
    assert_audit_intact()


# --- 5. all of it in one world ----------------------------------------------------------------


class _DeadBroker:
    def ping(self):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.mark.local_storage
@pytest.mark.django_db
def test_after_every_kind_of_fault_the_audit_chain_still_verifies(
    member,
    outsider,
    make_outputs,
    upload,
    login,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """One organization lives through the faults one after another (a rival organization
    works beside it); afterwards every chain verifies."""
    from django_q import brokers
    from django_q import tasks as q_tasks

    client = login(member)
    slug = member.organization.slug
    project = services.project_create(membership=member, name="Stormy week")
    avatar = services.asset_create(membership=member, kind="avatar", upload=upload("face.mp4"))
    audio = services.asset_create(membership=member, kind="audio", upload=upload("speech.wav"))
    rival_batch, _ = make_outputs(outsider, ["rival.mp4"])

    # The database goes away during a request: a clean 503, then it recovers.
    with monkeypatch.context() as m:

        def gone(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        m.setattr(tenancy_pages, "membership_for", gone)
        assert client.get(f"/o/{slug}/projects/").status_code == 503
    assert client.get(f"/o/{slug}/projects/").status_code == 200

    # The queue is down at submit time: refused, nothing half-created.
    with monkeypatch.context() as m:
        m.setattr(brokers, "get_broker", lambda *a, **k: _DeadBroker())
        with pytest.raises(ValidationError, match="task queue cannot be reached"):
            services.batch_submit(
                membership=member, project=project, avatars=[avatar], audios=[audio]
            )
    assert not Batch.objects.filter(project=project).exists()

    # The broker fails after the commit: the reaper gives the job its task (run inline here).
    def broker_gone(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to the broker. Connection refused.")

    with monkeypatch.context() as m, django_capture_on_commit_callbacks(execute=True):
        m.setattr(q_tasks, "async_task", broker_gone)
        batch = services.batch_submit(
            membership=member, project=project, avatars=[avatar], audios=[audio]
        )
    assert batch.jobs.get().status == "queued"
    settings.RENDER_LEASE_S = 0
    assert services.reap_stale_jobs() == 1
    job = batch.jobs.get()
    assert job.status == "succeeded" and job.attempts == 1, job.error

    # A render worker dies mid-job: the reaper takes the job back for another attempt.
    crashed = services.batch_submit(
        membership=member, project=project, avatars=[avatar], audios=[audio]
    ).jobs.get()  # (its task is never run: on_commit does not fire in this test)
    RenderJob.objects.filter(pk=crashed.pk).update(
        status="running",
        attempts=1,
        worker_host="gpu-1",
        worker_pid=4242,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert services.reap_stale_jobs() == 1
    crashed.refresh_from_db()
    assert crashed.status == "queued" and "stopped responding" in crashed.error

    # The bundle disk fills up; then there is room again.
    scope = _scope(member, batch=batch.pk)
    with monkeypatch.context() as m:

        def full(self, body, ticker):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        m.setattr(zipwriter._Copier, "copy", full)
        export, _ = export_services.export_request(membership=member, scope=scope)
        assert export_services.build_export(export_id=export.pk) == "failed"
    export.refresh_from_db()
    assert export.error.startswith("No space left on the bundle disk")
    again, _ = export_services.export_request(membership=member, scope=scope)
    assert export_services.build_export(export_id=again.pk) == "ready"
    rival, _ = export_services.export_request(
        membership=outsider, scope=_scope(outsider, batch=rival_batch.pk)
    )
    assert export_services.build_export(export_id=rival.pk) == "ready"

    actions = set(
        AuditEvent.objects.filter(organization=member.organization).values_list("action", flat=True)
    )
    assert {"batch.submitted", "export.failed", "export.built"} <= actions
    assert_audit_intact()
