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
