"""React to charging sessions (chargers.signals) without putting rules in receivers."""

from __future__ import annotations

import logging

from chargers.signals import session_finished, session_started

logger = logging.getLogger(__name__)


def _on_started(sender, session_id: int, **kwargs) -> None:
    from .tasks import guest_session_link_task

    try:
        guest_session_link_task.delay(session_id)
    except Exception:  # never break the charger's StartTransaction (eager mode runs inline)
        logger.exception("Linking session %s to a guest failed", session_id)


def _on_finished(sender, session_id: int, **kwargs) -> None:
    from .tasks import guest_session_finish_task

    try:
        guest_session_finish_task.delay(session_id)
    except Exception:  # the periodic sweep and the receipt page settle it later
        logger.exception("Settling guest session for session %s failed", session_id)


def connect() -> None:
    session_started.connect(_on_started, dispatch_uid="guest.session_started")
    session_finished.connect(_on_finished, dispatch_uid="guest.session_finished")
