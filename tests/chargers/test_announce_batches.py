"""Sessions announced together (a restart storm's stops, chargers.sessions.services.
sessions_announce) reach power, metering and reliability as one batch each: one UPDATE marks
every site, one task records every session (issue 48 item 3), and a flush that fails stops none
of the others."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chargers import signals
from chargers.models import ChargingSession
from chargers.sessions.services import sessions_announce
from power.models import SiteBudget
from reliability.models import PortEvent
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def _finished(charger, transaction_id: int) -> ChargingSession:
    now = timezone.now()
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=transaction_id,
        id_tag="CARD",
        started_at=now - timezone.timedelta(minutes=30),
        stopped_at=now,
        meter_start_wh=0,
        meter_stop_wh=1000,
        status="completed",
    )


def test_a_batch_of_stops_marks_every_site_in_one_update_and_records_every_session():
    sites = [PropertyFactory(), PropertyFactory()]
    for site in sites:
        SiteBudget.objects.create(property=site, limit_a=Decimal(32), phases=3)
    chargers = [ChargerFactory(property=sites[0]), ChargerFactory(property=sites[0])]
    chargers.append(ChargerFactory(property=sites[1]))
    sessions = [_finished(c, 500 + n) for n, c in enumerate(chargers)]

    with CaptureQueriesContext(connection) as queries:
        sessions_announce("finished", [s.pk for s in sessions])

    marks = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "power_sitebudget"')]
    assert len(marks) == 1  # one statement for the three sessions, not one each
    assert SiteBudget.objects.filter(dirty_at__isnull=False).count() == 2
    recorded = PortEvent.objects.filter(kind=PortEvent.Kind.SESSION)
    assert sorted(recorded.values_list("source", flat=True)) == sorted(
        f"session:{s.pk}" for s in sessions
    )


def test_a_flush_that_fails_stops_none_of_the_others(caplog):
    ran: list[list[int]] = []

    def broken(sender, session_id, **kwargs):
        signals.batched(kwargs, "test.broken", session_id, lambda ids: 1 / 0)

    def counted(sender, session_id, **kwargs):
        signals.batched(kwargs, "test.counted", session_id, ran.append)

    signals.session_finished.connect(broken, dispatch_uid="test-broken-flush")
    signals.session_finished.connect(counted, dispatch_uid="test-counted-flush")
    try:
        charger = ChargerFactory()
        sessions = [_finished(charger, 900), _finished(charger, 901)]
        sessions_announce("finished", [s.pk for s in sessions])
        signals.session_finished.disconnect(dispatch_uid="test-broken-flush")
        # Alone (the ORM path announces one session at a time): flushed at once.
        signals.session_finished.send(sender=ChargingSession, session_id=sessions[0].pk)
    finally:
        signals.session_finished.disconnect(dispatch_uid="test-broken-flush")
        signals.session_finished.disconnect(dispatch_uid="test-counted-flush")
    assert ran == [[sessions[0].pk, sessions[1].pk], [sessions[0].pk]]
    assert "test.broken" in caplog.text
