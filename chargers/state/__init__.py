"""A charger's state, batched: who it is, connected, left, booted, its connectors' status
(charger.py). Under the sessions, above the plumbing."""
