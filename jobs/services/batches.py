"""Projects, batches and their render jobs as people ask for them: cancel, retry (submission
is ``jobs.services.submission``); and the moment a batch completes (a notification and the
``batch.completed`` webhook).

Jobs are queued on the render cluster after commit, after asking the broker first
(``core.queue``'s policy): a broker that is down refuses the submission and creates nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.preferences import language_of
from accounts.services import notify, require
from accounts.webhooks import webhook_emit
from core import links, queue
from jobs.engines import all_engines, engine_label, offered_engines
from jobs.models import Batch, Project, RenderJob
from jobs.reasons import job_error

TAG_RE = re.compile(r"^[\w][\w .-]{0,39}$")
RENDER_TASK = "jobs.tasks.render_job"


def _render_task_options() -> dict[str, Any]:
    return {
        "name": "render-job",
        "timeout": settings.RENDER_TIME_LIMIT_S + 300,
        "cluster": queue.render_queue(),
    }


def enqueue_renders(job_ids: Iterable[int]) -> int:
    """Give these queued jobs a task on the render queue now; returns how many were queued
    (a broker error is logged: the jobs stay queued and the reaper tries again)."""
    return queue.enqueue(RENDER_TASK, job_ids, **_render_task_options())


def enqueue_renders_on_commit(job_ids: Iterable[int]) -> None:
    """Give these jobs a task once the current transaction commits."""
    queue.enqueue_on_commit(RENDER_TASK, job_ids, **_render_task_options())


@transaction.atomic
def project_create(
    *, membership: Membership, name: str, description: str = "", meta: RequestMeta = SYSTEM
) -> Project:
    require(membership, "project.create")
    project = Project(
        organization=membership.organization,
        name=(name or "").strip(),
        description=(description or "").strip(),
        created_by=membership.user,
    )
    project.full_clean()
    project.save()
    record_event(
        organization=membership.organization,
        action="project.created",
        actor=membership.user,
        target=Target.of(project),
        meta=meta,
    )
    return project


def parse_tags(raw: str | Iterable[str]) -> list[str]:
    """ "a, b ,a" -> ["a", "b"]; each tag 1-40 word characters, spaces, dots or hyphens."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    tags: list[str] = []
    for item in items:
        tag = re.sub(r"\s+", " ", str(item)).strip().lower()
        if not tag:
            continue
        if not TAG_RE.match(tag):
            raise ValidationError(
                {
                    "tags": _(
                        "“%(tag)s” is not a valid tag: use up to 40 letters, digits, spaces, "
                        "dots or hyphens."
                    )
                    % {"tag": tag[:50]}
                }
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > 20:
        raise ValidationError(
            {
                "tags": ngettext("Use at most %(num)d tag.", "Use at most %(num)d tags.", 20)
                % {"num": 20}
            }
        )
    return tags


def engine_check(engine: str) -> None:
    """Refuse an unknown engine or one that cannot run here. The person is told which engines
    they can use; why one is not set up is for operators (``manage.py check``)."""
    offered = [e.name for e in offered_engines()]
    if engine in offered:
        return
    known = {e.name: e for e in all_engines()}
    # Engine names are the same in every language; only the sentence around them changes.
    choices = ", ".join(offered)
    if engine in known:
        raise ValidationError(
            {
                "engine": _(
                    "The %(engine)s engine is not set up on this installation: choose "
                    "%(choices)s instead, or ask your administrator to set it up."
                )
                % {"engine": engine_label(known[engine]), "choices": choices}
            }
        )
    raise ValidationError(
        {
            "engine": _("Unknown engine %(engine)s: choose one of %(choices)s.")
            % {"engine": repr(engine)[:40], "choices": choices}
        }
    )


def _cancel_jobs(jobs) -> int:
    """Queued jobs stop now; running ones at their next frame batch."""
    now = timezone.now()
    jobs = jobs.exclude(status__in=RenderJob.FINAL)
    batch_ids = set(jobs.values_list("batch_id", flat=True))
    canceled = jobs.filter(status=RenderJob.Status.QUEUED).update(
        status=RenderJob.Status.CANCELED,
        cancel_requested=True,
        finished_at=now,
        **job_error("canceled_before_start").fields(),
    )
    running = jobs.filter(status=RenderJob.Status.RUNNING).update(cancel_requested=True)
    for batch_id in batch_ids:
        transaction.on_commit(lambda b=batch_id: batch_check_completed(batch_id=b))
    return canceled + running


@transaction.atomic
def batch_cancel(*, membership: Membership, batch: Batch, meta: RequestMeta = SYSTEM) -> int:
    require(membership, "batch.cancel")
    batch = Batch.objects.get(pk=batch.pk, project__organization=membership.organization_id)
    affected = _cancel_jobs(RenderJob.objects.select_for_update().filter(batch=batch))
    if not affected:
        raise ValidationError(
            _("Nothing to cancel: every job of this batch has finished."), code="finished"
        )
    record_event(
        organization=membership.organization,
        action="batch.canceled",
        actor=membership.user,
        target=Target.of(batch),
        meta=meta,
        file_count=affected,
    )
    return affected


def _job_in_org(membership: Membership, job: RenderJob) -> RenderJob:
    return RenderJob.objects.select_for_update().get(
        pk=job.pk, batch__project__organization=membership.organization_id
    )


@transaction.atomic
def job_cancel(*, membership: Membership, job: RenderJob, meta: RequestMeta = SYSTEM) -> None:
    require(membership, "job.cancel")
    job = _job_in_org(membership, job)
    if not _cancel_jobs(RenderJob.objects.filter(pk=job.pk)):
        raise ValidationError(
            _("Job %(number)s has already finished (%(status)s).")
            % {"number": job.number, "status": job.get_status_display()},
            code="finished",
        )
    record_event(
        organization=membership.organization,
        action="job.canceled",
        actor=membership.user,
        target=Target.of(job),
        meta=meta,
    )


@transaction.atomic
def job_retry(*, membership: Membership, job: RenderJob, meta: RequestMeta = SYSTEM) -> RenderJob:
    """Queue a failed or canceled job again, with a fresh attempt budget."""
    require(membership, "job.retry")
    job = _job_in_org(membership, job)
    if job.status not in (RenderJob.Status.FAILED, RenderJob.Status.CANCELED):
        raise ValidationError(
            _("Only failed or canceled jobs can be retried; this one is %(status)s.")
            % {"status": job.get_status_display()},
            code="not_retryable",
        )
    gone = [
        asset
        for asset in (job.avatar, job.audio or (job.script.audio if job.script_id else None))
        if asset is not None and asset.is_deleted
    ]
    if gone:
        raise ValidationError(
            _(
                "This video cannot be made again: “%(name)s” was deleted from the library. "
                "Upload it again and submit a new batch."
            )
            % {"name": gone[0].original_name},
            code="asset_deleted",
        )
    engine_check(job.engine)
    queue.queue_check(queue.render_queue())
    job.status = RenderJob.Status.QUEUED
    job.attempts = job.frames_done = job.frames_total = 0
    job.error, job.error_code, job.error_params = "", "", {}
    job.cancel_requested = False
    job.queued_at, job.started_at, job.finished_at, job.heartbeat_at = (
        timezone.now(),
        None,
        None,
        None,
    )
    job.save()
    record_event(
        organization=membership.organization,
        action="job.retried",
        actor=membership.user,
        target=Target.of(job),
        meta=meta,
    )
    enqueue_renders_on_commit([job.pk])
    return job


def batch_check_completed(*, batch_id: int) -> bool:
    """Mark the batch completed when its last job has finished, exactly once, and tell the
    person who submitted it. Returns True for the call that completed it."""
    if RenderJob.objects.filter(batch_id=batch_id).exclude(status__in=RenderJob.FINAL).exists():
        return False
    if not Batch.objects.filter(pk=batch_id, completed_at=None).update(completed_at=timezone.now()):
        return False  # another worker got there first
    batch = Batch.objects.select_related("project__organization", "created_by").get(pk=batch_id)
    counts = dict(batch.jobs.values("status").annotate(n=Count("id")).values_list("status", "n"))
    done, total = counts.get(RenderJob.Status.SUCCEEDED, 0), sum(counts.values())
    organization = batch.project.organization
    if batch.created_by_id:
        failed = total - done
        # Stored text, read later in the list and in the e-mail: in the recipient's language.
        with translation.override(language_of(batch.created_by)):
            values = {
                "batch": str(batch),
                "project": batch.project.name,
                "done": done,
                "total": total,
                "failed": failed,
            }
            if failed:
                message = ngettext(
                    "%(batch)s of %(project)s finished: %(done)d of %(total)d video rendered, "
                    "%(failed)d failed or canceled.",
                    "%(batch)s of %(project)s finished: %(done)d of %(total)d videos rendered, "
                    "%(failed)d failed or canceled.",
                    total,
                )
            else:
                message = ngettext(
                    "%(batch)s of %(project)s finished: %(done)d of %(total)d video rendered.",
                    "%(batch)s of %(project)s finished: %(done)d of %(total)d videos rendered.",
                    total,
                )
            message %= values
        notify(
            user=batch.created_by,
            organization=organization,
            kind="batch.completed",
            level="success" if not failed else "error",
            message=message,
            link=links.batch_page(organization.slug, batch.pk),
        )
    webhook_emit(
        organization_id=organization.pk,
        event="batch.completed",
        payload={
            "batch": batch.pk,
            "project": batch.project_id,
            "status": Batch.status_from_counts(counts),
            "counts": counts,
            "total": total,
            "succeeded": done,
        },
    )
    return True
