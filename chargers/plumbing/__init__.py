"""The hot path's plumbing, under the domain: group commit (batching.py: the Coalescer), the durable
journal while the database is away (journal.py), background tasks (background.py), channel-layer
groups (layer_groups.py), live events for browsers that watch (live.py, watching.py), once-per-charger
work after a boot (follow_ups.py, failures.py), the OCPP path's Prometheus series (ocpp_metrics.py). It
imports no chargers model and no domain module."""
