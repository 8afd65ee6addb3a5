"""Health endpoints for load balancers and orchestrators, answered before any other middleware.

``GET /healthz`` — liveness: this process answers. No database, no cache, no session.
``GET /readyz`` — readiness: this instance can serve. Each dependency is tried once, with a
short limit: the database (``SELECT 1``), the cache (the API and bundle budgets live there,
and sessions on Redis), the task queue of the light and the render cluster, the media storage
and the bundle storage (a writable folder, or the bucket answering). 200 when all pass, else
503; the body names each check with its time and, when it failed, the kind of error — never
its message, which can carry host names or credentials.

They come first in ``MIDDLEWARE`` so that a load balancer reaching an instance by its
address, over plain HTTP, gets the answer instead of a host-name refusal or an HTTPS
redirect, and so that a probe costs no session or database work (``/healthz``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.storage import backend_for
from heygem_site.middleware import close_connections_when_request_ends

#: seconds a network check may take before the instance counts as not ready
CHECK_TIMEOUT_S = 3


def _database() -> None:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        close_connections_when_request_ends()  # the next probe tries a fresh connection
        raise


def _cache() -> None:
    from django.core.cache import cache

    cache.get("heygem:readyz")  # a miss is fine; an unreachable backend raises


def _queue() -> None:
    from django_q.brokers import get_broker

    for cluster in (None, settings.RENDER_QUEUE):
        if not get_broker(cluster).ping():
            raise ConnectionError("the broker did not answer")


def _folder(path: str | os.PathLike) -> None:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)  # as the app does before its first write
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError("the folder is not writable")


@functools.cache
def _probe_client(endpoint: str, region: str):
    """One S3 client per endpoint for the probes (building one takes tens of ms), with short
    limits and no retries, unlike the storage's own client."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        config=Config(
            connect_timeout=CHECK_TIMEOUT_S,
            read_timeout=CHECK_TIMEOUT_S,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def _bucket(endpoint: str, region: str, bucket: str) -> None:
    _probe_client(endpoint, region).head_bucket(Bucket=bucket)


def _media() -> None:
    if backend_for("media") == "s3":
        _bucket(settings.MEDIA_S3_ENDPOINT_URL, settings.MEDIA_S3_REGION, settings.MEDIA_S3_BUCKET)
    else:
        _folder(settings.MEDIA_ROOT)


def _bundles() -> None:
    if backend_for("bundles") == "s3":
        _bucket(
            settings.EXPORT_S3_ENDPOINT_URL, settings.EXPORT_S3_REGION, settings.EXPORT_S3_BUCKET
        )
    else:
        _folder(settings.EXPORT_ROOT)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "queue": _queue,
    "media": _media,
    "bundles": _bundles,
}


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every check; (all passed, per check: ok, ms and the error's kind if it failed)."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            check()
        except Exception as exc:
            result: dict[str, Any] = {"ok": False, "error": type(exc).__name__}
        else:
            result = {"ok": True}
        result["ms"] = round((time.perf_counter() - start) * 1000, 1)
        results[name] = result
    return all(r["ok"] for r in results.values()), results


def _answer(request: HttpRequest, body: dict, status: int) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    if request.method == "HEAD":
        response.content = b""
    return response


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path not in ("/healthz", "/readyz"):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            refused = {"error": {"code": "method_not_allowed", "message": "Use GET or HEAD."}}
            response = _answer(request, refused, 405)
            response["Allow"] = "GET, HEAD"
            return response
        if path == "/healthz":
            return _answer(request, {"status": "ok"}, 200)
        ok, checks = readiness()
        return _answer(
            request, {"status": "ok" if ok else "fail", "checks": checks}, 200 if ok else 503
        )
