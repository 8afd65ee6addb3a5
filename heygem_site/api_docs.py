"""The API's documentation pages: Swagger UI and ReDoc, served offline from
drf-spectacular-sidecar's files under this site's strict Content-Security-Policy."""

from __future__ import annotations

from django.http import HttpResponse
from django.template import Context, Template
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from heygem_site.middleware import content_security_policy


class OfflineRedocView(SpectacularRedocView):
    """ReDoc from drf-spectacular-sidecar's files, without the web fonts drf-spectacular's own
    page loads from Google: the docs work on a machine with no internet access."""

    PAGE = Template(
        '<!DOCTYPE html><html><head><title>{{ title }}</title><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body { margin: 0; padding: 0; }</style></head><body>"
        '<redoc spec-url="{{ schema_url }}"></redoc>'
        '<script src="{{ redoc_standalone }}"></script></body></html>'
    )

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        context = Context(
            {
                "title": self.title,
                "redoc_standalone": self._redoc_standalone(),
                "schema_url": self._get_schema_url(request),
            }
        )
        return with_docs_csp(HttpResponse(self.PAGE.render(context)))


def with_docs_csp(response: HttpResponse) -> HttpResponse:
    """The API viewers style themselves with inline <style> and ReDoc parses in a blob
    worker: those two pages allow that; scripts still come only from this site."""
    response["Content-Security-Policy"] = (
        content_security_policy().replace("style-src 'self'", "style-src 'self' 'unsafe-inline'", 1)
        + "; worker-src 'self' blob:"
    )
    return response


class OfflineSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI from sidecar files; its start-up script is served as a file (CSP-safe)."""

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return with_docs_csp(super().get(request, *args, **kwargs))
