"""HTTP pieces every app needs: who the client is, and serving stored files — streamed,
resumable (single HTTP Range), cache-validated, with a ``Content-Disposition`` that carries
any file name.

Never reads a whole file into memory. Used for output downloads and in-page playback, and
for bundles.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import (
    http_date,
    parse_http_date_safe,
    url_has_allowed_host_and_scheme,
)

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 512 * 1024
#: a byte position longer than this many digits is past the end of any file; Python refuses
#: to read integers of over 4,300 digits, so such positions are never converted
MAX_POSITION_DIGITS = 20
BEYOND_ANY_FILE = 10**MAX_POSITION_DIGITS
#: longer Range headers are ignored (the whole file is sent), as for a malformed one
MAX_RANGE_HEADER = 200


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind our one reverse proxy (USE_X_FORWARDED_FOR)
    the last X-Forwarded-For entry — the one that proxy appended. Earlier entries come from the
    client and can say anything. Also the address the login lockout (django-axes) counts by."""
    ip = request.META.get("REMOTE_ADDR") or ""
    if getattr(settings, "USE_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            ip = forwarded.rsplit(",", 1)[-1].strip() or ip
    return ip


def same_site_path(request: HttpRequest, url: str | None) -> str:
    """``url`` as a path on this site ("/o/acme/…", query kept), or "" when it leads anywhere
    else: another host, ``//host``, ``/\\host``, a scheme, control characters. A full address
    on this very host (a Referer) gives its path. For "back" links and redirects."""
    url = (url or "").strip()
    if not url or len(url) > 2000:
        return ""
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return ""
    return path


def content_disposition(filename: str, *, attachment: bool = True) -> str:
    """A header value safe for any name: ASCII fallback plus RFC 5987 UTF-8 ``filename*``."""
    kind = "attachment" if attachment else "inline"
    cleaned = "".join(ch for ch in filename if ch >= " " and ch != "\x7f") or "download"
    ascii_name = cleaned.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = ascii_name.replace("\\", "_").replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


class _RangeFile:
    """A file object that yields only ``length`` bytes from ``start``."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by FileResponse
        self._file.seek(start)
        self._left = length

    def read(self, size: int = CHUNK) -> bytes:
        if self._left <= 0:
            return b""
        data = self._file.read(min(size, self._left, CHUNK))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


def ranged_file_response(
    request: HttpRequest,
    path: Path,
    *,
    content_type: str,
    filename: str,
    attachment: bool = True,
) -> HttpResponse:
    """200 with the whole file, 206 with one requested range, 416 when it is unsatisfiable,
    304 when the client's copy is current."""
    stat = os.stat(path)
    size, mtime = stat.st_size, int(stat.st_mtime)
    etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(mtime),
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(filename, attachment=attachment),
        "X-Content-Type-Options": "nosniff",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return HttpResponseNotModified(headers={"ETag": etag})
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if not if_none_match and since is not None and mtime <= since:
        return HttpResponseNotModified(headers={"ETag": etag})

    start, end = 0, size - 1
    status = 200
    range_header = range_asked(request)
    if_range = request.headers.get("If-Range")
    range_applies = range_header and (if_range is None or if_range in (etag, http_date(mtime)))
    if range_applies:
        match = RANGE_RE.match(range_header.strip())
        if match is None or (not match.group(1) and not match.group(2)):
            # Several ranges or a malformed header: answer with the whole file (RFC 9110).
            range_applies = False
        else:
            first, last = match.groups()
            if first:
                start = _position(first)
                end = min(_position(last), size - 1) if last else size - 1
            else:  # a suffix: the last N bytes
                start = max(0, size - _position(last))
            if start >= size or start > end:
                return HttpResponse(
                    status=416, headers={"Content-Range": f"bytes */{size}", **headers}
                )
            status = 206
    length = end - start + 1 if size else 0
    response = FileResponse(
        _RangeFile(path, start, length), status=status, content_type=content_type
    )
    for key, value in headers.items():
        response[key] = value
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _position(digits: str) -> int:
    """A byte position of a Range header; absurdly long ones are past the end of any file."""
    return int(digits) if len(digits) <= MAX_POSITION_DIGITS else BEYOND_ANY_FILE


def range_asked(request: HttpRequest) -> str:
    """The request's Range header, or "" when there is none or it is too long to honour."""
    header = request.headers.get("Range", "").strip()
    return header if len(header) <= MAX_RANGE_HEADER else ""


def range_start(range_header: str) -> int:
    """Where a single-range ``bytes=N-…`` request starts (0 for anything else)."""
    match = RANGE_RE.match(range_header)
    return _position(match.group(1)) if match and match.group(1) else 0
