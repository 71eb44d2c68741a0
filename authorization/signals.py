"""Signals other apps listen to (the only use of signals: inverting a dependency)."""

from django.dispatch import Signal

# Sent with token_group_ids=[...] after a local token group (or a token in it) changed,
# so chargers restricted to that group can get their local authorization list again.
token_groups_changed = Signal()
