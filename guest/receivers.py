"""React to charging sessions (chargers.signals) without putting rules in receivers."""

from __future__ import annotations

import logging

from django.conf import settings

from chargers.signals import asked_once

logger = logging.getLogger(__name__)


def on_started(sender, session_id: int, **kwargs) -> None:
    # Inline, not queued: linking is one indexed update, and it is what turns the guest's
    # page to "Charging"; a queue would only add latency.
    from .services import guest_session_link, guest_sessions_starting_exist

    try:
        guest_session_link(
            session_id=session_id,
            guests_starting=asked_once(kwargs, "guests-starting", guest_sessions_starting_exist),
        )
    except Exception:  # never break the charger's StartTransaction
        logger.exception("Linking session %s to a guest failed", session_id)


def on_finished(sender, session_id: int, **kwargs) -> None:
    # Settling talks to the payment processor: a worker does it when there is a broker. The
    # guest's open page and the receipt page finish it too if no worker got to it.
    from .services import guest_session_finish, guest_sessions_unsettled_exist
    from .tasks import guest_session_finish_task

    try:
        # Every stop of every charger comes here and almost none is a guest's: no task for it
        # while no guest session anywhere is waiting to be settled (a restart stops thousands).
        if not asked_once(kwargs, "guests-unsettled", guest_sessions_unsettled_exist):
            return
        if settings.CELERY_TASK_ALWAYS_EAGER:
            guest_session_finish(session_id=session_id)
        else:
            guest_session_finish_task.delay(session_id)
    except Exception:  # never break the charger's StopTransaction
        logger.exception("Settling the guest session of session %s failed", session_id)


def on_hold_authorized(sender, reference: str, **kwargs) -> None:
    # The webhook said the hold is confirmed (the guest may have closed the page): start. The
    # remote start waits for the charger, so a worker does it when there is a broker.
    from .services import guest_hold_authorized
    from .tasks import guest_hold_authorized_task

    try:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            guest_hold_authorized(reference=reference)
        else:
            guest_hold_authorized_task.delay(reference)
    except Exception:  # the webhook is stored; the guest's return page starts it too
        logger.exception("Starting the guest session of payment %s failed", reference)


def on_allocation_changed(sender, session_ids: list[int], **kwargs) -> None:
    # A guest's power allowance (or its turn) changed: the open page shows it at once.
    from .models import GuestSession
    from .starts import publish

    for gs_id in GuestSession.objects.filter(
        charging_session_id__in=session_ids, state=GuestSession.State.CHARGING
    ).values_list("pk", flat=True):
        publish(gs_id)
