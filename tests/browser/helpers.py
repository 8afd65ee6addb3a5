"""Helpers for the real-browser tests: browser settings, logging in, pictures for docs/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from django.conf import settings

from tests.browser.cluster import ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
ACTION_MS = 30_000  # a click or a page load; only a liveness limit
LIVENESS_MS = 120_000  # renders and builds on a real cluster; only a liveness limit
SCREENSHOTS = ROOT / "docs" / "screenshots"


def log_in(context, base_url: str, user) -> None:
    """Give a browser context the session of ``user`` (the login form has its own test)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    context.add_cookies([{"name": name, "value": client.cookies[name].value, "url": base_url}])


# Pictures for docs/: the dates on the pages are pinned so a picture changes when the page
# does, not when the clock does.
_STEADY_PAGE = r"""
() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  // 2025-06-02 09:30[:00] for every date and time, a day later for an expiry ("until …").
  const pin = (text) => text
    .replace(
      /(until )?\b\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?(:\d{2})?\b/g,
      (_, until, time, seconds) =>
        `${until || ""}2025-06-0${until ? 3 : 2}${time ? " 09:30" : ""}${seconds ? ":00" : ""}`)
    .replace(/_\d{8}_\d{4}_/g, "_20250602_0930_");
  document.activeElement?.blur();  // no focus ring in the picture
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const pinned = pin(node.nodeValue);
    if (pinned !== node.nodeValue) node.nodeValue = pinned;
  }
}
"""


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save the whole page (or only what the window shows) as docs/screenshots/<name>.png, as
    wide as the browser's window (1280 px; 390 px for the phone-* pictures), overwriting."""
    assert re.fullmatch(r"[a-z0-9-]+", name), name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate(_STEADY_PAGE)
    page.mouse.move(0, 0)  # no hover effect in the picture
    target = SCREENSHOTS / f"{name}.png"
    temp = target.with_name(f".{name}.{os.getpid()}.png")
    page.screenshot(path=temp, full_page=full_page, animations="disabled", caret="hide")
    shutil.move(temp, target)  # never a half-written picture, even with two workers
    return target
