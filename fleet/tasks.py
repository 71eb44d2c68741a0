"""Celery tasks of fleet: take ids, call one service (docs/firmware.md)."""

from __future__ import annotations

from celery import shared_task

from .baselines import dispatch as baseline_dispatch
from .campaigns import dispatch


@shared_task(name="fleet.campaigns_advance")
def campaigns_advance_task() -> dict[str, int]:
    """Observe every campaign's sent updates, halt or go on, send the next chargers theirs."""
    return dispatch.campaigns_advance()


@shared_task(name="fleet.baselines_apply")
def baselines_apply_task() -> dict[str, int]:
    """Apply the configuration baselines that are due (a boot, or asked on demand)."""
    return baseline_dispatch.baselines_apply()
