"""Celery tasks of site power: take ids, call one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="power.recompute")
def recompute_task(property_id: int) -> int:
    return len(services.recompute(property_id))


@shared_task(name="power.recompute_due")
def recompute_due_task() -> int:
    """Recompute the sites marked dirty, and those with sessions every POWER_REFRESH_SECONDS."""
    return services.recompute_due(refresh=timedelta(seconds=settings.POWER_REFRESH_SECONDS))


@shared_task(name="power.enforce")
def enforce_task() -> int:
    """One enforcement pass over every site with a budget (power.enforcement.enforce_all)."""
    from . import enforcement

    return enforcement.enforce_all()
