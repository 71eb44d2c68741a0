"""Log retention: the cleanup task keeps the retention window and deletes everything older."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.messagelog.retention import message_log_cleanup_task, message_log_prune
from chargers.models import OcppMessage
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _rows(charger, ages_days):
    now = timezone.now()
    OcppMessage.objects.bulk_create(
        [
            OcppMessage(
                charger=charger,
                timestamp=now - timedelta(days=age),
                direction="in",
                message_type=2,
                unique_id=f"u{i}",
                action="Heartbeat",
                payload={},
            )
            for i, age in enumerate(ages_days)
        ]
    )


def test_cleanup_keeps_the_retention_window():
    charger = ChargerFactory()
    _rows(charger, [0, 1, 29, 31, 45, 400])
    assert message_log_prune(retention_days=30) == 3
    kept = sorted(
        round((timezone.now() - t).total_seconds() / 86400)
        for t in OcppMessage.objects.values_list("timestamp", flat=True)
    )
    assert kept == [0, 1, 29]


def test_cleanup_works_in_batches_until_done():
    charger = ChargerFactory()
    _rows(charger, [100] * 25 + [1] * 5)
    assert message_log_prune(retention_days=90, batch_size=7) == 25
    assert OcppMessage.objects.count() == 5


def test_cleanup_can_stop_after_some_batches():
    charger = ChargerFactory()
    _rows(charger, [100] * 20)
    assert message_log_prune(retention_days=90, batch_size=5, max_batches=2) == 10
    assert OcppMessage.objects.count() == 10


def test_zero_retention_keeps_everything(settings):
    charger = ChargerFactory()
    _rows(charger, [1000, 5])
    settings.OCPP_LOG_RETENTION_DAYS = 0
    assert message_log_cleanup_task() == 0
    assert OcppMessage.objects.count() == 2


def test_task_uses_the_retention_setting(settings):
    charger = ChargerFactory()
    _rows(charger, [10, 3])
    settings.OCPP_LOG_RETENTION_DAYS = 7
    assert message_log_cleanup_task() == 1
    assert OcppMessage.objects.count() == 1


def test_cleanup_runs_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "chargers.message_log_cleanup" in tasks


def test_cleanup_reads_along_the_primary_key_and_stops_at_the_windows_edge():
    # The log is written in time order: the first batch with no row older than the window is
    # its edge, and the run ends there without reading the rest of the log.
    charger = ChargerFactory()
    _rows(charger, [100] * 3 + [1] * 10 + [100] * 2)
    assert message_log_prune(retention_days=90, batch_size=5) == 3
    # Two rows written out of time order after the edge wait for the rows before them.
    assert OcppMessage.objects.count() == 12


def test_the_fleet_wide_action_index_serves_every_action_but_the_two_commonest():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    charger = ChargerFactory()
    _rows(charger, [1] * 5)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = {}
        for action in ("BootNotification", "Heartbeat"):
            query = OcppMessage.objects.filter(action=action).order_by("-id")[:100]
            plans[action] = query.explain()
    # A rare action is found along the partial index (its condition is proved from the filter)
    assert "ocppmsg_action_rare" in plans["BootNotification"]
    # ... the commonest along the primary key, backwards.
    assert "ocppmsg_action_rare" not in plans["Heartbeat"]
