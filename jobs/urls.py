from django.urls import path

from jobs import library_views, views

app_name = "jobs"
org = "o/<slug:org_slug>/"

urlpatterns = [
    path(org + "projects/", views.ProjectListView.as_view(), name="projects"),
    path(org + "projects/new/", views.ProjectCreateView.as_view(), name="project_create"),
    path(org + "projects/<int:pk>/", views.ProjectDetailView.as_view(), name="project"),
    path(
        org + "projects/<int:pk>/batches/new/", views.BatchCreateView.as_view(), name="batch_create"
    ),
    path(org + "projects/<int:pk>/sheet/", views.SheetImportView.as_view(), name="sheet_import"),
    path(
        org + "projects/<int:pk>/sheet/submit/",
        views.SheetSubmitView.as_view(),
        name="sheet_submit",
    ),
    path(org + "sheets/template.xlsx", views.SheetTemplateView.as_view(), name="sheet_template"),
    path(org + "library/", library_views.LibraryView.as_view(), name="library"),
    path(org + "assets/upload/", library_views.AssetUploadView.as_view(), name="asset_upload"),
    path(
        org + "assets/<int:pk>/rename/",
        library_views.AssetRenameView.as_view(),
        name="asset_rename",
    ),
    path(
        org + "assets/<int:pk>/delete/",
        library_views.AssetDeleteView.as_view(),
        name="asset_delete",
    ),
    path(
        org + "assets/<int:pk>/media/", library_views.AssetMediaView.as_view(), name="asset_media"
    ),
    path(
        org + "assets/<int:pk>/subtitles/",
        views.SubtitleAttachView.as_view(),
        name="asset_subtitles",
    ),
    path(org + "batches/<int:pk>/", views.BatchDetailView.as_view(), name="batch"),
    path(
        org + "batches/<int:pk>/status.json", views.BatchStatusView.as_view(), name="batch_status"
    ),
    path(org + "batches/<int:pk>/cancel/", views.BatchCancelView.as_view(), name="batch_cancel"),
    path(org + "jobs/<int:pk>/cancel/", views.JobCancelView.as_view(), name="job_cancel"),
    path(org + "jobs/<int:pk>/retry/", views.JobRetryView.as_view(), name="job_retry"),
    path(
        org + "outputs/<int:pk>/download/",
        views.OutputDownloadView.as_view(),
        name="output_download",
    ),
    path(org + "outputs/<int:pk>/play/", views.OutputPlayView.as_view(), name="output_play"),
    path(
        org + "outputs/<int:pk>/thumbnail/",
        views.OutputThumbnailView.as_view(),
        name="output_thumbnail",
    ),
    path(org + "outputs/<int:pk>/subtitles.vtt", views.OutputVttView.as_view(), name="output_vtt"),
    path(org + "outputs/<int:pk>/subtitles.srt", views.OutputSrtView.as_view(), name="output_srt"),
]
