"""What every guest start shares (guest.services for the QR flow, guest.stays for a stay's code):
how long the guest has to plug in, telling the guest's open page to reload, and failing a
start (the session failed, its card token retired, the hold on the card released)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from authorization.models import Token
from backoffice import queueing
from backoffice.env import env_float
from chargers.models import Charger

from . import payments, schedule
from .models import GuestSession

logger = logging.getLogger(__name__)

OPEN_BEFORE_START = (GuestSession.State.PENDING, GuestSession.State.STARTING)


def ports_locked(charger_id: int) -> None:
    """Lock the charger's row until the current transaction ends: a start checks that no other
    guest holds the port and takes it under this lock, so two tabs, a double submit or two stay
    codes never both take one port (the second waits, then finds it taken)."""
    Charger.objects.select_for_update(no_key=True).filter(pk=charger_id).values_list(
        "pk", flat=True
    ).first()


def start_timeout_s() -> float:
    """Seconds a guest has to plug in after the charger accepted the remote start."""
    return float(
        getattr(settings, "GUEST_START_TIMEOUT_S", None) or env_float("GUEST_START_TIMEOUT_S", 60.0)
    )


def start_check(guest_session_id: int, delay_s: float) -> None:
    """Check the start after `delay_s` (+1 s margin) on the server side. With a broker the check
    is queued with its countdown through `backoffice.queueing`: a broker that is down or hung
    never fails the start, and the job is kept with its time (the ETA) and sent once the broker
    answers (at once if its time has passed by then). Without a broker (eager Celery ignores
    countdowns) a timer thread of this process runs it (`guest.schedule.start_check`). The beat's
    sweep of overdue starts and the open page check too; every check is idempotent."""
    if current_app.conf.task_always_eager:
        schedule.start_check(guest_session_id, delay_s)
        return
    queueing.later(schedule.START_EXPIRE, guest_session_id, countdown=delay_s + 1)


def guest_group(guest_session_id: int) -> str:
    return f"guest.{guest_session_id}"


def publish(guest_session_id: int) -> None:
    """Tell the guest's open page to reload its state (best effort; the page also reads the DB)."""
    try:
        async_to_sync(get_channel_layer().group_send)(
            guest_group(guest_session_id), {"type": "guest.update"}
        )
    except Exception:
        logger.warning("Could not notify guest session %s", guest_session_id, exc_info=True)


def fail_start(gs: GuestSession, code: str, message: str) -> bool:
    """Mark a not-yet-started session failed and retire its token; False if it had moved on."""
    done = GuestSession.objects.filter(pk=gs.pk, state__in=OPEN_BEFORE_START).update(
        state=GuestSession.State.FAILED,
        failure_code=code,
        failure_message=message,
        finished_at=timezone.now(),
    )
    if done and gs.token_id:
        # A late StartTransaction with this idTag is now refused, so the charger stops it.
        Token.objects.filter(pk=gs.token_id).update(valid=False)
    gs.refresh_from_db()
    return bool(done)


RELEASED = "The hold on your card was released; you were not charged."
# Said when the processor did not complete the release (down, 5xx, 429): the sweep
# (guest.services.failed_holds_release) releases it once it answers.
RELEASE_LATER = "The hold on your card will be released shortly; you were not charged."
# Said when the processor's answer to creating a hold was lost: it may have held the card.
CHECK_LATER = "If your card was held, the hold will be released shortly; you were not charged."
NOTHING_HELD = "Nothing stays held on your card; you were not charged."


def release_hold(gs: GuestSession) -> bool:
    """Release the failed start's hold; False when the processor did not complete it."""
    assert gs.payment_id is not None
    try:
        payments.release(payment_id=gs.payment_id, reason=f"guest start: {gs.failure_code}")
    except payments.GatewayError:
        logger.warning("Releasing the hold of guest session %s failed", gs.pk, exc_info=True)
        return False
    return True


def fail_and_release(gs: GuestSession, code: str, message: str) -> GuestSession:
    if fail_start(gs, code, message) and gs.payment_id:
        said = RELEASED if release_hold(gs) else RELEASE_LATER
        GuestSession.objects.filter(pk=gs.pk).update(failure_message=f"{message} {said}")
        gs.refresh_from_db()
    publish(gs.pk)
    return gs
