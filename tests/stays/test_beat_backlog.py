"""The beat asks for due calendar and PMS pulls every minute, whatever the workers are doing. When
the queue is backed up (workers busy, or a pull slower than a minute), a pull already queued is
not queued again each minute: one queued pull per feed and per integration, and one queued but
lost (a worker killed, the broker restarted) is queued again once its interval has passed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from stays import tasks
from stays.models import CalendarFeed, PmsIntegration
from stays.services.pms import integration_credentials_set
from tests.factories import PropertyFactory


@pytest.fixture
def queued(monkeypatch):
    """The pulls queued, not run (the workers are busy)."""
    calendar: list[int] = []
    pms: list[int] = []
    monkeypatch.setattr(tasks.calendar_feed_sync_task, "delay", calendar.append)
    monkeypatch.setattr(tasks.pms_sync_task, "delay", pms.append)
    return calendar, pms


@pytest.mark.django_db
def test_a_pull_still_queued_is_not_queued_again_by_the_next_rounds(queued, settings):
    settings.STAYS_CALENDAR_SYNC_SECONDS = settings.STAYS_PMS_SYNC_SECONDS = 900
    calendar, pms = queued
    prop = PropertyFactory()
    feeds = [
        CalendarFeed.objects.create(property=prop, name=f"F{n}", url=f"https://c.example/{n}.ics")
        for n in range(3)
    ]
    integration = PmsIntegration.objects.create(organization=prop.organization, vendor="guesty")
    integration_credentials_set(
        integration=integration, credentials={"client_id": "c", "client_secret": "s"}
    )
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(10):  # ten minutes of a backed-up queue: the beat asks every minute
            tasks.calendar_feeds_sync_due_task()
            tasks.pms_sync_due_task()
            traveller.shift(timedelta(minutes=1))

        # Before: every round queued every feed and the integration again (30 and 10 pulls of
        # the same 3 feeds and 1 integration), a backlog that grew by itself.
        assert sorted(calendar) == sorted(f.pk for f in feeds)
        assert pms == [integration.pk]

        # Never run (lost with a worker): queued again once the interval has passed.
        traveller.shift(timedelta(minutes=6))
        tasks.calendar_feeds_sync_due_task()
        tasks.pms_sync_due_task()
        assert len(calendar) == 6 and pms == [integration.pk] * 2
