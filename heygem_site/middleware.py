"""Site-wide response policies: security headers, and a clean 503 when the database is away."""

from __future__ import annotations

import functools
import logging
import re
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from core.api import error_body
from core.http import same_site_path
from core.storage import backend_for

logger = logging.getLogger(__name__)


def close_connections_when_request_ends() -> None:
    """After a database error: close this thread's connections when the request ends, so the
    next request tries a fresh one. Django would keep a persistent SQLite connection it never
    judges unusable."""
    for connection in connections.all(initialized_only=True):
        connection.close_at = time.monotonic()


def content_security_policy() -> str:
    """Scripts and styles only from this site; no framing; media and images from here only.

    Inline style *attributes* are allowed (progress bars set their width), inline scripts are
    not. With media in a bucket, thumbnails and videos come from its presigned URLs.
    """
    origin = media_origin()
    media = f" {origin}" if origin else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            f"img-src 'self' data:{media}",
            f"media-src 'self'{media}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def media_origin() -> str:
    """The origin of presigned media URLs when media live in a bucket, else ''."""
    if backend_for("media") == "local":
        return ""
    endpoint = settings.MEDIA_S3_ENDPOINT_URL
    if endpoint:
        match = re.match(r"^(https?://[^/]+)", endpoint)
        return match.group(1) if match else ""
    return "https://*.amazonaws.com"


@functools.lru_cache(maxsize=8)
def _policy(storage: str, endpoint: str) -> str:
    """The policy, built once per media configuration (the arguments are the cache key:
    content_security_policy reads the same two settings)."""
    return content_security_policy()


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        csp = getattr(settings, "CONTENT_SECURITY_POLICY", "") or _policy(
            settings.MEDIA_STORAGE, settings.MEDIA_S3_ENDPOINT_URL
        )
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class DatabaseUnavailableMiddleware:
    """Answer 503 with a page (or JSON for API clients) instead of a traceback when the
    database cannot be reached. The connections are marked to be closed when the request
    ends (Django would keep a persistent SQLite connection it never judges unusable), so the
    next request tries again with a fresh one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error("database unavailable during %s %s", request.method, request.path,
                     exc_info=exception)  # fmt: skip
        close_connections_when_request_ends()
        message = _("The service is briefly unavailable (database). Try again in a minute.")
        wants_json = request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")
        if wants_json:
            response = JsonResponse(error_body("service_unavailable", message), status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = "30"
        return response


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django answers a malformed length itself


class RequestTooLargeMiddleware:
    """Answer 413 with a message as soon as a request declares a body larger than
    UPLOAD_MAX_REQUEST_BYTES, before anything reads it: the CSRF check reads the form, and
    Django's upload parser does not catch a refusal made before the first file (that was a
    500). The API gets its JSON error shape, the page uploader plain JSON, forms a page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared, limit = _declared_length(request), settings.UPLOAD_MAX_REQUEST_BYTES
        if declared <= limit:
            return self.get_response(request)
        # Before the session and the person are known: the language of the switch's cookie,
        # else the browser's.
        with translation.override(translation.get_language_from_request(request)):
            response = self._refuse(request, declared, limit)
            response.headers.setdefault("Content-Language", translation.get_language())
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response["Connection"] = "close"  # the body is not read: the connection cannot go on
        return response

    @staticmethod
    def _refuse(request: HttpRequest, declared: int, limit: int) -> HttpResponse:
        message = _(
            "The upload is %(size)s MB; the limit is %(limit)s MB per request. Send fewer or "
            "smaller files at a time."
        ) % {"size": f"{declared / 1e6:,.0f}", "limit": f"{limit / 1e6:,.0f}"}
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body("too_large", message), status=413)
        elif "json" in request.headers.get("Accept", ""):
            response = JsonResponse({"error": message}, status=413)
        else:
            back = same_site_path(request, request.headers.get("Referer"))
            page = render_to_string("413.html", {"message": message, "back": back})
            response = HttpResponse(page, status=413)
        return response
