"""Writes and business rules for projects, assets, batches and render jobs.

Web views and queue tasks stay thin and call these. Every service takes the acting
membership, checks the permission table, and writes its audit row in the same transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.services import notify, require
from accounts.webhooks import webhook_emit
from heygem_site import links
from jobs import storage
from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag

logger = logging.getLogger(__name__)

# ffmpeg's format names -> the extension we store under, per kind. The content decides.
VIDEO_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "mkv",
    "avi": "avi",
}
AUDIO_CONTAINERS = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "matroska,webm": "mka",
}
TAG_RE = re.compile(r"^[\w][\w .-]{0,39}$")
FACE_SEARCH_SECONDS = 3.0


@dataclass(frozen=True)
class UploadedMedia:
    """An upload already streamed to a temp file, with the name the browser sent."""

    path: Path
    original_name: str


def display_name(raw: str, fallback: str = "upload") -> str:
    """A safe display name: no folders, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or fallback


def _probe_upload(kind: str, upload: UploadedMedia):
    from inference.errors import MediaError
    from inference.face import detect_face_in_video
    from inference.media import probe

    label = display_name(upload.original_name)
    try:
        info = probe(upload.path, verify=True)
    except MediaError as exc:
        raise ValidationError(f"“{label}”: {exc}") from exc
    if kind == Asset.Kind.AVATAR and not info.has_video:
        raise ValidationError(f"“{label}” has no video stream: an avatar must be a video.")
    if kind == Asset.Kind.AUDIO and not info.has_audio:
        raise ValidationError(f"“{label}” has no audio stream: upload a sound file.")
    containers = VIDEO_CONTAINERS if kind == Asset.Kind.AVATAR else AUDIO_CONTAINERS
    ext = containers.get(info.format_name)
    if ext is None:
        raise ValidationError(
            f"“{label}” is a {info.format_name} file, which is not accepted here. Use "
            + (
                "MP4, MOV, MKV/WebM or AVI."
                if kind == Asset.Kind.AVATAR
                else "WAV, MP3, M4A/AAC, OGG or FLAC (or a video with a sound track)."
            )
        )
    face = None
    if kind == Asset.Kind.AVATAR:
        if info.duration > settings.ASSET_MAX_VIDEO_SECONDS:
            raise ValidationError(
                f"“{label}” lasts {info.duration:.0f} s; avatar videos may last at most "
                f"{settings.ASSET_MAX_VIDEO_SECONDS:.0f} s."
            )
        if (info.width or 0) > settings.ASSET_MAX_WIDTH or (
            info.height or 0
        ) > settings.ASSET_MAX_HEIGHT:
            raise ValidationError(
                f"“{label}” is {info.width}×{info.height}; the largest accepted size is "
                f"{settings.ASSET_MAX_WIDTH}×{settings.ASSET_MAX_HEIGHT}."
            )
        try:
            box = detect_face_in_video(upload.path, seconds=FACE_SEARCH_SECONDS, info=info)
        except MediaError as exc:
            raise ValidationError(f"“{label}”: {exc}") from exc
        if box is None:
            raise ValidationError(
                f"No face was found in the first {FACE_SEARCH_SECONDS:.0f} seconds of “{label}”. "
                "Use a video where one face looks at the camera, well lit."
            )
        face = {"x": box.x, "y": box.y, "w": box.w, "h": box.h}
    elif info.duration > settings.ASSET_MAX_AUDIO_SECONDS:
        raise ValidationError(
            f"“{label}” lasts {info.duration:.0f} s; audio may last at most "
            f"{settings.ASSET_MAX_AUDIO_SECONDS:.0f} s."
        )
    if info.duration <= 0:
        raise ValidationError(f"“{label}” has no playable content (zero length).")
    return info, ext, face


