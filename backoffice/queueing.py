"""Queue Celery work from a request, a service or a task so that a broker that is down,
restarting or hung never fails the caller and never loses the job.

`on_commit(name, *args)` queues the task `name` once the current transaction commits (so the task
never runs before the rows it reads exist, and a rolled-back write queues nothing); `later(name,
*args)` queues it now. Either takes `countdown=` (seconds): the task runs no earlier, and a job
kept through an outage keeps that time (its ETA; sent after it, it runs at once). Without a
broker (eager, `make run`) the task runs at once whatever the countdown: a caller that needs
the delay there runs its own timer. When the broker does not take it (refused, or no answer within
PUBLISH_TIMEOUT_S), the job is written to `backoffice_pendingtask` and the caller carries on;
`backoffice.pending_tasks_send` (beat, every PENDING_TASKS_SEND_SECONDS) sends those again once the broker
answers. A task queued this way may run twice (a send that timed out may have arrived): Celery's
tasks are at-least-once anyway and must be idempotent.

Calling `task.delay()` directly, a broker outage raised kombu's OperationalError into the caller:
a 500 for a request (after its write had committed, when queued in `transaction.on_commit`), and
the job was gone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import DatabaseError, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Seconds a send may wait for the broker (connect and answer) before the job is kept for later:
# kombu's Redis transport has no socket timeout of its own, so a hung Redis held the caller.
PUBLISH_TIMEOUT_S = 3.0
# Tries of one send (kombu's publish retry), back to back within the timeout above.
PUBLISH_RETRIES = 1
SEND_BATCH = 500


def _publish(name: str, args: list[Any], eta: datetime | None = None) -> None:
    app = current_app
    task = app.tasks[name]  # a name nobody registered fails here, in the caller's test
    if app.conf.task_always_eager:  # no broker (make run) and the test suite: run in-process
        task.apply_async(args=args)
        return
    options = {"socket_timeout": PUBLISH_TIMEOUT_S, "socket_connect_timeout": PUBLISH_TIMEOUT_S}
    with app.connection_for_write(transport_options=options) as connection:
        task.apply_async(
            args=args,
            eta=eta,
            connection=connection,
            retry=True,
            retry_policy={"max_retries": PUBLISH_RETRIES, "interval_start": 0, "interval_step": 0},
        )


def later(name: str, *args: Any, countdown: float | None = None) -> bool:
    """Queue task `name` with `args` now, to run `countdown` seconds from now (None: at once);
    True when the broker took it (or it ran in-process), False when it was kept for
    `pending_tasks_send` (with its ETA)."""
    app = current_app
    if name not in app.tasks:
        raise KeyError(f"No task is registered as {name!r}")
    now = timezone.now()
    eta = now + timedelta(seconds=countdown) if countdown else None
    try:
        _publish(name, list(args), eta)
        return True
    except Exception as exc:  # kombu's OperationalError, a socket error, a timeout
        logger.warning("The broker did not take %s%r (%s): kept to send later", name, args, exc)
    try:
        from .models import PendingTask

        PendingTask.objects.create(name=name, args=list(args), created_at=now, eta=eta)
    except DatabaseError:
        logger.exception("Could not keep %s%r to send later: it is lost", name, args)
    return False


def on_commit(name: str, *args: Any, countdown: float | None = None) -> None:
    """`later(name, *args, countdown=...)` once the current transaction commits (at once outside
    one)."""
    if name not in current_app.tasks:
        raise KeyError(f"No task is registered as {name!r}")
    transaction.on_commit(lambda: later(name, *args, countdown=countdown), robust=True)


def pending_send() -> int:
    """Send the kept jobs again, oldest first; stop at the first the broker still refuses.
    Return how many were sent."""
    from .models import PendingTask

    sent = 0
    for job in PendingTask.objects.order_by("created_at", "pk")[:SEND_BATCH]:
        try:
            _publish(job.name, list(job.args), job.eta)  # an ETA past by now: at once
        except KeyError:
            logger.error("Kept job %s names no registered task: dropped", job)
            job.delete()
            continue
        except Exception as exc:
            PendingTask.objects.filter(pk=job.pk).update(attempts=job.attempts + 1)
            logger.warning("The broker still refuses kept jobs (%s): %s", exc, job)
            break
        job.delete()
        sent += 1
    return sent
