"""The reaper: running jobs whose worker stopped sending heartbeats are retried or failed,
and queued jobs the broker lost get a task again. Runs on a schedule (every minute)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import queue
from core.storage import media as storage
from jobs.models import RenderJob
from jobs.reasons import job_error
from jobs.services.batches import RENDER_TASK, enqueue_renders
from jobs.services.rendering import _finish, _retry_or_fail

logger = logging.getLogger(__name__)


def reap_stale_jobs() -> int:
    """Find running jobs whose worker stopped sending heartbeats; retry or fail them. Give a
    task again to queued jobs the broker has none for. Returns how many jobs it touched.

    Also removes the temp files such a worker left behind. Runs on a schedule.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.RENDER_LEASE_S)
    # First: the jobs re-queued below get their task now and must not be counted twice.
    reaped = _requeue_lost_jobs(cutoff)
    stale_ids = list(
        RenderJob.objects.filter(
            status=RenderJob.Status.RUNNING, heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for job_id in stale_ids:
        with transaction.atomic():
            job = (
                RenderJob.objects.select_for_update()
                .select_related("batch__project")
                .filter(pk=job_id, status=RenderJob.Status.RUNNING, heartbeat_at__lt=cutoff)
                .first()
            )
            if job is None:
                continue
            _remove_partials(job)
            worker = {"host": job.worker_host, "pid": job.worker_pid, "attempt": job.attempts}
            if job.cancel_requested:
                _finish(
                    job.pk, RenderJob.Status.CANCELED, job_error("worker_lost_canceled", **worker)
                )
            else:
                _retry_or_fail(job, job_error("worker_lost", **worker))
            reaped += 1
    return reaped


def _requeue_lost_jobs(cutoff) -> int:
    """Enqueue again the jobs queued since before ``cutoff`` that have no task in the broker:
    the broker failed between the queue check and the enqueue after commit, or lost its data.
    Fresh jobs are left alone (their task may be on its way); a job enqueued twice is still
    rendered once (_claim takes only a queued job, under a row lock)."""
    waiting = list(
        RenderJob.objects.filter(
            status=RenderJob.Status.QUEUED, cancel_requested=False, queued_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    if not waiting:
        return 0
    try:
        known = queue.ids_waiting(queue.render_queue(), RENDER_TASK)
    except Exception:
        logger.exception("cannot list the render queue; queued jobs are checked next time")
        return 0
    if known is None:
        return 0
    lost = [pk for pk in waiting if pk not in known]
    if lost:
        logger.warning("render jobs %s were queued with no task in the broker: enqueued", lost)
        enqueue_renders(lost)
    return len(lost)


def _remove_partials(job: RenderJob) -> None:
    """Delete what the dead attempt left in storage: if it died between storing its video and
    recording it, the unrecorded files of that attempt (and, in a bucket, an unfinished
    multipart upload). Its scratch folder is on its own host, swept there."""
    folder = f"outputs/{job.batch.project.organization_id}/{job.batch_id}"
    storage.delete_matching(folder, f"job{job.pk}-a{job.attempts}.*")
    storage.delete_matching(folder, f".job{job.pk}-a*")
