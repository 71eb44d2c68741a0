"""Signals for apps above chargers (billing, guest, roaming) to react to charging sessions and
connector status."""

from django.dispatch import Signal

# session_id=...; sent after the StartTransaction / StopTransaction was committed.
session_started = Signal()
session_finished = Signal()

# session=...; asked by the session page (live): billing answers {"total", "currency", "final"}.
session_price_asked = Signal()

# connectors=[(charger_id, connector_id), ...]; to be sent after a StatusNotification's new
# connector status was committed (roaming pushes it to OCPI partners, docs/ocpi.md).
connector_status_changed = Signal()
