"""Signal receivers: no rules here, only a hand-off to roaming tasks.

A failure here must never cost the charger its answer (tasks run in-process without a
broker): it is logged, and the periodic sweeps push what was missed.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def connector_status_changed(sender: Any, connectors: list[tuple[int, int]], **kwargs: Any) -> None:
    """Connectors have a new status (committed): push their EVSEs' status to partners."""
    from .tasks import evse_status_push_task

    try:
        evse_status_push_task.delay([[charger_id, connector_id] for charger_id, connector_id in connectors])
    except Exception:
        logger.exception("Could not push connector statuses to roaming partners; the sweep will")


def session_started(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session started (committed): push it if it is a roaming partner's customer's."""
    from .tasks import session_started_task

    try:
        session_started_task.delay(session_id)
    except Exception:
        logger.exception("Could not push session %s to roaming partners; the sweep will", session_id)


def session_finished(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session ended (committed): push its final state and its CDR."""
    from .tasks import session_finished_task

    try:
        session_finished_task.delay(session_id)
    except Exception:
        logger.exception("Could not send the CDR of session %s; the sweep will", session_id)
