"""Signals for apps above chargers (billing, guest, roaming) to react to charging sessions and
connector status."""

import logging
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

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


_FLUSHES = "chargers.signals.batched"


def batched(
    signal_kwargs: dict[str, Any], key: str, item: Any, flush: Callable[[list], None]
) -> None:
    """Hand `item` to `flush` together with the items of every session announced in the same
    batch under the same `key` (one statement, one queued task for a restart storm's hundreds of
    stops, not one each); at once, as `[item]`, for a session announced alone. The announcer
    runs the flushes after the last receiver (`flush_batched`)."""
    batch = signal_kwargs.get("batch")
    if batch is None:
        flush([item])
        return
    flushes = batch.setdefault(_FLUSHES, {})
    if key not in flushes:
        flushes[key] = (flush, [])
    flushes[key][1].append(item)


def flush_batched(batch: dict[str, Any]) -> None:
    """Run the flushes receivers asked for in `batch` (`batched`); one that fails is logged and
    stops none of the others (the sessions are stored either way)."""
    for key, (flush, items) in batch.pop(_FLUSHES, {}).items():
        try:
            flush(items)
        except Exception:
            logger.exception("The batched announcement %s of %d sessions failed", key, len(items))


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
