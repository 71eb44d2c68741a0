"""A charger's drop (or return) at one instant is on its timeline once, however many writers saw
it: the announcement (`links_record`) and the sync that catches lost announcements (`links_sync`)
raced, each read the last link before the other wrote, and both wrote the drop (seen in CI: two
offline links at the same microsecond)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reliability.models import PortEvent
from reliability.services import timeline
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def test_a_drop_announced_and_synced_at_once_is_recorded_once(monkeypatch):
    t0 = timezone.now() - timedelta(minutes=5)
    t1 = t0 + timedelta(minutes=1)
    charger = ChargerFactory(connection_id="", connected_at=t0, disconnected_at=t1)
    timeline.links_record([(charger.pk, "c1", True, t0)])
    online = PortEvent.objects.get(charger=charger, kind="online")
    real_last_link = timeline._last_link
    # The sync read the last link before the announcement of the drop was written.
    stale = {"read": False}

    def last_link_read_before_the_drop(charger_id):
        if not stale["read"]:
            stale["read"] = True
            return online
        return real_last_link(charger_id)

    timeline.links_record([(charger.pk, "c1", False, t1)])
    monkeypatch.setattr(timeline, "_last_link", last_link_read_before_the_drop)
    timeline.links_sync([charger], now=t1 + timedelta(seconds=30))
    drops = PortEvent.objects.filter(charger=charger, kind="offline")
    assert [e.at for e in drops] == [t1]
    assert PortEvent.objects.filter(charger=charger, kind="online").count() == 1


def test_a_batch_of_announcements_reads_and_writes_as_one_by_one_would():
    """A restart storm announces thousands of connects and drops together: the batch is read
    and written at once, with the same outcome as each announcement alone."""
    now = timezone.now()
    replaced, dropped, back = ChargerFactory(), ChargerFactory(), ChargerFactory()
    timeline.links_record([(back.pk, "old", True, now - timedelta(minutes=10))])
    timeline.links_record(
        [
            # Given out of order: read in time order.
            (replaced.pk, "a", False, now - timedelta(seconds=10)),  # replaced: not a drop
            (replaced.pk, "a", True, now - timedelta(seconds=30)),
            (replaced.pk, "b", True, now - timedelta(seconds=20)),
            (dropped.pk, "c", True, now - timedelta(seconds=20)),
            (dropped.pk, "c", False, now - timedelta(seconds=5)),
            (dropped.pk, "c", False, now - timedelta(seconds=5)),  # announced twice
            (back.pk, "old", False, now - timedelta(seconds=8)),  # stored before the batch
            (back.pk, "new", True, now - timedelta(seconds=3)),
        ]
    )

    def links(charger):
        return [
            (e.kind, e.source)
            for e in PortEvent.objects.filter(
                charger=charger, kind__in=["online", "offline"]
            ).order_by("at")
        ]

    assert links(replaced) == [("online", "on:a"), ("online", "on:b")]
    assert links(dropped) == [("online", "on:c"), ("offline", "off:c")]
    assert links(back) == [("online", "on:old"), ("offline", "off:old"), ("online", "on:new")]
