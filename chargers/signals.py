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
    together (`batch`, a dict the announcer passes, chargers.sessions.services.sessions_announce)."""
    batch = signal_kwargs.get("batch")
    if batch is None:
        return ask()
    if question not in batch:
        batch[question] = ask()
    return bool(batch[question])


# connectors=[(charger_id, connector_id), ...]; to be sent after a StatusNotification's new
# connector status was committed (roaming pushes it to OCPI partners, docs/ocpi.md).
connector_status_changed = Signal()

# session_id=...; sent after a session that finished without any energy reading was committed
# (its energy is unknown: priced by time only). Support flags it (support.receivers).
session_without_energy_reading = Signal()

# changes=[(charger_id, connection_id, connected, at), ...]; sent after connects and
# disconnects were committed, so every drop is known, not only the last (reliability's port
# timeline, docs/reliability.md).
connection_changed = Signal()

# charger_id=..., transaction_id=... (ours, 1.6) or session_id=...; sent after signed meter
# values (OCMF, format SignedData) outside a start or stop were committed: the signed start
# reading of a 1.6 charger arrives in a MeterValues right after StartTransaction. Metering
# verifies them (metering.receivers); what it misses, it reads again when the session finishes.
signed_values_received = Signal()
