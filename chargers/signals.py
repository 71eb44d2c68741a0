"""Signals for apps above chargers (billing, guest) to react to charging sessions."""

from django.dispatch import Signal

# session_id=...; sent after the StartTransaction / StopTransaction was committed.
session_started = Signal()
session_finished = Signal()
