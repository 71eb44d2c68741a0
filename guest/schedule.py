"""When the guest app's background work runs: services schedule a task here by its name, so
they never import `guest/tasks.py` (tasks call services, never the other way; the app
registers the tasks in `GuestConfig.ready()`)."""

from __future__ import annotations

import logging
import threading

from celery import Task, current_app
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

START_EXPIRE = "guest.start_expire"


def _check_later(task: Task, guest_session_id: int) -> None:
    close_old_connections()
    try:
        task(guest_session_id)
    except Exception:
        logger.exception("Start check of guest session %s failed", guest_session_id)
    finally:
        connections.close_all()  # this thread ends here: do not leave its connection open


def start_check(guest_session_id: int, delay_s: float) -> None:
    """Check the start after `delay_s` (+1 s margin) on the server side, never in the browser.

    With a broker, Celery runs it with a countdown. Without one (eager mode ignores countdowns)
    a timer thread in this process does; the consumer of an open guest page and the page
    itself re-check at the deadline too, and every check is idempotent.
    """
    task = current_app.tasks[START_EXPIRE]
    if settings.CELERY_TASK_ALWAYS_EAGER:
        timer = threading.Timer(delay_s + 1, _check_later, args=[task, guest_session_id])
        timer.daemon = True
        timer.start()
        return
    try:
        task.apply_async(args=[guest_session_id], countdown=delay_s + 1)
    except Exception:  # kombu's OperationalError, the broker's send pause, a timeout
        # The charger was already told to start: the guest must reach the session page. The
        # beat's sweep of overdue starts and the open page do this check without the task.
        logger.warning(
            "Start check of guest session %s not queued", guest_session_id, exc_info=True
        )
