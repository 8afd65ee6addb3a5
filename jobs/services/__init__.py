"""Writes and business rules for projects, assets, batches and render jobs.

Web views and queue tasks stay thin and call these. Every service takes the acting
membership, checks the permission table, and writes its audit row in the same transaction.

- ``assets``: uploads checked by their content and stored;
- ``batches``: projects, batch submission, cancel and retry, batch completion;
- ``rendering``: the worker side of one render job;
- ``reaper``: jobs whose worker died, and jobs the broker lost;
- ``avatars``: avatars prepared once per engine and stored with the asset.
"""

from jobs.services.assets import UploadedMedia, asset_create, display_name
from jobs.services.batches import (
    batch_cancel,
    batch_check_completed,
    batch_submit,
    engine_check,
    enqueue_renders,
    job_cancel,
    job_retry,
    parse_tags,
    project_create,
)
from jobs.services.reaper import reap_stale_jobs
from jobs.services.rendering import output_name, render_job_run

__all__ = [
    "UploadedMedia",
    "asset_create",
    "batch_cancel",
    "batch_check_completed",
    "batch_submit",
    "display_name",
    "engine_check",
    "enqueue_renders",
    "job_cancel",
    "job_retry",
    "output_name",
    "parse_tags",
    "project_create",
    "reap_stale_jobs",
    "render_job_run",
]
