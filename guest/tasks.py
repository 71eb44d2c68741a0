"""Celery tasks: expire starts the car never followed, settle finished guest sessions."""

from __future__ import annotations

from celery import shared_task

from . import schedule


@shared_task(name=schedule.START_EXPIRE)
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


@shared_task(name="guest.held_ceilings_enforce")
def guest_held_ceilings_enforce_task() -> int:
    """Stop hold-paid sessions (guest cards, payment terminals) at the ceiling their hold pays
    for (beat: HELD_CEILING_CHECK_SECONDS, guest/ceilings.py)."""
    from .ceilings import held_ceilings_enforce

    return len(held_ceilings_enforce())


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
