"""Receivers of chargers' signals: a session started or finished → recompute its site soon."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def session_changed(sender: Any = None, session_id: int | None = None, **kwargs: Any) -> None:
    # One indexed UPDATE for all the sessions announced together (chargers.signals.batched): the
    # site is marked, the power.recompute_due sweep (every 2 s) does the work, and many starts at
    # once are one recompute.
    from chargers.signals import batched

    if session_id is None:
        return
    batched(kwargs, "power.mark_dirty", session_id, _mark_dirty)


def _mark_dirty(session_ids: list[int]) -> None:
    from .services import mark_dirty

    try:
        mark_dirty(session_ids=session_ids)
    except Exception:  # never break the charger's StartTransaction / StopTransaction
        logger.exception(
            "Marking the sites of sessions %s for a power recompute failed", session_ids[:10]
        )
