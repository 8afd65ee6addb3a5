"""Talking to the HeyGem Studio API with urllib: JSON calls, streamed multipart uploads and
resumable downloads. Standard library only."""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heygem_client import __version__
from heygem_client.i18n import _, accept_language

USER_AGENT = f"heygem-client/{__version__}"
CHUNK = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


class ApiError(Exception):
    """An answer in the API's error shape (or a transport failure, with status 0)."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}
        super().__init__(self.describe())

    def describe(self) -> str:
        text = self.message
        for name, problems in self.fields.items():
            text += f"\n  {name}: {' '.join(problems)}"
        if not self.status:
            return text
        return _("%(message)s (HTTP %(status)s, %(code)s)") % {
            "message": text,
            "status": self.status,
            "code": self.code,
        }

    @classmethod
    def from_http_error(cls, exc: urllib.error.HTTPError) -> ApiError:
        raw = exc.read() if exc.fp else b""
        try:
            error = json.loads(raw)["error"]
            return cls(exc.code, error["code"], error["message"], error.get("fields"))
        except (ValueError, KeyError, TypeError):
            message = _("The server answered %(status)s %(reason)s.") % {
                "status": exc.code,
                "reason": exc.reason,
            }
            return cls(exc.code, "http_error", message)


def _header_safe(text: str) -> str:
    """A name or filename that cannot break out of its quoted header parameter."""
    return text.replace("\\", "_").replace('"', "%22").replace("\r", "").replace("\n", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects surface as HTTPError: the download follows them itself, without the token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class MultipartBody:
    """A multipart/form-data body read part by part: files are streamed from disk, never
    held in memory. ``len()`` is known in advance, so no chunked encoding is needed."""

    fields: Iterable[tuple[str, str]] = ()
    files: Iterable[tuple[str, Path, str]] = ()  # (field, path, filename)
    progress: Callable[[int, int], None] | None = None
    boundary: str = field(default_factory=lambda: "heygem-" + secrets.token_hex(16))

    def __post_init__(self) -> None:
        self._parts: list[bytes | Path] = []
        for name, value in self.fields:
            self._parts.append(self._head(name) + b"\r\n" + str(value).encode() + b"\r\n")
        for name, path, filename in self.files:
            self._parts += [self._head(name, filename), Path(path), b"\r\n"]
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self._parts)
        self._index, self._handle, self._buffer, self.sent = 0, None, b"", 0

    def _head(self, name: str, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{_header_safe(name)}"'
        head = f"--{self.boundary}\r\nContent-Disposition: {disposition}"
        if filename is not None:
            head += (
                f'; filename="{_header_safe(filename)}"\r\nContent-Type: application/octet-stream'
            )
        return (head + "\r\n\r\n" if filename is not None else head + "\r\n").encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        size = CHUNK if size is None or size < 0 else size
        while len(self._buffer) < size and self._index < len(self._parts):
            part = self._parts[self._index]
            if isinstance(part, bytes):
                self._buffer += part
                self._index += 1
                continue
            if self._handle is None:
                self._handle = open(part, "rb")  # noqa: SIM115 - closed when exhausted
            chunk = self._handle.read(size - len(self._buffer))
            if chunk:
                self._buffer += chunk
            else:
                self._handle.close()
                self._handle = None
                self._index += 1
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.sent += len(data)
        if self.progress and data:
            self.progress(self.sent, self.length)
        return data

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Client:
    """One organization of one server, acting with one token."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        *,
        timeout: float = 120,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = url.rstrip("/")
        self.base = f"{self.root}/api/v1/orgs/{urllib.parse.quote(org, safe='')}/"
        self.token, self.timeout, self.retries, self.sleep = token, timeout, retries, sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    # --- plumbing ---

    def url(self, path: str, params: dict | None = None) -> str:
        url = path if path.startswith(("http://", "https://")) else self.base + path.lstrip("/")
        if params:
            query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
            url += ("&" if "?" in url else "?") + query
        return url

    def _request(self, method: str, url: str, *, data=None, headers=None, auth=True):
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            message = _("Only http(s) addresses are supported, not %(url)s.") % {"url": repr(url)}
            raise ApiError(0, "bad_url", message)
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (checked)
        request.add_header("User-Agent", USER_AGENT)
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        return self._opener.open(request, timeout=self.timeout)

    def call(self, method: str, path: str, *, params=None, body=None, data=None, headers=None):
        """One API call returning the decoded JSON (None for 204). Waits and retries on 429
        and, for reads, on connection errors; raises ApiError otherwise."""
        # The server's error messages in the language this client speaks.
        headers = {
            "Accept": "application/json",
            "Accept-Language": accept_language(),
            **(headers or {}),
        }
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self.url(path, params)
        for attempt in range(1, self.retries + 1):
            try:
                with self._request(method, url, data=data, headers=headers) as response:
                    raw = response.read()
                    self.last_status = response.status
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                if exc.code == 429 and attempt < self.retries:
                    self.sleep(float(exc.headers.get("Retry-After") or 1))
                    continue
                raise ApiError.from_http_error(exc) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if method != "GET" or attempt == self.retries:
                    reason = getattr(exc, "reason", exc)
                    message = _("Cannot reach %(url)s: %(reason)s") % {
                        "url": self.root,
                        "reason": reason,
                    }
                    raise ApiError(0, "unreachable", message) from None
                self.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")

    def get(self, path: str, **params) -> Any:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.call("POST", path, body=body if body is not None else {})

    def upload(self, path: str, fields, files: list[tuple[str, Path, str]], progress=None):
        """POST a multipart form, streaming the files from disk. ``fields``: a dict, or
        (name, value) pairs when a name repeats."""
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        body = MultipartBody(fields=pairs, files=files, progress=progress)
        try:
            return self.call(
                "POST",
                path,
                data=body,
                headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
            )
        finally:
            body.close()

    # --- downloads ---

    def _open_download(self, path: str, headers: dict):
        """GET ``path`` following redirects by hand: a presigned URL gets no token."""
        url, auth = self.url(path), True
        for _redirect in range(5):
            try:
                return self._request("GET", url, headers=headers, auth=auth)
            except urllib.error.HTTPError as exc:
                if exc.code in REDIRECTS and exc.headers.get("Location"):
                    url = urllib.parse.urljoin(url, exc.headers["Location"])
                    auth = (
                        urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(self.root).netloc
                    )
                    exc.close()
                    continue
                if exc.code == 416:
                    return exc
                raise ApiError.from_http_error(exc) from None
        raise ApiError(0, "too_many_redirects", _("The download was redirected too often."))

    def download(self, path: str, part: Path, *, key: str, progress=None) -> Path:
        """Download ``path`` into ``part``, resuming what an earlier run left there.

        ``part.json`` remembers which download (``key``) and which version (ETag) the bytes
        belong to, so a resume never glues two different files together: the request carries
        ``If-Range`` and a server that answers 200 instead of 206 starts it over.
        """
        state_file = part.with_name(part.name + ".json")
        for attempt in range(1, self.retries + 1):
            have, etag = 0, None
            if part.exists() and state_file.exists():
                with contextlib.suppress(ValueError, OSError):
                    state = json.loads(state_file.read_text())
                    if state.get("key") == key and state.get("etag"):
                        have, etag = part.stat().st_size, state["etag"]
            headers = {"Range": f"bytes={have}-", "If-Range": etag} if have else {}
            try:
                response = self._open_download(path, headers)
                with response:
                    status = getattr(response, "status", None) or response.code
                    if status == 416:
                        total = response.headers.get("Content-Range", "").rpartition("/")[2]
                        if have and total.isdigit() and int(total) == have:
                            return part  # finished last time, just not renamed
                        part.unlink(missing_ok=True)
                        continue
                    if status == 206 and response.headers.get("ETag") != etag:
                        # The server ignored If-Range (a bucket's presigned URL may): these
                        # bytes belong to another version of the file. Start over.
                        part.unlink(missing_ok=True)
                        state_file.unlink(missing_ok=True)
                        continue
                    start = have if status == 206 else 0
                    length = int(response.headers.get("Content-Length") or 0)
                    total = start + length
                    new_etag = response.headers.get("ETag")
                    state_file.write_text(json.dumps({"key": key, "etag": new_etag}))
                    with open(part, "r+b" if start else "wb") as out:
                        out.seek(start)
                        out.truncate()
                        done = start
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, total)
                    if length and done != total:
                        raise ConnectionError(
                            _("the transfer stopped at %(done)s of %(total)s bytes")
                            % {"done": done, "total": total}
                        )
                    return part
            except (OSError, http.client.HTTPException):
                if attempt == self.retries:
                    raise
                self.sleep(min(2**attempt, 30))  # then resume from what arrived
        raise ApiError(0, "download_failed", _("The download did not complete; run it again."))
