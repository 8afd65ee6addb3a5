"""Projects, uploaded assets, batches, render jobs and their outputs.

Every row reaches its organization: Project and Asset directly, Batch through its project,
RenderJob through its batch, Output through its job. Reads go through jobs.selectors.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinLengthValidator
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Organization


def _asset_path(instance: Asset, filename: str) -> str:
    return f"assets/{instance.organization_id}/{filename}"


def _output_path(instance: Output, filename: str) -> str:
    return f"outputs/{filename}"


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=120, validators=[MinLengthValidator(1)])
    description = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_project_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=40)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_tag")]

    def __str__(self) -> str:
        return self.name


class Asset(models.Model):
    class Kind(models.TextChoices):
        AVATAR = "avatar", "Avatar video"
        AUDIO = "audio", "Audio track"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(upload_to=_asset_path, max_length=255)
    original_name = models.CharField(max_length=200, help_text="Display only; never a path.")
    container = models.CharField(max_length=64, blank=True)
    duration = models.FloatField()
    video_codec = models.CharField(max_length=32, blank=True)
    audio_codec = models.CharField(max_length=32, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    face_box = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "kind", "-created_at"])]

    def __str__(self) -> str:
        return self.original_name


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
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    engine = models.CharField(max_length=32)
    tags = models.ManyToManyField(Tag, blank=True, related_name="batches")
    created_at = models.DateTimeField(default=timezone.now)
    # Set once, by whichever worker finishes the last job (a conditional update decides).
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.name or f"Batch {self.pk}"

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


class RenderJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="jobs")
    avatar = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    audio = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    engine = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    device = models.CharField(max_length=32, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["batch", "status"]),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.status})"

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
    job = models.OneToOneField(RenderJob, on_delete=models.CASCADE, related_name="output")
    file = models.FileField(upload_to=_output_path, max_length=255)
    thumbnail = models.FileField(upload_to=_output_path, max_length=255, blank=True)
    name = models.CharField(max_length=255, help_text="Display and download name.")
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    crc32 = models.PositiveBigIntegerField()
    duration = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)

    class Meta:
        ordering = ["job_id"]

    def __str__(self) -> str:
        return self.name
