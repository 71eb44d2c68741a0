"""Signals for apps above chargers (billing, guest, roaming) to react to charging sessions and
connector status."""

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

# session_id=...; sent after the StartTransaction / StopTransaction was committed.
session_started = Signal()
session_finished = Signal()


def asked_once(signal_kwargs: dict[str, Any], question: str, ask: Callable[[], bool]) -> bool:
    """The answer to a question about the whole platform that a receiver asks on every session
    (is any guest starting, any reservation active): asked once for all the sessions announced
    together (`batch`, a dict the announcer passes, chargers.services.sessions_announce)."""
    batch = signal_kwargs.get("batch")
    if batch is None:
        return ask()
    if question not in batch:
        batch[question] = ask()
    return bool(batch[question])


# session=...; asked by the session page (live): billing answers {"total", "currency", "final"}.
session_price_asked = Signal()

# connectors=[(charger_id, connector_id), ...]; to be sent after a StatusNotification's new
# connector status was committed (roaming pushes it to OCPI partners, docs/ocpi.md).
connector_status_changed = Signal()
