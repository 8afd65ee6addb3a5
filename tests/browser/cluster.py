"""Real django-q2 ``qcluster`` processes for tests that need the queue to run for real.

A cluster here is a subprocess of ``manage.py qcluster`` on the test database of the running
test (SQLite file or PostgreSQL) and the broker of the stack under test (the ORM broker, or
Redis when REDIS_URL is set), with the test's own MEDIA_ROOT and EXPORT_ROOT.

Every cluster listens on a queue name of its own, so parallel test runs (pytest-xdist workers,
two people on one Redis) never take each other's tasks. The enqueuing side (this test process
and its live server thread) must use the same names: see ``Clusters`` in ``conftest.py``.
The site name (``Q_SITE_NAME``) is never changed: it is the signing salt and must be the same
for the process that enqueues and the one that runs a task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.stack import storage_env

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 30


def database_url() -> str:
    """The URL of the database this test process uses (the test database, once it exists)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host = db["USER"] or "postgres", db["HOST"] or "127.0.0.1"
    return f"postgres://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Cluster:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-chars:]

    def describe(self) -> str:
        state = "running" if self.process.poll() is None else f"exit {self.process.returncode}"
        return f"--- qcluster {self.name} ({state}), {self.log_path}:\n{self.log_tail()}"


def cluster_env(name: str, *, log_dir: Path, extra: dict[str, str] | None = None) -> dict:
    """The environment of a qcluster that serves the queue ``name`` of this test."""
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "Q_SYNC": "0",
        "Q_CLUSTER_NAME": name,
        "DATABASE_URL": database_url(),
        "LOG_DIR": str(log_dir),
        **storage_env(),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # only the browser test process needs it
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env.update(extra or {})
    return env


@contextmanager
def qcluster(
    name: str, *, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Run ``manage.py qcluster`` for the queue ``name`` until the block ends."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"qcluster-{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=cluster_env(name, log_dir=log_dir, extra=extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it reaches every worker
        )
        try:
            yield Cluster(name=name, process=process, log_path=log_path)
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the cluster's process group (a graceful stop), SIGKILL it if that hangs."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)  # the sentinel stops its own workers
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()
    # Workers that outlived their sentinel would go on polling a database that is about to
    # be flushed: the whole group goes.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
