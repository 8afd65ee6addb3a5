from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog

# The pages' JavaScript strings (gettext/ngettext in static/js), from the apps' djangojs
# catalogues. The language is in the address, so a cached copy never answers for another.
_js_catalog = JavaScriptCatalog.as_view(packages=["heygem_site", "accounts", "jobs", "exports"])


@cache_control(public=True, max_age=3600)
def js_catalog(request: HttpRequest, language: str) -> HttpResponse:
    if language not in dict(settings.LANGUAGES):
        raise Http404("No such language.")
    with translation.override(language):
        return _js_catalog(request)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("jsi18n/<str:language>.js", js_catalog, name="js_catalog"),
    path("", include("heygem_site.api_urls")),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
    path("", include("exports.urls")),
]
