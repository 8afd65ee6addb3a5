"""Rows and files the browser tests start from, made through the services (no browser)."""

from __future__ import annotations

from exports import services as export_services
from exports.models import Export
from exports.scope import scope_from_params
from jobs import services
from jobs.models import Asset, Batch
from jobs.tasks import render_job


def rendered_batch(membership, media, *, name: str = "Spring promo") -> Batch:
    """A batch of one avatar x the audio tracks in ``media``, each rendered here by the task
    the workers run (so the videos, thumbnails and checksums are real)."""
    project = services.project_create(membership=membership, name="Spring campaign")

    def asset(kind, path):
        return services.asset_create(
            membership=membership, kind=kind, upload=services.UploadedMedia(path, path.name)
        )

    avatar = asset(Asset.Kind.AVATAR, media["avatar"])
    audios = [asset(Asset.Kind.AUDIO, path) for path in media["audios"]]
    batch = services.batch_submit(
        membership=membership, project=project, avatars=[avatar], audios=audios, name=name
    )
    for job in batch.jobs.all():
        if job.status != "succeeded":  # not rendered inline already
            assert render_job(job.pk) == "succeeded"
    return batch


def built_export(membership, batch) -> Export:
    """Ask for a bundle of ``batch`` as ``membership``. Without a cluster fixture tasks run
    inline in the tests, so it comes back built."""
    scope = scope_from_params(membership, {"batch": batch.pk})
    export, created = export_services.export_request(membership=membership, scope=scope)
    export.refresh_from_db()
    assert created and export.status == Export.Status.READY, export.error
    return export
