"""Feed the port timeline from what chargers announces (its signals, and NotifyEvent rows as
they are saved). The work itself is a task: an OCPP handler never waits for it."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def statuses_changed(sender: Any, connectors: list[tuple[int, int]], **kwargs: Any) -> None:
    from .tasks import statuses_record_task

    try:
        statuses_record_task.delay([[c, n] for c, n in connectors])
    except Exception:
        logger.exception("Could not record connector statuses on the timeline; the sweep will")


def session_changed(sender: Any, session_id: int, **kwargs: Any) -> None:
    """One task for all the sessions announced together (chargers.signals.batched)."""
    from chargers.signals import batched

    batched(kwargs, "reliability.session_record", session_id, _session_record)


def _session_record(session_ids: list[int]) -> None:
    from .tasks import session_record_task

    try:
        session_record_task.delay(session_ids[0] if len(session_ids) == 1 else session_ids)
    except Exception:
        logger.exception("Could not record sessions %s on the timeline", session_ids[:10])


def charger_event_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or instance.variable != "AvailabilityState":
        return
    from .services.timeline import charger_event_record

    try:
        charger_event_record(instance)
    except Exception:
        logger.exception("Could not record event %s on the timeline", instance.pk)


def connections_changed(
    sender: Any, changes: list[tuple[int, str, bool, Any]], **kwargs: Any
) -> None:
    """Every connect and drop, as it is recorded (the sweep still finds silent sockets)."""
    from .services.timeline import links_record

    try:
        links_record(changes)
    except Exception:
        logger.exception("Could not record connection changes on the timeline; the sweep will")
