"""Signal receivers: no rules here, only a hand-off to roaming tasks.

A failure here must never cost the charger its answer (tasks run in-process without a
broker): it is logged, and the periodic sweeps push what was missed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


_partners_checked: tuple[float, bool] = (float("-inf"), False)


def _any_connected_partner() -> bool:
    """Whether any operator has a connected partner, asked at most every 5 s: a backoffice with
    no roaming partner publishes no task per status change or session start/end (a restart storm
    sends thousands). A partner that just connected in another process is covered by the status
    and sessions sweeps meanwhile."""
    global _partners_checked
    from .models import Partner

    checked_at, connected = _partners_checked
    if time.monotonic() - checked_at > 5:
        connected = Partner.objects.filter(state=Partner.State.CONNECTED).exists()
        _partners_checked = (time.monotonic(), connected)
    return connected


def partner_saved(sender: Any, **kwargs: Any) -> None:
    """A partner connected or left: ask again at the next status change (in this process at once;
    other processes within 5 s, the sweep covers the gap)."""
    global _partners_checked
    _partners_checked = (float("-inf"), False)


def connector_status_changed(sender: Any, connectors: list[tuple[int, int]], **kwargs: Any) -> None:
    """Connectors have a new status (committed): push their EVSEs' status to partners."""
    from .tasks import evse_status_push_task

    try:
        if not _any_connected_partner():
            return
        evse_status_push_task.delay(
            [[charger_id, connector_id] for charger_id, connector_id in connectors]
        )
    except Exception:
        logger.exception("Could not push connector statuses to roaming partners; the sweep will")


def session_started(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session started (committed): push it if it is a roaming partner's customer's."""
    from .tasks import session_started_task

    try:
        if not _any_connected_partner():
            return
        session_started_task.delay(session_id)
    except Exception:
        logger.exception(
            "Could not push session %s to roaming partners; the sweep will", session_id
        )


def session_finished(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session ended (committed): push its final state and its CDR."""
    from .tasks import session_finished_task

    try:
        if not _any_connected_partner():
            return
        session_finished_task.delay(session_id)
    except Exception:
        logger.exception("Could not send the CDR of session %s; the sweep will", session_id)


def rate_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A price changed or was deleted: after the commit, PUT its Tariff to national access points
    (2.2.1 Tariffs have no PATCH; a deleted one is DELETEd) and the location to every partner
    (its tariff_ids)."""
    from django.db import transaction

    from .tasks import rate_changed_task

    rate_id, property_id = instance.pk, instance.property_id

    def push() -> None:
        try:
            if _any_connected_partner():
                rate_changed_task.delay(rate_id, property_id)
        except Exception:
            logger.exception("Could not push rate %s to partners; the sweep will", rate_id)

    transaction.on_commit(push)


def token_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A card was saved: after the commit, push its state to the partner CPOs of its organization
    (a blocked card reaches them as `valid: false`). Only a hand-off; roaming.emsp decides which
    cards go where, and the emsp tokens sweep catches a missed one."""
    from django.db import transaction

    from . import schedule

    if instance.organization_id is None or instance.msp_id is not None or instance.type == "GUEST":
        return  # a provider's card, a guest's one-time token: not ours to issue
    if not _any_connected_partner():
        return
    token_id = instance.pk
    transaction.on_commit(lambda: schedule.later(schedule.EMSP_TOKEN_PUSH, token_id))
