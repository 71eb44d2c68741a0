"""The stop batch takes one stop per transaction (issue 33 item 15). Two stops of the same
transaction waiting together (a charger that resent its StopTransaction, with other values)
must end as `closing.close_orm` ends them one after the other: the first is the stop, the
second a repeat that changes nothing. In one `UPDATE ... FROM unnest(...)` both rows would join
the session, and PostgreSQL uses one of them, "not readily predictable" which: with a nested
loop the first, with a hash join (chosen on bigger batches or other statistics) the last. The
batch leaves the second to the one-by-one path, so the plan cannot matter; this test makes the
planner hash-join to show it."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from chargers.models import ChargingSession, MeterValue
from chargers.ocpp.tolerant import MeterReading, Sample
from chargers.sessions import closing, opening
from tests.factories import ChargerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the batched stop is PostgreSQL's path"
    ),
]

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def _request(session, meter_stop, reason, reading_wh):
    return closing.StopRequest(
        charger_id=session.charger_id,
        transaction_id=session.transaction_id,
        meter_stop=meter_stop,
        stopped_at=T0 + timedelta(minutes=30),
        reason=reason,
        readings=[MeterReading(T0 + timedelta(minutes=29), [Sample(reading_wh, unit="Wh")])],
    )


@pytest.fixture
async def hash_joins():
    """The stop batch's connection plans its UPDATE as a hash join (nested loops and merge
    joins off), for this test only."""
    async with closing._pg.use() as conn:
        await conn.execute("SET enable_nestloop = off")
        await conn.execute("SET enable_mergejoin = off")
    yield
    closing._pg.close()  # the next test opens a connection with the defaults


async def test_the_first_of_two_stops_of_one_transaction_in_a_batch_wins(hash_joins):
    charger = await sync_to_async(ChargerFactory)()
    sessions = await sync_to_async(
        lambda: [
            opening.open_orm(
                opening.OpenRequest(
                    charger_id=charger.pk,
                    connector_id=connector,
                    id_tag="CARD",
                    meter_start=100,
                    started_at=T0,
                )
            )
            for connector in (1, 2, 3)
        ]
    )()
    twice = sessions[1]
    results = await closing.close_batched(
        [
            _request(sessions[0], 500, "Local", "450"),
            _request(twice, 700, "Remote", "650"),
            _request(twice, 999, "PowerLoss", "990"),  # the same stop again, other values
            _request(sessions[2], 800, "EVDisconnected", "750"),
        ]
    )
    assert [r.pk for r in results] == [sessions[0].pk, twice.pk, twice.pk, sessions[2].pk]
    stored = await ChargingSession.objects.aget(pk=twice.pk)
    assert (stored.meter_stop_wh, stored.stop_reason) == (700, "Remote")
    readings = [
        v
        async for v in MeterValue.objects.filter(session=twice).values_list("raw_value", flat=True)
    ]
    assert readings == ["650"]  # the repeat's readings are not stored either
