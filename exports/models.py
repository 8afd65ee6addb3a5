"""Export requests and the ZIP bundles built for them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Organization
from jobs.models import Batch, Project

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")


class Export(models.Model):
    class Status(models.TextChoices):
        # The words of the status badges; the codes stay in CSS classes and data attributes.
        QUEUED = "queued", pgettext_lazy("bundle status", "queued")
        BUILDING = "building", pgettext_lazy("bundle status", "building")
        READY = "ready", pgettext_lazy("bundle status", "ready")
        FAILED = "failed", pgettext_lazy("bundle status", "failed")
        EXPIRED = "expired", pgettext_lazy("bundle status", "expired")

    class Scope(models.TextChoices):
        BATCH = "batch", _("Batch")
        PROJECT = "project", _("Project")
        TAGS = "tags", _("Tag-filtered results")
        OUTPUTS = "outputs", _("Chosen results")

    ACTIVE = (Status.QUEUED, Status.BUILDING)

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="exports",
        verbose_name=_("organization"),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices)
    # A canonical text of the scope ("batch:12", "project:3;tags:north,promo", …): identical
    # requests share it, and the database lets only one of them be queued or building.
    scope_key = models.CharField(max_length=1000)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL)
    tags = models.JSONField(default=list, blank=True)
    output_ids = models.JSONField(default=list, blank=True)
    # What the bundle's files are (see exports.scope.fingerprint): a READY, unexpired bundle
    # of the same scope with the same fingerprint is handed out again instead of a rebuild.
    fingerprint = models.CharField(max_length=64, blank=True)
    label = models.CharField(
        _("label"), max_length=255, help_text=_("What the bundle holds, for people.")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    file_count = models.PositiveIntegerField(_("videos"), default=0)
    total_bytes = models.PositiveBigIntegerField(_("size of the videos (bytes)"), default=0)
    zip_bytes = models.PositiveBigIntegerField(_("ZIP size (bytes)"), null=True, blank=True)
    storage = models.CharField(_("storage"), max_length=8, default="local")
    storage_key = models.CharField(max_length=500, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The build's sign of life, written while bytes flow: a build whose heartbeat is older
    # than EXPORT_LEASE_S has lost its worker (killed, crashed, host gone) and is taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "scope_key"],
                condition=Q(status__in=["queued", "building"]),
                name="one_active_export_per_scope",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "requested_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return _("Bundle %(id)s: %(label)s") % {"id": self.pk, "label": self.label}

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def seconds_building(self) -> float:
        if self.status != self.Status.BUILDING or not self.started_at:
            return 0.0
        return (timezone.now() - self.started_at).total_seconds()

    @property
    def is_downloadable(self) -> bool:
        """Ready and not past its expiry (the expiry sweep may not have run yet)."""
        return self.status == self.Status.READY and not self.is_past_expiry

    @property
    def is_past_expiry(self) -> bool:
        return self.status == self.Status.EXPIRED or bool(
            self.expires_at and self.expires_at <= timezone.now()
        )

    @property
    def is_slow(self) -> bool:
        """Past the soft limit: the page says it will be ready later (the build goes on)."""
        return self.seconds_building > settings.EXPORT_SOFT_LIMIT_S
