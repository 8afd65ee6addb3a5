from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("heygem_site.api_urls")),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
    path("", include("exports.urls")),
]