def asset_create(
    *, membership: Membership, kind: str, upload: UploadedMedia, meta: RequestMeta = SYSTEM
) -> Asset:
    """Validate an uploaded file by its content and store it under a generated name.

    Raises ValidationError with a reason a person can act on; then no row and no file remain.
    """
    require(membership, "asset.upload")
    if kind not in Asset.Kind.values:
        raise ValidationError(f"{kind!r} is not an asset kind.")
    if upload.path.stat().st_size > settings.ASSET_MAX_BYTES:
        raise ValidationError(
            f"“{display_name(upload.original_name)}” is larger than the "
            f"{settings.ASSET_MAX_BYTES / 1e6:.0f} MB limit."
        )
    if upload.path.stat().st_size == 0:
        raise ValidationError(f"“{display_name(upload.original_name)}” is empty.")
    info, ext, face = _probe_upload(kind, upload)
    name = f"assets/{membership.organization_id}/{uuid.uuid4().hex}.{ext}"
    saved = storage.save_file(upload.path, name)
    size, sha256 = saved.bytes, saved.sha256
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                organization=membership.organization,
                kind=kind,
                file=name,
                original_name=display_name(upload.original_name),
                container=info.format_name[:64],
                duration=info.duration,
                video_codec=(info.video_codec or "")[:32] if info.has_video else "",
                audio_codec=(info.audio_codec or "")[:32],
                width=info.width if info.has_video else None,
                height=info.height if info.has_video else None,
                fps=info.fps if info.has_video else None,
                sample_rate=info.sample_rate,
                bytes=size,
                sha256=sha256,
                face_box=face,
                created_by=membership.user,
            )
            record_event(
                organization=membership.organization,
                action="asset.uploaded",
                actor=membership.user,
                target=Target.of(asset),
                meta=meta,
                file_count=1,
                total_bytes=size,
                detail={"kind": kind, "sha256": sha256, "duration": round(info.duration, 3)},
            )
    except BaseException:
        storage.delete(name)
        raise
    return asset


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
                    "tags": f"“{tag[:50]}” is not a valid tag: use up to 40 letters, digits, "
                    "spaces, dots or hyphens."
                }
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > 20:
        raise ValidationError({"tags": "Use at most 20 tags."})
    return tags


def engine_check(engine: str) -> None:
    """Refuse an unknown engine or one that cannot run here, saying why."""
    from inference.catalog import list_engines

    engines = {e.name: e for e in list_engines(checkpoint=settings.WAV2LIP_CHECKPOINT or None)}
    if engine not in engines:
        raise ValidationError(
            {"engine": f"Unknown engine {engine!r}: choose one of {', '.join(engines)}."}
        )
    if not engines[engine].available:
        raise ValidationError({"engine": f"{engines[engine].label}: {engines[engine].reason}"})


QUEUE_DOWN = (
    "The task queue cannot be reached right now, so nothing was submitted. Try again in a "
    "minute; if it persists, ask your administrator to check Redis."
)


def queue_check(cluster: str | None = None) -> None:
    """Refuse new work the queue could not take — asked before anything is written, so a
    broker outage leaves no half-created batch or export behind."""
    from django_q.brokers import get_broker

    from heygem_site.queue import RENDER_CLUSTER

    try:
        reachable = get_broker(cluster or RENDER_CLUSTER).ping()
    except Exception:
        logger.exception("the task queue broker is not reachable")
        reachable = False
    if not reachable:
        raise ValidationError(QUEUE_DOWN, code="queue_unavailable")


def _enqueue(job_ids: Sequence[int]) -> None:
    from django_q.tasks import async_task

    from heygem_site.queue import RENDER_CLUSTER

    for job_id in job_ids:
        try:
            async_task(
                "jobs.tasks.render_job",
                job_id,
                q_options={
                    "cluster": RENDER_CLUSTER,
                    "task_name": f"render-job-{job_id}-{uuid.uuid4().hex[:6]}",
                    "timeout": settings.RENDER_TIME_LIMIT_S + 300,
                },
            )
        except Exception:
            # Called after commit: the job is saved and stays queued. The reaper gives it a
            # task again once the broker is back (reap_stale_jobs, every minute).
            logger.exception("could not enqueue render job %s; the reaper will", job_id)


