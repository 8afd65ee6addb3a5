"""Every REST API route: /api/v1/orgs/<slug>/…, the OpenAPI schema and its two viewers.

Swagger UI and ReDoc are served from drf-spectacular-sidecar's static files (no CDN).
Anything else under /api/ answers 404 in the API's JSON error shape.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from accounts import api as accounts_api
from core.api import api_not_found
from exports import api as exports_api
from heygem_site.api_docs import OfflineRedocView, OfflineSwaggerView
from jobs import api as jobs_api

app_name = "api"
org = "api/v1/orgs/<slug:org_slug>/"

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the strict CSP holds here too.
    path("api/docs/", OfflineSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("api/redoc/", OfflineRedocView.as_view(url_name="api:schema"), name="redoc"),
    # the organization, its members, tokens, audit log and webhooks
    path(org, accounts_api.OrganizationView.as_view(), name="org"),
    path(org + "members/", accounts_api.MemberListView.as_view(), name="member-list"),
    path(org + "members/<int:pk>/", accounts_api.MemberDetailView.as_view(), name="member-detail"),
    path(org + "tokens/", accounts_api.TokenListView.as_view(), name="token-list"),
    path(org + "tokens/<int:pk>/", accounts_api.TokenDetailView.as_view(), name="token-detail"),
    path(org + "audit/", accounts_api.AuditListView.as_view(), name="audit-list"),
    path(org + "audit.csv", accounts_api.AuditCsvView.as_view(), name="audit-csv"),
    path(org + "webhooks/", accounts_api.WebhookListView.as_view(), name="webhook-list"),
    path(
        org + "webhooks/<int:pk>/",
        accounts_api.WebhookDetailView.as_view(),
        name="webhook-detail",
    ),
    path(
        org + "webhooks/<int:pk>/rotate-secret/",
        accounts_api.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        org + "webhooks/<int:pk>/test/", accounts_api.WebhookTestView.as_view(), name="webhook-test"
    ),
    path(
        org + "webhooks/<int:pk>/deliveries/",
        accounts_api.WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    # projects, assets, batches, jobs, outputs
    path(org + "projects/", jobs_api.ProjectListView.as_view(), name="project-list"),
    path(org + "projects/<int:pk>/", jobs_api.ProjectDetailView.as_view(), name="project-detail"),
    path(org + "assets/", jobs_api.AssetListView.as_view(), name="asset-list"),
    path(org + "assets/<int:pk>/", jobs_api.AssetDetailView.as_view(), name="asset-detail"),
    path(
        org + "assets/<int:pk>/subtitles/",
        jobs_api.AssetSubtitlesView.as_view(),
        name="asset-subtitles",
    ),
    # scripts: voices and batch sheets
    path(org + "voices/", jobs_api.VoiceListView.as_view(), name="voice-list"),
    path(org + "sheets/", jobs_api.SheetSubmitView.as_view(), name="sheet-submit"),
    path(org + "sheets/check/", jobs_api.SheetCheckView.as_view(), name="sheet-check"),
    path(org + "sheets/template.xlsx", jobs_api.SheetTemplateView.as_view(), name="sheet-template"),
    path(org + "batches/", jobs_api.BatchListView.as_view(), name="batch-list"),
    path(org + "batches/<int:pk>/", jobs_api.BatchDetailView.as_view(), name="batch-detail"),
    path(org + "batches/<int:pk>/cancel/", jobs_api.BatchCancelView.as_view(), name="batch-cancel"),
    path(org + "jobs/<int:pk>/", jobs_api.JobDetailView.as_view(), name="job-detail"),
    path(org + "jobs/<int:pk>/cancel/", jobs_api.JobCancelView.as_view(), name="job-cancel"),
    path(org + "jobs/<int:pk>/retry/", jobs_api.JobRetryView.as_view(), name="job-retry"),
    path(org + "outputs/", jobs_api.OutputListView.as_view(), name="output-list"),
    path(org + "outputs/<int:pk>/", jobs_api.OutputDetailView.as_view(), name="output-detail"),
    path(
        org + "outputs/<int:pk>/download/",
        jobs_api.OutputDownloadView.as_view(),
        name="output-download",
    ),
    path(
        org + "outputs/<int:pk>/subtitles/",
        jobs_api.OutputSubtitlesView.as_view(),
        name="output-subtitles",
    ),
    # exports
    path(org + "exports/", exports_api.ExportListView.as_view(), name="export-list"),
    path(org + "exports/<int:pk>/", exports_api.ExportDetailView.as_view(), name="export-detail"),
    path(
        org + "exports/<int:pk>/download/",
        exports_api.ExportDownloadView.as_view(),
        name="export-download",
    ),
    re_path(r"^api/", api_not_found, name="not-found"),
]
