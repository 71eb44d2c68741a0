"""Receivers of chargers' signals: a session started or finished → recompute its site soon."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def session_changed(sender: Any = None, session_id: int | None = None, **kwargs: Any) -> None:
    # One indexed UPDATE: the site is marked, the power.recompute_due sweep (every 2 s) does the
    # work, and many starts at once are one recompute.
    from .services import mark_dirty

    if session_id is None:
        return
    try:
        mark_dirty(session_id=session_id)
    except Exception:  # never break the charger's StartTransaction / StopTransaction
        logger.exception("Marking the site of session %s for a power recompute failed", session_id)
