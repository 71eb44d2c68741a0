"""OCPP message log retention (a beat task).

The log gets every frame in both directions (a charger metering every 10 s writes
~17,000 rows a day), so it is pruned to OCPP_LOG_RETENTION_DAYS by a beat task that
deletes in small batches along the primary key: no long lock, no table rewrite.
See docs/performance.md ("Log retention").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from chargers.models import OcppMessage

CLEANUP_BATCH = 10_000


def message_log_prune(
    *,
    retention_days: int | None = None,
    now: datetime | None = None,
    batch_size: int = CLEANUP_BATCH,
    max_batches: int | None = None,
) -> int:
    """Delete log rows older than the retention window; return how many went.

    retention_days <= 0 keeps everything. The log is read along its primary key, oldest
    first, `batch_size` rows at a time, and each batch's rows older than the window are deleted
    by primary key (one short DELETE); the first batch with none ends the run. Rows are
    written in time order, so that batch is the window's edge; the log keeps no timestamp
    index for this (every index costs each logged frame, docs/performance.md).
    """
    days = settings.OCPP_LOG_RETENTION_DAYS if retention_days is None else retention_days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = batches = 0
    after = 0
    while max_batches is None or batches < max_batches:
        rows = list(
            OcppMessage.objects.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "timestamp")[:batch_size]
        )
        old = [pk for pk, at in rows if at < cutoff]
        if not old:
            break
        count, _ = OcppMessage.objects.filter(id__in=old).delete()
        deleted += count
        batches += 1
        after = rows[-1][0]
    return deleted


@shared_task(name="chargers.message_log_cleanup")
def message_log_cleanup_task() -> int:
    return message_log_prune()
