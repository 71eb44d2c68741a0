"""Signals for apps above power (guest) to react to a changed allocation."""

from django.dispatch import Signal

# session_ids=[...]: sessions whose limit or waiting state changed; sent after the commit.
allocation_changed = Signal()
