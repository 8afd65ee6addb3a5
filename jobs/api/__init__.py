"""REST API for projects, assets, batches, render jobs and outputs.

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
from jobs.api.library import AssetListView, ProjectDetailView, ProjectListView
from jobs.api.outputs import OutputDetailView, OutputDownloadView, OutputListView

__all__ = [
    "AssetListView",
    "BatchCancelView",
    "BatchDetailView",
    "BatchListView",
    "JobCancelView",
    "JobDetailView",
    "JobRetryView",
    "OutputDetailView",
    "OutputDownloadView",
    "OutputListView",
    "ProjectDetailView",
    "ProjectListView",
]
