"""REST API for projects, assets, batches, render jobs and outputs, voices and batch sheets.

Thin: uploads are validated by jobs.services.asset_create exactly as on the pages; batches are
submitted, canceled and retried by the same services; reads are the base view's
organization-scoped querysets (``accounts.tenancy.api``).
"""

from jobs.api.batches import (
    BatchCancelView,
    BatchDetailView,
    BatchListView,
    JobCancelView,
    JobDetailView,
    JobRetryView,
)
from jobs.api.library import (
    AssetDetailView,
    AssetListView,
    AssetSubtitlesView,
    ProjectDetailView,
    ProjectListView,
)
from jobs.api.outputs import (
    OutputDetailView,
    OutputDownloadView,
    OutputListView,
    OutputSubtitlesView,
)
from jobs.api.scripts import SheetCheckView, SheetSubmitView, SheetTemplateView, VoiceListView

__all__ = [
    "AssetDetailView",
    "AssetListView",
    "AssetSubtitlesView",
    "BatchCancelView",
    "BatchDetailView",
    "BatchListView",
    "JobCancelView",
    "JobDetailView",
    "JobRetryView",
    "OutputDetailView",
    "OutputDownloadView",
    "OutputListView",
    "OutputSubtitlesView",
    "ProjectDetailView",
    "ProjectListView",
    "SheetCheckView",
    "SheetSubmitView",
    "SheetTemplateView",
    "VoiceListView",
]
