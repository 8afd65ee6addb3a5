"""django-q2 configuration: the ORM broker by default, Redis when REDIS_URL is set."""

from __future__ import annotations

import os
from typing import Any


def q_cluster_settings(*, redis_url: str, render_queue: str, testing: bool) -> dict[str, Any]:
    """Return the ``Q_CLUSTER`` dict.

    ``retry`` is kept larger than ``timeout`` so the broker never hands a task that is still
    running to a second worker.
    """
    timeout = int(os.environ.get("Q_TIMEOUT", "600"))
    config: dict[str, Any] = {
        "name": os.environ.get("Q_SITE_NAME", "heygem"),  # signing salt: same on every host
        "workers": int(os.environ.get("Q_WORKERS", "2")),
        "timeout": timeout,
        "retry": timeout + 60,
        "max_attempts": 1,  # our own rows count attempts; the broker must not replay silently
        "queue_limit": 50,
        "bulk": 1,
        "save_limit": 500,
        "ack_failures": True,
        "catch_up": False,
        "poll": 0.5 if testing else 1,
        "label": "Task queue",
        # Unit tests run tasks inline; the end-to-end tests start real qclusters (Q_SYNC=0).
        "sync": os.environ.get("Q_SYNC", "1" if testing else "0") == "1",
    }
    # Renders run on their own cluster (one worker per GPU, long timeout), apart from light
    # tasks (exports, cleanup, notifications) on the default cluster. Start it with
    # Q_CLUSTER_NAME=<render_queue> manage.py qcluster.
    render_timeout = int(os.environ.get("RENDER_TIME_LIMIT_S", "3600")) + 300
    config["ALT_CLUSTERS"] = {
        render_queue: {
            "workers": int(os.environ.get("RENDER_WORKERS", "1")),
            "timeout": render_timeout,
            "retry": render_timeout + 300,
            "queue_limit": 4,
        }
    }
    if redis_url:
        config["redis"] = redis_url
    else:
        config["orm"] = "default"
    return config
