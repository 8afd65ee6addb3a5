"""The clients of ``bench/load.py``: people browsing, submitting small batches, fetching bundles.

Run by ``bench/load.py`` (``locust -f bench/load_locustfile.py --headless …``), which seeds the
installation and passes it here through ``LOAD_CONFIG`` (a JSON file): the organization, the
accounts (one password), the projects, the uploaded avatar and audio ids, the batches already
rendered, the rates, the measured duration and where to write what happened.

Each client logs in through the real form (GET for the CSRF cookie and token, POST the
credentials), then, with a pause of 0.5-2 s between actions, mostly browses: the organization
home, the projects list, a project, a batch and the status.json its page polls, the bundles
list and one bundle, notifications, and the audit log (admins). Sometimes (a shared budget:
one submission every ``submit_every`` s across all clients) it submits a batch of the uploaded
avatar x 1-2 audio tracks through the "New batch" form and follows its status.json for a few
polls; sometimes (one every ``export_every`` s) it opens the bundle confirmation of a finished
batch, confirms it, polls the bundle's status.json each second until it is ready, and
downloads the ZIP (checked: 200, ``PK`` magic, the announced size).

A request counts as an error when the answer is not the one a person expects there: any 5xx,
any 4xx (429 included), a connection failure or timeout, a redirect to the login page, a form
refused (batch form answering 400, a bundle request redirected anywhere but its bundle page),
a bundle that is not a ZIP of the announced size. Every request is recorded (name, start,
milliseconds, error) and written, with the batches and bundles the clients saw accepted, to
``LOAD_CONFIG["out"]`` when locust quits. The load stops by itself ``duration`` s after every
client has logged in (``-t`` is only a safety net).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import gevent
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

CONFIG = json.loads(Path(os.environ["LOAD_CONFIG"]).read_text(encoding="utf-8"))
ORG = CONFIG["org"]
BASE = f"/o/{ORG}"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
BATCH_LOCATION = re.compile(rf"^(?:https?://[^/]+)?{re.escape(BASE)}/batches/(\d+)/$")
EXPORT_LOCATION = re.compile(rf"^(?:https?://[^/]+)?{re.escape(BASE)}/exports/(\d+)/$")

# --- what happened, shared by every client (one process, gevent: no locks needed) ------------
RECORDS: list[tuple[str, float, float, str]] = []  # name, start (epoch s), ms, error ("" if ok)
ERRORS: Counter = Counter()  # "name: reason" -> count
SUBMITTED: dict[int, int] = {}  # batch id -> jobs it should hold (as the client asked)
EXPORTS: set[int] = set()  # bundle ids the clients were sent to after confirming
DOWNLOADS: list[dict] = []
ACTIONS: Counter = Counter()
STATE = {
    "started": 0,
    "measure_start": None,
    "measure_end": None,
    "stopping": False,
    "client_exceptions": 0,
}
FINISHED_BATCHES: list[int] = list(CONFIG["finished_batches"])  # batches with rendered videos
KNOWN_BATCHES: list[int] = list(CONFIG["finished_batches"])
KNOWN_EXPORTS: list[int] = []
BUDGET = {"submit": 0.0, "export": 0.0}  # the next moment (monotonic) each action is allowed
ACCOUNT_INDEX = itertools.count()


def take(action: str) -> bool:
    """One shared budget per action: at most one every CONFIG[f"{action}_every"] seconds."""
    every = CONFIG[f"{action}_every"]
    now = time.monotonic()
    if every <= 0 or now < BUDGET[action]:
        return False
    BUDGET[action] = now + every
    return True


@events.request.add_listener
def _record(name, response_time, exception, start_time=None, **_kwargs):
    error = ""
    if exception is not None:
        error = str(exception)[:300] or type(exception).__name__
        ERRORS[f"{name}: {error}"] += 1
    RECORDS.append((name, start_time or time.time(), float(response_time or 0.0), error))


@events.user_error.add_listener
def _client_exception(user_instance, exception, tb, **_kwargs):
    # A task that raised (an answer this file did not expect): an error too, never hidden.
    ERRORS[f"client exception: {type(exception).__name__}: {str(exception)[:200]}"] += 1
    STATE["client_exceptions"] += 1


@events.quitting.add_listener
def _write(environment, **_kwargs):
    STATE["measure_end"] = STATE["measure_end"] or time.time()
    out = {
        "records": RECORDS,
        "errors": dict(ERRORS),
        "submitted": {str(k): v for k, v in SUBMITTED.items()},
        "exports": sorted(EXPORTS),
        "downloads": DOWNLOADS,
        "actions": dict(ACTIONS),
        "measure_start": STATE["measure_start"],
        "measure_end": STATE["measure_end"],
        "started_clients": STATE["started"],
        "client_exceptions": STATE["client_exceptions"],
    }
    Path(CONFIG["out"]).write_text(json.dumps(out), encoding="utf-8")


def _stop_load(environment) -> None:
    STATE["stopping"] = True
    STATE["measure_end"] = time.time()
    environment.runner.quit()


def _client_started(environment) -> None:
    """Once every client has logged in (or given up), measure for ``duration`` seconds."""
    STATE["started"] += 1
    if STATE["started"] == CONFIG["users"] and STATE["measure_start"] is None:
        STATE["measure_start"] = time.time()
        gevent.spawn_later(CONFIG["duration"], _stop_load, environment)


@events.test_start.add_listener
def _fallback(environment, **_kwargs):
    # If some client never comes back from its login, start measuring anyway.
    def start_anyway():
        if STATE["measure_start"] is None:
            STATE["measure_start"] = time.time()
            gevent.spawn_later(CONFIG["duration"], _stop_load, environment)

    gevent.spawn_later(CONFIG["login_grace"], start_anyway)


class StudioUser(FastHttpUser):
    wait_time = between(0.5, 2.0)
    network_timeout = 120.0
    connection_timeout = 30.0
    insecure = True

    # -- HTTP helpers ----------------------------------------------------------------------------
    def _csrf(self) -> str:
        for cookie in self.client.cookiejar:
            if cookie.name == "csrftoken":
                return cookie.value
        return ""

    def page(self, path: str, name: str, *, json_body: bool = False):
        """GET a page a person would open; anything but a 200 is an error. Returns the body."""
        with self.client.get(
            path, name=name, allow_redirects=False, catch_response=True
        ) as response:
            status = response.status_code
            if status != 200:
                where = response.headers.get("Location", "") if response.headers else ""
                response.failure(f"HTTP {status}{' -> ' + where if where else ''}")
                return None
            try:
                body = response.json() if json_body else response.text
            except ValueError:
                response.failure("not JSON")
                return None
            return body

    def post_form(self, path: str, name: str, fields: list[tuple[str, str]], expect):
        """POST a form as the browser does; ``expect(location)`` says whether the redirect is
        the right one. Returns the Location of an accepted post, else None."""
        body = urllib.parse.urlencode(fields)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.host,
            "Referer": f"{self.host}{path}",
            "X-CSRFToken": self._csrf(),
        }
        with self.client.post(
            path, name=name, data=body, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            status = response.status_code
            location = (response.headers.get("Location", "") if response.headers else "") or ""
            if status == 302 and expect(location):
                return location
            detail = ""
            if status == 400:
                found = re.findall(r'class="errors?"[^>]*>(.*?)</', response.text or "", re.S)
                detail = " ".join(re.sub(r"<[^>]+>", " ", f).split() for f in found)[:200]
            response.failure(f"HTTP {status}{' -> ' + location if location else ''} {detail}")
            return None

    def pause(self, seconds: float) -> bool:
        """Wait like a page's polling timer; False once the load is being stopped."""
        if STATE["stopping"]:
            return False
        gevent.sleep(seconds)
        return not STATE["stopping"]

    # -- the session -----------------------------------------------------------------------------
    def on_start(self) -> None:
        index = next(ACCOUNT_INDEX)
        self.account = CONFIG["accounts"][index % len(CONFIG["accounts"])]
        self.admin = self.account["role"] in ("admin", "owner")
        self.rng = random.Random(index)
        try:
            self.login()
        finally:
            _client_started(self.environment)

    def login(self) -> None:
        html = self.page("/login/", "login form")
        token = CSRF_INPUT.search(html or "")
        if token is None:
            raise StopUser()
        fields = [
            ("csrfmiddlewaretoken", token.group(1)),
            ("username", self.account["email"]),
            ("password", CONFIG["password"]),
            ("next", ""),
        ]
        if self.post_form("/login/", "login", fields, lambda loc: "/login/" not in loc) is None:
            raise StopUser()

    # -- browsing (most of the load) ------------------------------------------------------------
    @task(3)
    def org_home(self) -> None:
        self.page(f"{BASE}/", "org home")

    @task(4)
    def projects(self) -> None:
        self.page(f"{BASE}/projects/", "projects")

    @task(4)
    def project(self) -> None:
        pk = self.rng.choice(CONFIG["projects"])
        self.page(f"{BASE}/projects/{pk}/", "project")

    @task(6)
    def batch(self) -> None:
        """Open a batch and let its page poll status.json once or twice."""
        pk = self.rng.choice(KNOWN_BATCHES[-30:])
        if self.page(f"{BASE}/batches/{pk}/", "batch") is None:
            return
        for _ in range(self.rng.randint(1, 2)):
            if not self.pause(1.5):
                return
            self.page(
                f"{BASE}/batches/{pk}/status.json?page=1", "batch status.json", json_body=True
            )

    @task(2)
    def bundles(self) -> None:
        self.page(f"{BASE}/exports/", "bundles")

    @task(2)
    def bundle(self) -> None:
        if not KNOWN_EXPORTS:
            return self.bundles()
        pk = self.rng.choice(KNOWN_EXPORTS[-20:])
        self.page(f"{BASE}/exports/{pk}/", "bundle")

    @task(1)
    def notifications(self) -> None:
        self.page(f"{BASE}/notifications/", "notifications")

    @task(2)
    def audit(self) -> None:
        if not self.admin:
            return self.projects()
        self.page(f"{BASE}/audit/", "audit log")
        if self.rng.random() < 0.3 and self.pause(self.rng.uniform(0.5, 2.0)):
            self.page(f"{BASE}/audit/?page=2", "audit log page 2")

    # -- work ------------------------------------------------------------------------------------
    @task(3)
    def submit(self) -> None:
        """New batch: the form, then POST the uploaded avatar x 1-2 audio tracks."""
        if not take("submit"):
            return self.project()
        project = self.rng.choice(CONFIG["projects"])
        path = f"{BASE}/projects/{project}/batches/new/"
        html = self.page(path, "new batch form")
        token = CSRF_INPUT.search(html or "")
        if token is None:
            return
        audios = self.rng.sample(CONFIG["audios"], self.rng.randint(1, 2))
        n = next(ACCOUNT_INDEX)
        fields = [
            ("csrfmiddlewaretoken", token.group(1)),
            ("name", f"Load {n}"),
            ("engine", "warp"),
            ("tags", self.rng.choice(["", "load", "load, promo"])),
            ("avatars", str(CONFIG["avatar"])),
            *[("audios", str(a)) for a in audios],
        ]
        if not self.pause(self.rng.uniform(0.5, 1.5)):  # choosing files
            return
        location = self.post_form(path, "submit batch", fields, BATCH_LOCATION.match)
        if location is None:
            return
        pk = int(BATCH_LOCATION.match(location).group(1))
        SUBMITTED[pk] = len(audios)
        KNOWN_BATCHES.append(pk)
        ACTIONS["batches submitted"] += 1
        ACTIONS["jobs submitted"] += len(audios)
        if self.page(location, "batch") is None:
            return
        for _ in range(self.rng.randint(2, 4)):  # watch it a little, as the page polls
            if not self.pause(1.5):
                return
            status = self.page(
                f"{BASE}/batches/{pk}/status.json?page=1", "batch status.json", json_body=True
            )
            if status and status.get("status") in ("succeeded", "partial"):
                if status["counts"].get("succeeded") and pk not in FINISHED_BATCHES:
                    FINISHED_BATCHES.append(pk)
                return

    @task(3)
    def fetch_bundle(self) -> None:
        """Download all as ZIP: confirm, wait for the build, download."""
        if not take("export"):
            return self.bundles()
        batch = self.rng.choice(FINISHED_BATCHES[-10:])
        html = self.page(f"{BASE}/exports/new/?batch={batch}", "bundle confirm")
        if html is None:
            return
        building = re.search(rf'href="{re.escape(BASE)}/exports/(\d+)/"', html)
        token = CSRF_INPUT.search(html)
        if token is not None:
            fields = [
                ("csrfmiddlewaretoken", token.group(1)),
                ("batch", str(batch)),
                ("back", f"{BASE}/batches/{batch}/"),
            ]
            if not self.pause(self.rng.uniform(0.5, 1.5)):  # reading the size
                return
            location = self.post_form(
                f"{BASE}/exports/new/", "request bundle", fields, EXPORT_LOCATION.match
            )
            if location is None:
                return
            pk = int(EXPORT_LOCATION.match(location).group(1))
            ACTIONS["bundles requested"] += 1
        elif building is not None:  # the same bundle is being built: follow it
            pk = int(building.group(1))
            ACTIONS["bundles followed (already building)"] += 1
        else:
            return
        EXPORTS.add(pk)
        KNOWN_EXPORTS.append(pk)
        if self.page(f"{BASE}/exports/{pk}/", "bundle") is None:
            return
        status: dict | None = None
        deadline = time.monotonic() + CONFIG["bundle_wait"]
        while time.monotonic() < deadline and self.pause(1.0):
            status = self.page(
                f"{BASE}/exports/{pk}/status.json", "bundle status.json", json_body=True
            )
            if not status or status["status"] not in ("queued", "building"):
                break
        if not status or status["status"] != "ready":
            if status and status["status"] == "failed":
                ERRORS[f"bundle {pk} failed: {status.get('error', '')[:200]}"] += 1
            return
        self.download(pk, status)

    def download(self, pk: int, status: dict) -> None:
        with self.client.get(
            status["download"], name="bundle download", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                where = response.headers.get("Location", "") if response.headers else ""
                response.failure(f"HTTP {response.status_code} {where}")
                return
            body = response.content or b""
            if not body.startswith(b"PK") or len(body) != status.get("zip_bytes"):
                response.failure(f"not the ZIP announced: {len(body)} bytes, {body[:4]!r}")
                return
            DOWNLOADS.append({"export": pk, "bytes": len(body)})
            ACTIONS["bundles downloaded"] += 1
