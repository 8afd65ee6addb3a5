from django.urls import path

from exports import views

app_name = "exports"
org = "o/<slug:org_slug>/"

urlpatterns = [
    path(org + "exports/", views.ExportListView.as_view(), name="list"),
    path(org + "exports/new/", views.ExportConfirmView.as_view(), name="confirm"),
    path(org + "exports/<int:pk>/", views.ExportDetailView.as_view(), name="detail"),
    path(org + "exports/<int:pk>/status.json", views.ExportStatusView.as_view(), name="status"),
    path(org + "exports/<int:pk>/download/", views.ExportDownloadView.as_view(), name="download"),
]