def batch_submit(
    *,
    membership: Membership,
    project: Project,
    avatars: Sequence[Asset],
    audios: Sequence[Asset],
    tags: str | Iterable[str] = (),
    engine: str = "warp",
    name: str = "",
    meta: RequestMeta = SYSTEM,
) -> Batch:
    """Create a batch and one render job per (avatar, audio) pair, queued after commit."""
    require(membership, "batch.submit")
    org_id = membership.organization_id
    if project.organization_id != org_id:
        raise Project.DoesNotExist("No such project.")
    avatars, audios = list(dict.fromkeys(avatars)), list(dict.fromkeys(audios))
    if not avatars:
        raise ValidationError({"avatars": "Choose or upload at least one avatar video."})
    if not audios:
        raise ValidationError({"audios": "Choose or upload at least one audio track."})
    for asset, kind in [(a, Asset.Kind.AVATAR) for a in avatars] + [
        (a, Asset.Kind.AUDIO) for a in audios
    ]:
        if asset.organization_id != org_id:
            raise ValidationError("One of the chosen files does not exist.")
        if asset.kind != kind:
            raise ValidationError(f"“{asset.original_name}” is not an {kind} file.")
    pairs = len(avatars) * len(audios)
    if pairs > settings.BATCH_MAX_JOBS:
        raise ValidationError(
            f"{len(avatars)} avatars × {len(audios)} audio tracks = {pairs} videos; one batch "
            f"may hold at most {settings.BATCH_MAX_JOBS}. Split it into several batches."
        )
    tag_names = parse_tags(tags)
    engine_check(engine)
    queue_check()
    name = (name or "").strip()[:120]
    with transaction.atomic():
        batch = Batch.objects.create(
            project=project, name=name, created_by=membership.user, engine=engine
        )
        if tag_names:
            for tag in tag_names:
                Tag.objects.get_or_create(organization_id=org_id, name=tag)
            batch.tags.set(Tag.objects.filter(organization_id=org_id, name__in=tag_names))
        now = timezone.now()
        jobs = RenderJob.objects.bulk_create(
            RenderJob(batch=batch, avatar=av, audio=au, engine=engine, queued_at=now)
            for av in avatars
            for au in audios
        )
        job_ids = (
            [j.pk for j in jobs]
            if jobs[0].pk
            else list(batch.jobs.order_by("id").values_list("id", flat=True))
        )
        record_event(
            organization=membership.organization,
            action="batch.submitted",
            actor=membership.user,
            target=Target.of(batch),
            meta=meta,
            file_count=pairs,
            total_bytes=sum(a.bytes for a in (*avatars, *audios)),
            detail={
                "project": project.pk,
                "engine": engine,
                "avatars": len(avatars),
                "audios": len(audios),
                "tags": tag_names,
            },
        )
        transaction.on_commit(lambda: _enqueue(job_ids))
    return batch


def _cancel_jobs(jobs) -> int:
    """Queued jobs stop now; running ones at their next frame batch."""
    now = timezone.now()
    jobs = jobs.exclude(status__in=RenderJob.FINAL)
    batch_ids = set(jobs.values_list("batch_id", flat=True))
    canceled = jobs.filter(status=RenderJob.Status.QUEUED).update(
        status=RenderJob.Status.CANCELED,
        cancel_requested=True,
        finished_at=now,
        error="Canceled before it started.",
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
        raise ValidationError("Nothing to cancel: every job of this batch has finished.")
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
        raise ValidationError(f"Job {job.pk} has already {job.status}.")
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
            f"Only failed or canceled jobs can be retried; this one is {job.status}."
        )
    engine_check(job.engine)
    queue_check()
    job.status = RenderJob.Status.QUEUED
    job.attempts = job.frames_done = job.frames_total = 0
    job.error = ""
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
    transaction.on_commit(lambda: _enqueue([job.pk]))
    return job


# --- the worker side -------------------------------------------------------------------------


