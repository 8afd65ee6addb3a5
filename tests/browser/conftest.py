"""Fixtures for the real-browser tests: Debian's Chromium driven by Playwright (sync API)
against pytest-django's live server, and real qclusters started on demand.

One browser per test session (per xdist worker), a fresh browser context per page, so no
cookie or storage leaks from one test into the next.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import cluster as qc
from tests.browser.helpers import ACTION_MS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, log_in

# Playwright's assertions wait 5 s by default, a click 30 s: on a loaded CI machine a page
# that takes longer than 5 s to settle is slow, not wrong. Both are liveness limits only.
expect.set_options(timeout=ACTION_MS)


class PlaywrightLoop:
    """Playwright's sync API runs an asyncio loop in this thread and marks it as running
    between calls. Django refuses ORM calls while a loop runs, and the other tests of this
    worker may call asyncio.run(); so the mark is taken away when a browser test ends and put
    back (Playwright cannot work without it) when the next one starts."""

    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def remember(cls) -> None:
        cls.loop = asyncio.get_running_loop()

    @classmethod
    def enter(cls) -> None:
        if cls.loop is not None and not cls.loop.is_closed():
            asyncio._set_running_loop(cls.loop)

    @classmethod
    def leave(cls) -> None:
        asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: `apt-get install chromium` "
            "(or `make test-deps`), or point CHROMIUM_PATH at it."
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        PlaywrightLoop.remember()
        PlaywrightLoop.leave()  # a session fixture: the test's database is not set up yet
        yield chromium
    finally:
        PlaywrightLoop.enter()
        try:
            playwright.stop()  # closes the browser too
        finally:
            PlaywrightLoop.loop = None
            PlaywrightLoop.leave()


@pytest.fixture(autouse=True)
def _orm_beside_playwright(transactional_db, monkeypatch):
    """Let this test's own ORM calls run next to Playwright's loop (see PlaywrightLoop).

    Asks for the database first, so that it ends before the database is flushed.
    """
    from django.db import connections

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    PlaywrightLoop.enter()
    yield
    # While a loop runs, Django keeps this thread's connections apart from the ones it uses
    # without a loop: close these, or one stays open (and PostgreSQL cannot drop the test
    # database at the end).
    connections.close_all()
    PlaywrightLoop.leave()


@pytest.fixture(autouse=True)
def _same_names_every_run():
    """The factories' fake names are the same on every run, so the pictures are too."""
    import factory.random

    factory.random.reseed_random("heygem-browser-tests")


@pytest.fixture
def new_page(browser, live_server, _orm_beside_playwright):
    """Open a page in a fresh browser context, logged in as ``user`` when one is given; an
    English browser in UTC, 1280x800, unless ``locale``, ``timezone_id``, ``viewport`` (and
    ``mobile``, for a phone) say otherwise.

    Uncaught JavaScript errors on any page fail the test.
    """
    contexts = []
    errors: list[str] = []

    def make(user=None, *, locale="en-US", timezone_id="UTC", viewport=None, mobile=False):
        context = browser.new_context(
            base_url=live_server.url,
            viewport=viewport or VIEWPORT,
            is_mobile=mobile,  # a phone: the page's <meta name="viewport"> applies, and touch
            has_touch=mobile,
            accept_downloads=True,
            locale=locale,  # also the browser's Accept-Language
            timezone_id=timezone_id,
            color_scheme="light",
            reduced_motion="reduce",
        )
        contexts.append(context)
        context.set_default_timeout(ACTION_MS)
        context.set_default_navigation_timeout(ACTION_MS)
        if user is not None:
            log_in(context, live_server.url, getattr(user, "user", user))
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors on the pages:\n" + "\n".join(errors)


@pytest.fixture
def page(new_page):
    """A page of a browser that is not logged in."""
    return new_page()


class Clusters:
    """Real qclusters for one test, started when the test asks for them.

    ``render()`` serves the render queue, ``light()`` the default queue (exports, cleanup).
    From the moment a test asks for ``clusters``, every task this process and its live
    server thread enqueue goes to this test's own queue names instead of running inline,
    and waits there until the matching cluster runs it.
    """

    def __init__(self, tmp_path: Path, monkeypatch):
        from django.conf import settings
        from django_q.conf import Conf

        self.log_dir = tmp_path / "qcluster-logs"
        self.render_name = qc.unique_name("render-browser")
        self.light_name = qc.unique_name("light-browser")
        self.running: list[qc.Cluster] = []
        self.stack = ExitStack()
        monkeypatch.setattr(Conf, "SYNC", False)
        monkeypatch.setattr(settings, "RENDER_QUEUE", self.render_name)
        # async_task() without a cluster goes to Conf.CLUSTER_NAME ("heygem", shared by
        # every run on one Redis): make that this test's own too.
        monkeypatch.setattr(Conf, "CLUSTER_NAME", self.light_name)

    def _start(self, name: str, extra_env: dict[str, str]) -> qc.Cluster:
        started = self.stack.enter_context(
            qc.qcluster(name, log_dir=self.log_dir, extra_env=extra_env)
        )
        self.running.append(started)
        return started

    def render(self) -> qc.Cluster:
        return self._start(
            self.render_name, {"Q_RENDER_QUEUE": self.render_name, "RENDER_BATCH_SIZE": "4"}
        )

    def light(self) -> qc.Cluster:
        return self._start(self.light_name, {"Q_RENDER_QUEUE": self.render_name, "Q_WORKERS": "1"})

    def close(self) -> None:
        from django_q.brokers import get_broker

        self.stack.close()
        for name in (self.render_name, self.light_name):
            get_broker(name).purge_queue()  # nothing left behind on a shared Redis
        # Shown by pytest only when the test failed: what the workers said.
        for started in self.running:
            print(started.describe())


@pytest.fixture
def clusters(live_server, tmp_path, monkeypatch, _orm_beside_playwright):
    """Real qclusters on demand: ``clusters.render()``, ``clusters.light()``.

    They stop when the test ends, before the live server and the database are torn down.
    """
    started = Clusters(tmp_path, monkeypatch)
    yield started
    started.close()


@pytest.fixture(scope="session")
def browser_media(tmp_path_factory):
    """What a person would pick in the file dialogs: one avatar video and three audio tracks
    (tiny, so renders take seconds)."""
    from tests import media

    folder = tmp_path_factory.mktemp("browser-media")
    avatar = media.make_avatar(folder / "presenter.mp4", seconds=1.0)
    audios = [
        media.make_audio(folder / f"take{i}.wav", seconds=seconds)
        for i, seconds in enumerate((0.8, 1.0, 1.2), start=1)
    ]
    return {"avatar": avatar, "audios": audios}
