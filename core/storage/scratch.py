"""Scratch folders of render workers: one private folder per attempt of a job, on the
worker's own disk, where it fetches its inputs and writes its video before storing it."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

SCRATCH_NAME = re.compile(r"^job(\d+)-a(\d+)-")


def scratch_root() -> Path:
    root = Path(settings.RENDER_SCRATCH_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def scratch_for(job_id: int, attempt: int) -> Iterator[Path]:
    """A private folder for one attempt of one job, removed when the attempt ends however it
    ends (a SIGKILLed worker's folder is swept by :func:`sweep_scratch`)."""
    folder = scratch_root() / f"job{job_id}-a{attempt}-{secrets.token_hex(4)}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_scratch(live: Callable[[set[int]], set[tuple[int, int]]]) -> int:
    """Remove this host's scratch folders whose attempt is over. ``live`` is given the job ids
    that have a folder and answers which (job, attempt) pairs are still running."""
    folders: dict[tuple[int, int], list[Path]] = {}
    for folder in scratch_root().iterdir():
        if match := SCRATCH_NAME.match(folder.name):
            folders.setdefault((int(match.group(1)), int(match.group(2))), []).append(folder)
    if not folders:
        return 0
    running = live({job for job, _ in folders})
    dead = [folder for key, paths in folders.items() if key not in running for folder in paths]
    for folder in dead:
        shutil.rmtree(folder, ignore_errors=True)
    return len(dead)