def _claim(job_id: int, device: str) -> RenderJob | None:
    """Mark a queued job running on this worker; None when it is not ours to run."""
    with transaction.atomic():
        job = (
            RenderJob.objects.select_for_update()
            .select_related("avatar", "audio", "batch__project")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status != RenderJob.Status.QUEUED or job.cancel_requested:
            return None
        now = timezone.now()
        job.status = RenderJob.Status.RUNNING
        job.attempts += 1
        job.worker_host = socket.gethostname()[:255]
        job.worker_pid = os.getpid()
        job.device = device[:32]
        job.started_at = job.heartbeat_at = now
        job.frames_done = 0
        job.error = ""
        job.save()
        return job


class _JobTracker:
    """Progress, heartbeat, cancel and time limit, written to the job row at most every
    ``interval`` seconds so the database is not hammered by every frame batch."""

    def __init__(self, job: RenderJob, interval: float = 0.5) -> None:
        self.job_id = job.pk
        self.interval = interval
        self.deadline = time.monotonic() + settings.RENDER_TIME_LIMIT_S
        self.timed_out = False
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._canceled = False

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_write >= self.interval or done >= total:
            RenderJob.objects.filter(pk=self.job_id).update(
                frames_done=done, frames_total=total, heartbeat_at=timezone.now()
            )
            self._last_write = now

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if now > self.deadline:
            self.timed_out = True
            return True
        if not self._canceled and now - self._last_cancel_check >= self.interval:
            self._last_cancel_check = now
            self._canceled = RenderJob.objects.filter(
                pk=self.job_id, cancel_requested=True
            ).exists()
        return self._canceled


def _finish(job_id: int, status: str, error: str = "") -> None:
    RenderJob.objects.filter(pk=job_id).update(
        status=status, error=error[:4000], finished_at=timezone.now()
    )
    batch_id, org_id = RenderJob.objects.values_list(
        "batch_id", "batch__project__organization_id"
    ).get(pk=job_id)
    if status == RenderJob.Status.FAILED:
        webhook_emit(
            organization_id=org_id,
            event="job.failed",
            payload={"job": job_id, "batch": batch_id, "error": error[:4000]},
        )
    batch_check_completed(batch_id=batch_id)


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
        notify(
            user=batch.created_by,
            organization=organization,
            kind="batch.completed",
            level="success" if not failed else "error",
            message=f"{batch} of {batch.project.name} finished: {done} of {total} videos rendered"
            + (f", {failed} failed or canceled." if failed else "."),
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


def output_name(job: RenderJob) -> str:
    """The download name of a job's video: readable, built from the display names."""
    avatar = Path(job.avatar.original_name).stem[:60] or "avatar"
    audio = Path(job.audio.original_name).stem[:60] or "audio"
    return f"{avatar}__{audio}.mp4"


def render_job_run(*, job_id: int) -> str:
    """Render one job on this worker: claim, render, record the output. Returns the status.

    The attempt works in its own scratch folder on this host: inputs are fetched there when
    media live in a bucket, the video and thumbnail are written there, then stored (renamed
    into the media folder, or uploaded with their SHA-256). The folder is removed whatever
    happens; folders of attempts killed on this host are swept before the next one starts.
    """
    from inference.device import pick_device
    from inference.errors import InferenceError

    try:
        device = pick_device(settings.INFERENCE_DEVICE or None)
    except InferenceError as exc:
        # This host's configuration is wrong, not the job: leave it queued for a worker that
        # can run it, and say so where people look (the job's row and the worker's log).
        host = socket.gethostname()
        logger.error("render worker on %s cannot start job %s: %s", host, job_id, exc)
        RenderJob.objects.filter(pk=job_id, status=RenderJob.Status.QUEUED).update(
            error=f"A render worker on {host} cannot use its device ({exc}); the job waits for "
            "another worker. Administrators: fix INFERENCE_DEVICE on that host."
        )
        return "skipped"
    job = _claim(job_id, str(device))
    if job is None:
        return "skipped"
    _sweep_dead_scratch()
    with storage.scratch_for(job.pk, job.attempts) as scratch:
        return _render_in(job, scratch, device)


def _sweep_dead_scratch() -> None:
    def running(job_ids: set[int]) -> set[tuple[int, int]]:
        jobs = RenderJob.objects.filter(pk__in=job_ids, status=RenderJob.Status.RUNNING)
        return set(jobs.values_list("pk", "attempts"))

    storage.sweep_scratch(running)


DISK_FULL = (
    "The disk of the render worker or of the media storage is full (No space left on "
    "device). Free some space, then retry the job."
)


def _render_in(job: RenderJob, scratch: Path, device) -> str:
    from inference.engines import get_engine
    from inference.errors import InferenceError, RenderCanceled
    from inference.media import make_thumbnail

    batch = job.batch
    base = f"outputs/{batch.project.organization_id}/{batch.pk}/job{job.pk}-a{job.attempts}"
    video_name, thumb_name = base + ".mp4", base + ".jpg"
    stored: list[str] = []
    tracker = _JobTracker(job)
    try:
        avatar = storage.fetch(job.avatar.file.name, scratch)
        audio = storage.fetch(job.audio.file.name, scratch)
        engine = get_engine(job.engine, checkpoint=settings.WAV2LIP_CHECKPOINT or None)
        result = engine.render(
            avatar,
            audio,
            scratch / "output.mp4",
            tracker.progress,
            device=device,
            batch_size=settings.RENDER_BATCH_SIZE,
            should_cancel=tracker.should_cancel,
        )
        thumb = make_thumbnail(result.path, scratch / "thumb.jpg", 320)
        storage.save_file(result.path, video_name, sha256=result.sha256, move=True)
        stored.append(video_name)
        storage.save_file(thumb, thumb_name, move=True)
        stored.append(thumb_name)
    except RenderCanceled:
        _delete_all(stored)
        if tracker.timed_out:
            _finish(
                job.pk,
                RenderJob.Status.FAILED,
                f"Stopped after the {settings.RENDER_TIME_LIMIT_S} s time limit per job.",
            )
            return RenderJob.Status.FAILED
        _finish(job.pk, RenderJob.Status.CANCELED, "Canceled while rendering.")
        return RenderJob.Status.CANCELED
    except FileNotFoundError as exc:
        _delete_all(stored)
        logger.warning("render job %s: input missing: %s", job.pk, exc)
        _finish(job.pk, RenderJob.Status.FAILED, f"An input file is missing from storage: {exc}")
        return RenderJob.Status.FAILED
    except Exception as exc:
        _delete_all(stored)
        if storage.disk_full(exc):
            # Another attempt right away would hit the same full disk.
            logger.error("render job %s: %s (%s)", job.pk, DISK_FULL, exc)
            _finish(job.pk, RenderJob.Status.FAILED, DISK_FULL)
            return RenderJob.Status.FAILED
        if isinstance(exc, InferenceError):
            # The inputs or the engine refused: another attempt would fail the same way.
            logger.warning("render job %s failed: %s", job.pk, exc)
            _finish(job.pk, RenderJob.Status.FAILED, str(exc))
            return RenderJob.Status.FAILED
        logger.exception("render job %s crashed (attempt %s)", job.pk, job.attempts)
        return _retry_or_fail(job, f"Internal error: {type(exc).__name__}: {exc}")
    with transaction.atomic():
        Output.objects.create(
            job_id=job.pk,
            file=video_name,
            thumbnail=thumb_name,
            name=output_name(job),
            bytes=result.bytes,
            sha256=result.sha256,
            crc32=result.crc32,
            duration=result.duration,
            width=result.width,
            height=result.height,
        )
        RenderJob.objects.filter(pk=job.pk).update(
            status=RenderJob.Status.SUCCEEDED,
            frames_done=result.frames,
            frames_total=result.frames,
            finished_at=timezone.now(),
            error="",
        )
    batch_check_completed(batch_id=job.batch_id)
    return RenderJob.Status.SUCCEEDED


def _delete_all(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            storage.delete(name)


def _retry_or_fail(job: RenderJob, reason: str) -> str:
    if job.attempts < settings.RENDER_MAX_ATTEMPTS:
        RenderJob.objects.filter(pk=job.pk).update(
            status=RenderJob.Status.QUEUED,
            error=f"Attempt {job.attempts} failed ({reason}); retrying.",
            heartbeat_at=None,
        )
        transaction.on_commit(lambda: _enqueue([job.pk]))
        return RenderJob.Status.QUEUED
    _finish(
        job.pk,
        RenderJob.Status.FAILED,
        f"{reason} — gave up after {job.attempts} attempts.",
    )
    return RenderJob.Status.FAILED


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
            reason = (
                f"The worker ({job.worker_host}, pid {job.worker_pid}) stopped responding "
                f"during attempt {job.attempts}"
            )
            if job.cancel_requested:
                _finish(job.pk, RenderJob.Status.CANCELED, reason + "; the job was canceled.")
            else:
                _retry_or_fail(job, reason)
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
        known = _render_tasks_in_broker()
    except Exception:
        logger.exception("cannot list the render queue; queued jobs are checked next time")
        return 0
    if known is None:
        return 0
    lost = [pk for pk in waiting if pk not in known]
    if lost:
        logger.warning("render jobs %s were queued with no task in the broker: enqueued", lost)
        _enqueue(lost)
    return len(lost)


def _render_tasks_in_broker() -> set[int] | None:
    """The ids of the jobs the render queue holds a task for (waiting or being worked on)."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from heygem_site.queue import RENDER_CLUSTER

    if Conf.SYNC:
        return set()  # tasks run inline: the broker never holds one
    broker = get_broker(RENDER_CLUSTER)
    if isinstance(broker, ORM):
        payloads = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key)
        payloads = payloads.values_list("payload", flat=True).iterator()
    elif isinstance(broker, Redis):
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        return None  # a broker we cannot list: nothing is re-enqueued
    job_ids = set()
    for payload in payloads:
        try:
            task = SignedPackage.loads(payload)
        except Exception:
            logger.warning("an unreadable task in the render queue %s", RENDER_CLUSTER)
            continue
        if task.get("func") == "jobs.tasks.render_job" and task.get("args"):
            job_ids.add(int(task["args"][0]))
    return job_ids


def _remove_partials(job: RenderJob) -> None:
    """Delete what the dead attempt left in storage: if it died between storing its video and
    recording it, the unrecorded files of that attempt (and, in a bucket, an unfinished
    multipart upload). Its scratch folder is on its own host, swept there."""
    folder = f"outputs/{job.batch.project.organization_id}/{job.batch_id}"
    storage.delete_matching(folder, f"job{job.pk}-a{job.attempts}.*")
    storage.delete_matching(folder, f".job{job.pk}-a*")
