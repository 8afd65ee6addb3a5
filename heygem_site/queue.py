"""django-q2 configuration: the ORM broker by default, Redis when REDIS_URL is set."""

from __future__ import annotations

import os
from typing import Any


def q_cluster_settings(*, redis_url: str, testing: bool) -> dict[str, Any]:
    """Return the ``Q_CLUSTER`` dict.

    ``retry`` is kept larger than ``timeout`` so the broker never hands a task that is still
    running to a second worker.
    """
    timeout = int(os.environ.get("Q_TIMEOUT", "600"))
    config: dict[str, Any] = {
        "name": os.environ.get("Q_CLUSTER_NAME", "heygem"),
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
    }
    if redis_url:
        config["redis"] = redis_url
    else:
        config["orm"] = "default"
    return config
