"""Celery tasks of stays: take ids, call one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="stays.calendar_feed_sync")
def calendar_feed_sync_task(feed_id: int) -> bool:
    from .models import CalendarFeed

    if not CalendarFeed.objects.filter(pk=feed_id).exists():
        return False  # removed by its host after the task was queued: nothing to pull
    return services.calendar_feed_sync(feed_id=feed_id).ok


@shared_task(name="stays.calendar_feeds_sync_due")
def calendar_feeds_sync_due_task() -> int:
    """Pull every feed not pulled within STAYS_CALENDAR_SYNC_SECONDS (the beat runs this)."""
    every = timedelta(seconds=getattr(settings, "STAYS_CALENDAR_SYNC_SECONDS", 900))
    due = services.calendar_feeds_due(every=every - timedelta(seconds=30))
    # The beat runs every minute even while the queue is backed up: a pull queued once is not
    # queued again each minute (calendar_feeds_due leaves it out for an interval).
    services.calendar_feeds_queued(due)
    for feed_id in due:
        calendar_feed_sync_task.delay(feed_id)
    return len(due)


@shared_task(name="stays.pms_sync")
def pms_sync_task(integration_id: int) -> bool:
    from .models import PmsIntegration
    from .services.pms import pms_sync

    if not PmsIntegration.objects.filter(pk=integration_id).exists():
        return False  # disconnected after the task was queued: nothing to pull
    return pms_sync(integration_id=integration_id).ok


@shared_task(name="stays.pms_sync_due")
def pms_sync_due_task() -> int:
    """Pull every PMS integration not pulled within STAYS_PMS_SYNC_SECONDS and not backing off."""
    from .services.pms import pms_integrations_due, pms_integrations_queued

    every = timedelta(seconds=getattr(settings, "STAYS_PMS_SYNC_SECONDS", 900))
    due = pms_integrations_due(every=every - timedelta(seconds=30))
    pms_integrations_queued(due)  # not queued again each minute while it waits
    for integration_id in due:
        pms_sync_task.delay(integration_id)
    return len(due)


@shared_task(name="stays.access_codes_send")
def access_codes_send_task() -> int:
    """Mail the guests' access codes a failed send left unsent (the beat runs this)."""
    return services.access_codes_unsent_send()
