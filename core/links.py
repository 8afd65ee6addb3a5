"""The few links that workers write into notifications, e-mails and webhook payloads.

``reverse()`` would load the URLconf, which imports every view, DRF and the schema tools:
about 26 MB in a worker process that needs four paths (bench/export.py counts a bundle
worker's peak memory). tests/test_links.py checks each one against ``reverse()``.
Slugs are [a-z0-9-] and ids are integers, so nothing here needs quoting.
"""

from __future__ import annotations

from django.conf import settings


def absolute(path: str) -> str:
    """``path`` on this site as a full address (SITE_URL); full addresses stay as they are."""
    if not path or "://" in path:
        return path
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")


def batch_page(org_slug: str, batch_id: int) -> str:
    return f"/o/{org_slug}/batches/{int(batch_id)}/"


def export_page(org_slug: str, export_id: int) -> str:
    return f"/o/{org_slug}/exports/{int(export_id)}/"


def export_download_api(org_slug: str, export_id: int) -> str:
    return f"/api/v1/orgs/{org_slug}/exports/{int(export_id)}/download/"


def notifications_page(org_slug: str) -> str:
    return f"/o/{org_slug}/notifications/"
