"""The audit log as a streamed CSV download (the same format for the dashboard and the API).

The file opens right in a spreadsheet: it starts with a UTF-8 byte-order mark (Excel on Chinese
Windows otherwise reads the names as its local code page, as manifest.csv does), and its times
are ISO 8601 with the offset, in the zone of the person who asked for it, which the header of
the time column names. The ``detail`` column is the event's detail as JSON.
"""

import datetime as dt
import itertools
import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

from accounts.preferences import local_iso
from core.spreadsheets import csv_lines

BOM = "\ufeff"

AUDIT_CSV_COLUMNS = [
    "seq",
    "created_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "target",
    "file_count",
    "total_bytes",
    "ip",
    "user_agent",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
]


def audit_csv_header(zone: dt.tzinfo) -> list[str]:
    """The header row: the columns, the time column naming its zone (``created_at (UTC)``)."""
    return [f"created_at ({zone})" if c == "created_at" else c for c in AUDIT_CSV_COLUMNS]


def _audit_rows(events, zone: dt.tzinfo) -> Iterator[list]:
    """The header, then one row per event, read in chunks."""
    yield audit_csv_header(zone)
    for e in events.iterator(chunk_size=2000):
        yield [
            e.seq,
            local_iso(e.created_at, zone),
            e.actor_label,
            e.action,
            e.target_type,
            e.target_id,
            e.target_label,
            "" if e.file_count is None else e.file_count,
            "" if e.total_bytes is None else e.total_bytes,
            e.ip or "",
            e.user_agent,
            e.outcome,
            json.dumps(e.detail, ensure_ascii=False, sort_keys=True),  # JSON, not a dict print
            e.hash,
            e.prev_hash,
        ]


def audit_csv_response(organization, events, zone: dt.tzinfo) -> StreamingHttpResponse:
    """Stream ``events`` as CSV with times in ``zone`` (the asking person's), never holding
    the whole log in memory."""
    stream = itertools.chain([BOM], csv_lines(_audit_rows(events, zone)))
    stamp = timezone.now().astimezone(zone).strftime("%Y%m%d_%H%M")
    response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit_{organization.slug}_{stamp}.csv"'
    )
    return response
