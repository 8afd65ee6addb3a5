"""Writes and business rules for projects, assets, batches and render jobs.

Web views and queue tasks stay thin and call these. Every service takes the acting
membership, checks the permission table, and writes its audit row in the same transaction.

- ``assets``: uploads checked by their content and stored once per content; rename, delete;
- ``batches``: projects, tags, engines, cancel and retry, batch completion;
- ``submission``: a batch submitted (avatars x audio tracks and scripts, and videos one by one),
  everything checked before anything is made;
- ``scripts``: the voices, scripts checked before anything is made, and their synthesis on the
  render queue (once per script);
- ``subtitles``: SRT files attached to audio tracks, the cues of a video, WebVTT for players;
- ``output_options``: a batch's resolution, quality and watermark, checked and applied;
- ``sheets``: batch sheets checked row by row and submitted only when every row is good;
- ``rendering``: the worker side of one render job;
- ``reaper``: jobs whose worker died, and jobs the broker lost;
- ``avatars``: avatars prepared once per engine and stored with the asset.
"""

from jobs.services.assets import (
    UploadedMedia,
    asset_create,
    asset_deletable_by,
    asset_delete,
    asset_rename,
    display_name,
)
from jobs.services.batches import (
    batch_cancel,
    batch_check_completed,
    engine_check,
    enqueue_renders,
    job_cancel,
    job_retry,
    parse_tags,
    project_create,
)
from jobs.services.output_options import OutputSettings, output_settings_check
from jobs.services.reaper import reap_stale_jobs
from jobs.services.rendering import output_name, render_job_run
from jobs.services.scripts import ScriptSpec, VoiceChoice, script_check, voices_for
from jobs.services.sheets import (
    RowVerdict,
    SheetRefused,
    output_stem,
    sheet_check,
    sheet_read,
    sheet_submit,
)
from jobs.services.submission import JobSpec, batch_submit, scripts_check
from jobs.services.subtitles import (
    asset_attach_subtitles,
    asset_detach_subtitles,
    output_subtitles,
    subtitle_cues,
)

__all__ = [
    "JobSpec",
    "OutputSettings",
    "RowVerdict",
    "ScriptSpec",
    "SheetRefused",
    "UploadedMedia",
    "VoiceChoice",
    "asset_attach_subtitles",
    "asset_create",
    "asset_deletable_by",
    "asset_delete",
    "asset_detach_subtitles",
    "asset_rename",
    "batch_cancel",
    "batch_check_completed",
    "batch_submit",
    "display_name",
    "engine_check",
    "enqueue_renders",
    "job_cancel",
    "job_retry",
    "output_name",
    "output_settings_check",
    "output_stem",
    "output_subtitles",
    "parse_tags",
    "project_create",
    "reap_stale_jobs",
    "render_job_run",
    "script_check",
    "scripts_check",
    "sheet_check",
    "sheet_read",
    "sheet_submit",
    "subtitle_cues",
    "voices_for",
]
