"""The worker side of a render job: claim it, speak its script when it has one (once per
script), render it in a scratch folder of this host with the batch's output options, store the
video, its thumbnail and its subtitles (SRT), record the output; progress, heartbeat, cancel
and time limit on the way. Called by ``jobs.tasks.render_job`` on the render cluster."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
import zlib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.webhooks import webhook_emit
from core.storage import media as storage
from core.storage.disk import disk_full
from core.storage.scratch import scratch_for, sweep_scratch
from jobs.engines import label_for, load_engine
from jobs.models import Asset, Output, RenderJob
from jobs.reasons import JobError, inference_job_error, job_error
from jobs.services.avatars import prepared_avatar
from jobs.services.batches import batch_check_completed, enqueue_renders_on_commit
from jobs.services.output_options import output_options
from jobs.services.scripts import script_audio
from jobs.services.subtitles import subtitle_cues

logger = logging.getLogger(__name__)


def _claim(job_id: int, device: str) -> RenderJob | None:
    """Mark a queued job running on this worker; None when it is not ours to run."""
    with transaction.atomic():
        job = (
            RenderJob.objects.select_for_update(of=("self",))
            .select_related("avatar", "audio", "script", "batch__project")
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
        job.error, job.error_code, job.error_params = "", "", {}
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


def _finish(job_id: int, status: str, error: JobError | str = "") -> None:
    """End the job with ``status``; ``error`` says why (a :class:`JobError`, worded for each
    reader, or English text alone)."""
    if not isinstance(error, JobError):
        error = JobError("", {}, error)
    RenderJob.objects.filter(pk=job_id).update(
        status=status, finished_at=timezone.now(), **error.fields()
    )
    batch_id, org_id = RenderJob.objects.values_list(
        "batch_id", "batch__project__organization_id"
    ).get(pk=job_id)
    if status == RenderJob.Status.FAILED:
        # Webhooks go to programs, not people: the English wording.
        webhook_emit(
            organization_id=org_id,
            event="job.failed",
            payload={"job": job_id, "batch": batch_id, "error": error.english[:4000]},
        )
    batch_check_completed(batch_id=batch_id)


def output_name(job: RenderJob, audio: Asset | None = None) -> str:
    """The download name of a job's video: the name it was given (a sheet's output name),
    else one built from the display names of its avatar and its audio (``audio``: the one it
    speaks, when it is a script's)."""
    if job.output_name:
        return f"{job.output_name}.mp4"
    audio = audio or job.audio_asset
    avatar_stem = Path(job.avatar.original_name).stem[:60] or "avatar"
    audio_stem = (Path(audio.original_name).stem if audio else "")[:60] or "audio"
    return f"{avatar_stem}__{audio_stem}.mp4"


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
            **job_error("device_unusable", host=host, reason=str(exc)).fields()
        )
        return "skipped"
    job = _claim(job_id, str(device))
    if job is None:
        return "skipped"
    _sweep_dead_scratch()
    with scratch_for(job.pk, job.attempts) as scratch:
        return _render_in(job, scratch, device)


def _sweep_dead_scratch() -> None:
    def running(job_ids: set[int]) -> set[tuple[int, int]]:
        jobs = RenderJob.objects.filter(pk__in=job_ids, status=RenderJob.Status.RUNNING)
        return set(jobs.values_list("pk", "attempts"))

    sweep_scratch(running)


