"""Celery tasks: expire starts the car never followed, settle finished guest sessions."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


@shared_task(name="guest.start_expire")
def guest_start_expire_task(guest_session_id: int) -> bool:
    from .services import guest_start_expire

    return guest_start_expire(guest_session_id=guest_session_id)


@shared_task(name="guest.expire_overdue")
def guest_expire_overdue_task() -> int:
    from .services import guest_expire_overdue

    return guest_expire_overdue()


@shared_task(name="guest.finish_unsettled")
def guest_finish_unsettled_task() -> int:
    from .services import guest_finish_unsettled

    return guest_finish_unsettled()


@shared_task(name="guest.stay_caps_enforce")
def guest_stay_caps_enforce_task() -> int:
    """Stop stays' sessions at their kWh cap (beat: STAYS_CAP_CHECK_SECONDS, docs/pms.md)."""
    from .stays import stay_caps_enforce

    return len(stay_caps_enforce())


@shared_task(name="guest.hold_authorized")
def guest_hold_authorized_task(reference: str) -> None:
    from .services import guest_hold_authorized

    guest_hold_authorized(reference=reference)


@shared_task(name="guest.session_link")
def guest_session_link_task(session_id: int) -> None:
    from .services import guest_session_link

    guest_session_link(session_id=session_id)


@shared_task(
    name="guest.session_finish", autoretry_for=(Exception,), retry_backoff=10, max_retries=5
)
def guest_session_finish_task(session_id: int) -> None:
    from .services import guest_session_finish

    guest_session_finish(session_id=session_id)


def _check_later(guest_session_id: int) -> None:
    close_old_connections()
    try:
        guest_start_expire_task(guest_session_id)
    except Exception:
        logger.exception("Start check of guest session %s failed", guest_session_id)
    finally:
        connections.close_all()  # this thread ends here: do not leave its connection open


def schedule_start_check(guest_session_id: int, delay_s: float) -> None:
    """Check the start after `delay_s` (+1 s margin) on the server side, never in the browser.

    With a broker, Celery runs it with a countdown. Without one (eager mode ignores countdowns)
    a timer thread in this process does; the consumer of an open guest page and the page
    itself re-check at the deadline too, and every check is idempotent.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        timer = threading.Timer(delay_s + 1, _check_later, args=[guest_session_id])
        timer.daemon = True
        timer.start()
    else:
        guest_start_expire_task.apply_async(args=[guest_session_id], countdown=delay_s + 1)
