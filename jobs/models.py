"""Projects, uploaded assets, batches, render jobs and their outputs.

Every row reaches its organization: Project and Asset directly, Batch through its project,
RenderJob through its batch, Output through its job. Reads go through jobs.selectors.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from jobs.reasons import job_error_text


def _asset_path(instance: Asset, filename: str) -> str:
    return f"assets/{instance.organization_id}/{filename}"


def _output_path(instance: Output, filename: str) -> str:
    return f"outputs/{filename}"


def _watermark_path(instance: Batch, filename: str) -> str:
    return f"watermarks/{filename}"


class Project(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="projects",
        verbose_name=_("organization"),
    )
    name = models.CharField(_("name"), max_length=120, validators=[MinLengthValidator(1)])
    description = models.TextField(_("description"), blank=True, max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_project_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="tags", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=40)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_tag")]

    def __str__(self) -> str:
        return self.name


class AssetQuerySet(models.QuerySet):
    def in_library(self) -> AssetQuerySet:
        """Assets not deleted: what the library lists and what a batch may use."""
        return self.filter(deleted_at__isnull=True)


class Asset(models.Model):
    class Kind(models.TextChoices):
        AVATAR = "avatar", _("Avatar video")
        AUDIO = "audio", _("Audio track")

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="assets",
        verbose_name=_("organization"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to=_asset_path, max_length=255)
    original_name = models.CharField(
        _("file name"), max_length=200, help_text=_("Display only; never a path.")
    )
    container = models.CharField(_("container"), max_length=64, blank=True)
    duration = models.FloatField(_("duration (s)"))
    video_codec = models.CharField(_("video codec"), max_length=32, blank=True)
    audio_codec = models.CharField(_("audio codec"), max_length=32, blank=True)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    fps = models.FloatField(_("frame rate"), null=True, blank=True)
    sample_rate = models.PositiveIntegerField(_("sample rate"), null=True, blank=True)
    bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField("SHA-256", max_length=64)
    face_box = models.JSONField(_("face box"), null=True, blank=True)
    # Audio made from a script (on the render queue): its words, its voice and when each
    # sentence is spoken ([{"text", "start", "end"}], seconds), which times its subtitles.
    text = models.TextField(_("script"), blank=True)
    voice = models.CharField(_("voice"), max_length=100, blank=True)
    cues = models.JSONField(_("sentence timing"), null=True, blank=True)
    # An SRT a member attached to an uploaded audio track: checked against the audio's length
    # and kept as the SRT this app wrote from it (UTF-8, numbered, in time order).
    subtitles = models.TextField(_("subtitles"), blank=True)
    subtitles_name = models.CharField(_("subtitle file name"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    # Deleted from the library: hidden from it and from every choice, its file removed. The row
    # stays while finished jobs name it (their videos keep working); otherwise it goes too.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    objects = AssetQuerySet.as_manager()

    #: Set on the asset an upload turned out to be (the same bytes were already here).
    reused = False

    class Meta:
        verbose_name = _("asset")
        verbose_name_plural = _("assets")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "kind", "-created_at"])]
        constraints = [
            # One library entry per content and kind: an upload of the same bytes is the
            # asset already there (jobs.services.assets).
            models.UniqueConstraint(
                fields=["organization", "kind", "sha256"],
                condition=Q(deleted_at__isnull=True),
                name="uniq_asset_content",
            ),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def has_subtitles(self) -> bool:
        """Whether videos of this audio get subtitles (an attached SRT, or a script's timing)."""
        return bool(self.subtitles or self.cues)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Script(models.Model):
    """Words a voice speaks instead of an uploaded audio track. A job that speaks it has it
    synthesised on the render queue into an audio asset (``audio``), once, however many jobs
    of however many avatars speak it."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="scripts",
        verbose_name=_("organization"),
    )
    text = models.TextField(_("script"))
    voice = models.CharField(_("voice"), max_length=100)
    rate = models.FloatField(_("speaking rate"), default=1.0)
    pitch = models.FloatField(_("pitch"), default=1.0)
    audio = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("synthesised audio"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("script")
        verbose_name_plural = _("scripts")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.excerpt

    @property
    def excerpt(self) -> str:
        """The first words, for lists and names."""
        words = " ".join(self.text.split())
        return words if len(words) <= 40 else words[:39] + "…"


#: A batch's status (``Batch.status``: its jobs' statuses, plus ``partial`` and ``empty``) as
#: a person reads it.
BATCH_STATUS_WORDS = {
    "queued": pgettext_lazy("batch status", "queued"),
    "running": pgettext_lazy("batch status", "running"),
    "succeeded": pgettext_lazy("batch status", "succeeded"),
    "failed": pgettext_lazy("batch status", "failed"),
    "canceled": pgettext_lazy("batch status", "canceled"),
    "partial": pgettext_lazy("batch status", "partial"),
    "empty": pgettext_lazy("batch status", "empty"),
}


def batch_status_label(status: str) -> str:
    return str(BATCH_STATUS_WORDS.get(status, status))


class BatchQuerySet(models.QuerySet):
    def with_counts(self) -> BatchQuerySet:
        """Job counts per status in the same query, for list pages."""
        s = RenderJob.Status
        return self.annotate(
            jobs_total=Count("jobs"),
            jobs_queued=Count("jobs", filter=Q(jobs__status=s.QUEUED)),
            jobs_running=Count("jobs", filter=Q(jobs__status=s.RUNNING)),
            jobs_succeeded=Count("jobs", filter=Q(jobs__status=s.SUCCEEDED)),
            jobs_failed=Count("jobs", filter=Q(jobs__status=s.FAILED)),
            jobs_canceled=Count("jobs", filter=Q(jobs__status=s.CANCELED)),
        )


class Batch(models.Model):
    # Output options, applied in each render's single encode (inference.media.outputs).
    class Resolution(models.TextChoices):
        SOURCE = "source", _("Same as the avatar video")
        P1080 = "1080p", "1080p"
        P720 = "720p", "720p"
        P480 = "480p", "480p"

    class Quality(models.TextChoices):
        DRAFT = "draft", _("Draft (smaller files)")
        STANDARD = "standard", _("Standard")
        HIGH = "high", _("High (larger files)")

    class Corner(models.TextChoices):
        TOP_LEFT = "top-left", _("Top left")
        TOP_RIGHT = "top-right", _("Top right")
        BOTTOM_LEFT = "bottom-left", _("Bottom left")
        BOTTOM_RIGHT = "bottom-right", _("Bottom right")

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="batches", verbose_name=_("project")
    )
    name = models.CharField(_("name"), max_length=120, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("submitted by"),
    )
    engine = models.CharField(_("engine"), max_length=32)
    tags = models.ManyToManyField(Tag, blank=True, related_name="batches", verbose_name=_("tags"))
    created_at = models.DateTimeField(_("submitted"), default=timezone.now)
    # Set once, by whichever worker finishes the last job (a conditional update decides).
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    resolution = models.CharField(
        _("resolution"), max_length=8, choices=Resolution.choices, default=Resolution.SOURCE
    )
    quality = models.CharField(
        _("quality"), max_length=8, choices=Quality.choices, default=Quality.STANDARD
    )
    # A PNG stored once per content (watermarks/<org>/<sha256>.png); blank: no watermark.
    watermark = models.FileField(
        _("watermark"), upload_to=_watermark_path, max_length=255, blank=True
    )
    watermark_corner = models.CharField(
        _("watermark corner"), max_length=12, choices=Corner.choices, default=Corner.BOTTOM_RIGHT
    )
    watermark_opacity = models.FloatField(
        _("watermark opacity"),
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(watermark_opacity__gte=0.0, watermark_opacity__lte=1.0),
                name="batch_watermark_opacity_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name or gettext("Batch %(number)s") % {"number": self.pk}

    @staticmethod
    def status_from_counts(counts: dict[str, int]) -> str:
        """queued / running / succeeded / failed / canceled / partial, from job counts."""
        total = sum(counts.values())
        if not total:
            return "empty"
        if counts.get("running"):
            return "running"
        if counts.get("queued"):
            return "running" if total != counts["queued"] else "queued"
        for status in ("succeeded", "failed", "canceled"):
            if counts.get(status) == total:
                return status
        return "partial"  # finished, with some failed or canceled

    @property
    def status(self) -> str:
        if hasattr(self, "jobs_total"):
            counts = {
                "queued": self.jobs_queued,
                "running": self.jobs_running,
                "succeeded": self.jobs_succeeded,
                "failed": self.jobs_failed,
                "canceled": self.jobs_canceled,
            }
        else:
            counts = dict(
                self.jobs.values("status").annotate(n=Count("id")).values_list("status", "n")
            )
        return self.status_from_counts(counts)

    @property
    def status_label(self) -> str:
        """The batch's status as a person reads it (the code stays in classes and data)."""
        return batch_status_label(self.status)


class RenderJob(models.Model):
    class Status(models.TextChoices):
        # The words of the status badges; the codes stay in CSS classes and data attributes.
        QUEUED = "queued", pgettext_lazy("job status", "queued")
        RUNNING = "running", pgettext_lazy("job status", "running")
        SUCCEEDED = "succeeded", pgettext_lazy("job status", "succeeded")
        FAILED = "failed", pgettext_lazy("job status", "failed")
        CANCELED = "canceled", pgettext_lazy("job status", "canceled")

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)

    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, related_name="jobs", verbose_name=_("batch")
    )
    avatar = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", verbose_name=_("avatar video")
    )
    # What the avatar says: an uploaded audio track, or a script synthesised on the render
    # queue (then its audio is ``script.audio``). Exactly one of the two.
    audio = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("audio track"),
    )
    script = models.ForeignKey(
        Script,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        verbose_name=_("script"),
    )
    # The job's place in its batch, 1..N in the order it was submitted (what pages show).
    number = models.PositiveIntegerField(_("number in batch"), default=0)
    # The video's name without extension (from a batch sheet); blank: avatar__audio.mp4.
    output_name = models.CharField(_("output name"), max_length=120, blank=True)
    burn_subtitles = models.BooleanField(_("burn in subtitles"), default=False)
    engine = models.CharField(_("engine"), max_length=32)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    frames_done = models.PositiveIntegerField(_("frames done"), default=0)
    frames_total = models.PositiveIntegerField(_("frames in all"), default=0)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The failure in English (logs, webhooks, jobs from before codes were stored) ...
    error = models.TextField(_("error"), blank=True)
    # ... and as a code and its values, worded in each reader's language (jobs.reasons).
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error_params = models.JSONField(_("error values"), default=dict, blank=True)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    worker_host = models.CharField(_("worker host"), max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(_("worker PID"), null=True, blank=True)
    device = models.CharField(_("device"), max_length=32, blank=True)
    queued_at = models.DateTimeField(_("queued"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)

    class Meta:
        verbose_name = _("render job")
        verbose_name_plural = _("render jobs")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["batch", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(audio__isnull=False, script__isnull=True)
                | Q(audio__isnull=True, script__isnull=False),
                name="job_audio_or_script",
            ),
            models.UniqueConstraint(fields=["batch", "number"], name="uniq_job_number"),
        ]

    def __str__(self) -> str:
        return gettext("Job %(number)s (%(status)s)") % {
            "number": self.pk,
            "status": self.get_status_display(),
        }

    def save(self, *args, **kwargs) -> None:
        if not self.number and self._state.adding:
            # One job added on its own (batches number theirs in batch_submit): the next number.
            last = RenderJob.objects.filter(batch_id=self.batch_id).aggregate(n=Max("number"))
            self.number = (last["n"] or 0) + 1
        super().save(*args, **kwargs)

    @property
    def error_text(self) -> str:
        """Why the job failed (or is waiting), in the reader's language."""
        return job_error_text(self.error_code, self.error_params or {}, self.error)

    @property
    def audio_asset(self) -> Asset | None:
        """The audio the video speaks: the uploaded track, or the script's once synthesised."""
        if self.audio_id:
            return self.audio
        return self.script.audio if self.script_id else None

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.frames_total:
            return 0
        return min(99, int(100 * self.frames_done / self.frames_total))

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def can_retry(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELED)


class Output(models.Model):
    job = models.OneToOneField(
        RenderJob, on_delete=models.CASCADE, related_name="output", verbose_name=_("render job")
    )
    file = models.FileField(_("file"), upload_to=_output_path, max_length=255)
    thumbnail = models.FileField(_("thumbnail"), upload_to=_output_path, max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=255, help_text=_("Display and download name."))
    bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField("SHA-256", max_length=64)
    crc32 = models.PositiveBigIntegerField("CRC-32")
    duration = models.FloatField(_("duration (s)"))
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    key = models.UUIDField(_("key"), default=uuid.uuid4, editable=False, unique=True)
    # The video's subtitles as SRT, stored next to it (blank: none), with what a bundle needs
    # to ship it beside the video without reading it twice.
    subtitles = models.FileField(_("subtitles"), upload_to=_output_path, max_length=255, blank=True)
    subtitles_bytes = models.PositiveBigIntegerField(
        _("subtitle size (bytes)"), null=True, blank=True
    )
    subtitles_sha256 = models.CharField(_("subtitle SHA-256"), max_length=64, blank=True)
    subtitles_crc32 = models.PositiveBigIntegerField(_("subtitle CRC-32"), null=True, blank=True)

    class Meta:
        verbose_name = _("result video")
        verbose_name_plural = _("result videos")
        ordering = ["job_id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(subtitles="") & Q(subtitles_bytes=None))
                | (~Q(subtitles="") & Q(subtitles_bytes__isnull=False)),
                name="output_subtitles_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name