def _render_in(job: RenderJob, scratch: Path, device) -> str:
    from inference.errors import InferenceError, RenderCanceled
    from inference.media import make_thumbnail
    from inference.subtitles import write_srt

    batch = job.batch
    base = f"outputs/{batch.project.organization_id}/{batch.pk}/job{job.pk}-a{job.attempts}"
    video_name, thumb_name, srt_name = base + ".mp4", base + ".jpg", base + ".srt"
    stored: list[str] = []
    tracker = _JobTracker(job)
    srt = None
    try:
        if job.audio_id:
            audio_asset = job.audio
        else:
            # A script: spoken here first, unless another job of it already did (or is).
            audio_asset = script_audio(
                script_id=job.script_id, scratch=scratch, should_cancel=tracker.should_cancel
            )
        cues = subtitle_cues(audio_asset)
        if cues:
            srt = write_srt(cues, scratch / "subtitles.srt")
        if job.burn_subtitles and srt is None:
            _finish(job.pk, RenderJob.Status.FAILED, job_error("no_subtitles"))
            return RenderJob.Status.FAILED
        avatar = storage.fetch(job.avatar.file.name, scratch)
        audio = storage.fetch(audio_asset.file.name, scratch)
        engine = load_engine(job.engine)
        prepared = prepared_avatar(
            asset=job.avatar,
            engine=engine,
            avatar=avatar,
            scratch=scratch,
            should_cancel=tracker.should_cancel,
        )
        options = output_options(
            batch, scratch=scratch, subtitles=srt if job.burn_subtitles else None
        )
        result = engine.render(
            avatar,
            audio,
            scratch / "output.mp4",
            tracker.progress,
            device=device,
            batch_size=settings.RENDER_BATCH_SIZE,
            should_cancel=tracker.should_cancel,
            prepared=prepared,
            output=options,
        )
        thumb = make_thumbnail(result.path, scratch / "thumb.jpg", 320)
        storage.save_file(result.path, video_name, sha256=result.sha256, move=True)
        stored.append(video_name)
        storage.save_file(thumb, thumb_name, move=True)
        stored.append(thumb_name)
        subtitles = _store_subtitles(srt, srt_name) if srt is not None else {}
        if subtitles:
            stored.append(srt_name)
    except RenderCanceled:
        _delete_all(stored)
        if tracker.timed_out:
            _finish(
                job.pk,
                RenderJob.Status.FAILED,
                job_error("time_limit", seconds=settings.RENDER_TIME_LIMIT_S),
            )
            return RenderJob.Status.FAILED
        _finish(job.pk, RenderJob.Status.CANCELED, job_error("canceled_while_rendering"))
        return RenderJob.Status.CANCELED
    except FileNotFoundError as exc:
        _delete_all(stored)
        logger.warning("render job %s: input missing: %s", job.pk, exc)
        _finish(job.pk, RenderJob.Status.FAILED, job_error("input_missing", detail=str(exc)))
        return RenderJob.Status.FAILED
    except Exception as exc:
        _delete_all(stored)
        if disk_full(exc):
            # Another attempt right away would hit the same full disk.
            full = job_error("disk_full")
            logger.error("render job %s: %s (%s)", job.pk, full.english, exc)
            _finish(job.pk, RenderJob.Status.FAILED, full)
            return RenderJob.Status.FAILED
        if isinstance(exc, InferenceError):
            # The inputs, the voice or the engine refused: another attempt would fail the
            # same way.
            logger.warning("render job %s failed: %s", job.pk, exc)
            refused = inference_job_error(exc, engine=label_for(job.engine))
            _finish(job.pk, RenderJob.Status.FAILED, refused)
            return RenderJob.Status.FAILED
        logger.exception("render job %s crashed (attempt %s)", job.pk, job.attempts)
        return _retry_or_fail(job, job_error("internal", reason=f"{type(exc).__name__}: {exc}"))
    with transaction.atomic():
        Output.objects.create(
            job_id=job.pk,
            file=video_name,
            thumbnail=thumb_name,
            name=output_name(job, audio_asset),
            bytes=result.bytes,
            sha256=result.sha256,
            crc32=result.crc32,
            duration=result.duration,
            width=result.width,
            height=result.height,
            **subtitles,
        )
        RenderJob.objects.filter(pk=job.pk).update(
            status=RenderJob.Status.SUCCEEDED,
            frames_done=result.frames,
            frames_total=result.frames,
            finished_at=timezone.now(),
            error="",
            error_code="",
            error_params={},
        )
    batch_check_completed(batch_id=job.batch_id)
    return RenderJob.Status.SUCCEEDED


def _store_subtitles(srt: Path, name: str) -> dict[str, object]:
    """Store the video's SRT next to it; the Output fields that describe it."""
    data = srt.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    storage.save_file(srt, name, sha256=sha256, move=True)
    return {
        "subtitles": name,
        "subtitles_bytes": len(data),
        "subtitles_sha256": sha256,
        "subtitles_crc32": zlib.crc32(data),
    }


def _delete_all(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            storage.delete(name)


def _retry_or_fail(job: RenderJob, reason: JobError) -> str:
    if job.attempts < settings.RENDER_MAX_ATTEMPTS:
        retrying = job_error("retrying", attempt=job.attempts, reason=reason.nested())
        RenderJob.objects.filter(pk=job.pk).update(
            status=RenderJob.Status.QUEUED, heartbeat_at=None, **retrying.fields()
        )
        enqueue_renders_on_commit([job.pk])
        return RenderJob.Status.QUEUED
    _finish(
        job.pk,
        RenderJob.Status.FAILED,
        job_error("gave_up", attempts=job.attempts, reason=reason.nested()),
    )
    return RenderJob.Status.FAILED
