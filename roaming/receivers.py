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
