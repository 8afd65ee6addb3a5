"""The task queue, seen from the code that puts work on it.

One policy for a broker that is down, the one that keeps our rows as the record and leaves
nothing half-created:

1. Before anything is written, :func:`queue_check` asks the broker; when it does not answer,
   the person is refused with :data:`QUEUE_DOWN` and no row is created.
2. Rows are written in a transaction; :func:`enqueue_on_commit` queues the task only once they
   are committed (a worker never looks for a row that is not there yet).
3. If the broker fails after the commit, the row stays (queued, pending…) and the error is
   logged, never raised into a request that already succeeded. Each kind of row has a sweeper
   on a schedule that gives such rows a task again (render jobs: the reaper; bundles: the
   dispatcher; webhook deliveries: the due-delivery sweep).

django-q2's own task table is a transport that prunes itself; tasks take row ids, not objects.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy

logger = logging.getLogger(__name__)

QUEUE_DOWN = gettext_lazy(
    "The task queue cannot be reached right now, so nothing was submitted. Try again in a "
    "minute; if it persists, ask your administrator to check Redis."
)


def render_queue() -> str:
    """The render cluster's queue (one worker per GPU, long time limit): Q_RENDER_QUEUE."""
    return settings.RENDER_QUEUE


def light_queue() -> str:
    """The default cluster's queue (bundles, clean-up, notifications, webhooks)."""
    from django_q.conf import Conf

    return Conf.CLUSTER_NAME


def queue_check(cluster: str) -> None:
    """Refuse new work the queue could not take — asked before anything is written, so a
    broker outage leaves no half-created batch or export behind."""
    from django_q.brokers import get_broker

    try:
        reachable = get_broker(cluster).ping()
    except Exception:
        logger.exception("the task queue broker is not reachable")
        reachable = False
    if not reachable:
        raise ValidationError(str(QUEUE_DOWN), code="queue_unavailable")


def enqueue(
    func: str, row_ids: Iterable[int], *, name: str, timeout: int, cluster: str = ""
) -> int:
    """Queue ``func(row_id)`` for each id on ``cluster`` (default: the light queue), each task
    named ``<name>-<id>-<random>`` and stopped after ``timeout`` s. A broker error is logged and
    the rest still tried: the rows stay the record and their sweeper queues them again.
    Returns how many were queued."""
    from django_q.tasks import async_task

    queued = 0
    for row_id in row_ids:
        options = {"task_name": f"{name}-{row_id}-{uuid.uuid4().hex[:6]}", "timeout": timeout}
        if cluster:
            options["cluster"] = cluster
        try:
            async_task(func, row_id, q_options=options)
        except Exception:
            logger.exception("could not queue %s(%s); its sweeper will", func, row_id)
            continue
        queued += 1
    return queued


def enqueue_on_commit(
    func: str, row_ids: Iterable[int], *, name: str, timeout: int, cluster: str = ""
) -> None:
    """:func:`enqueue` once the current transaction commits (at once outside one)."""
    ids = list(row_ids)
    transaction.on_commit(lambda: enqueue(func, ids, name=name, timeout=timeout, cluster=cluster))


def ids_waiting(cluster: str, func: str) -> set[int] | None:
    """The row ids that ``cluster``'s broker holds a ``func`` task for (waiting or being worked
    on): an empty set when tasks run inline, None for a broker that cannot be listed."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    if Conf.SYNC:
        return set()  # tasks run inline: the broker never holds one
    broker = get_broker(cluster)
    if isinstance(broker, ORM):
        payloads = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key)
        payloads = payloads.values_list("payload", flat=True).iterator()
    elif isinstance(broker, Redis):
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        return None
    ids = set()
    for payload in payloads:
        try:
            task = SignedPackage.loads(payload)
        except Exception:
            logger.warning("an unreadable task in the queue %s", cluster)
            continue
        if task.get("func") == func and task.get("args"):
            ids.add(int(task["args"][0]))
    return ids
