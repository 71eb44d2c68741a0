"""Sessions opened in batches (chargers.sessions.opening.session_start): starts that arrive together are
inserted together on PostgreSQL, with their decisions; what the batch cannot take (a connector
with a running session, a start the database refuses) ends as `opening.open_orm` ends it."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from authorization.decisions import Context, Decision, Status
from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession
from chargers.sessions import opening, rules, services
from tests.factories import ChargerFactory, TokenFactory

pytestmark = pytest.mark.django_db(transaction=True)

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def announced(announced_started):
    return announced_started


def _request(charger, *, connector_id=1, tx, token=None, started_at=T0, meter=1000, unique_id="u"):
    decision = Decision(Status.ACCEPTED, "accepted", 9, "Accepted: a test card.")
    record = dict(
        decision=decision,
        uid="CARD-1",
        token_id=token.pk if token else None,
        organization_id=charger.property.organization_id,
        station_id=charger.station_id,
        connector_id=connector_id,
        context=Context.START_TRANSACTION,
        ocpp_unique_id=unique_id,
    )
    return opening.OpenRequest(
        charger_id=charger.pk,
        connector_id=connector_id,
        id_tag="CARD-1",
        meter_start=meter,
        started_at=started_at,
        transaction_id=tx,
        id_tag_status="Accepted",
        reservation_id=None,
        token=token,
        decision_record=record,
    )


async def test_starts_waiting_at_once_open_their_own_sessions_together(announced):
    chargers = await sync_to_async(lambda: [ChargerFactory() for _ in range(30)])()
    token = await sync_to_async(TokenFactory)(uid="CARD-1")
    before = opening.open_batches()
    sessions = await asyncio.gather(
        *(
            opening.session_start(
                _request(
                    c,
                    tx=700_000 + i,
                    token=token if i % 2 else None,
                    meter=i,
                    unique_id=f"start-{i}",
                )
            )
            for i, c in enumerate(chargers)
        )
    )
    if connection.vendor == "postgresql":
        assert opening.open_batches() - before < len(chargers)
    stored = await sync_to_async(
        lambda: {s.transaction_id: s for s in ChargingSession.objects.all()}
    )()
    for i, (charger, session) in enumerate(zip(chargers, sessions, strict=True)):
        row = stored[700_000 + i]
        assert session.pk == row.pk and session.transaction_id == row.transaction_id
        assert (row.charger_id, row.connector_id, row.meter_start_wh, row.status) == (
            charger.pk,
            1,
            i,
            "active",
        )
        assert row.token_id == (token.pk if i % 2 else None)
        assert row.received_start_at is not None and row.started_at == T0
    decisions = await sync_to_async(
        lambda: {d.ocpp_unique_id: d for d in AuthorizationDecision.objects.all()}
    )()
    assert set(decisions) == {f"start-{i}" for i in range(30)}
    assert decisions["start-3"].station_id == chargers[3].station_id
    assert decisions["start-3"].token_id == token.pk and decisions["start-3"].created_at is not None
    assert sorted(announced) == sorted(s.pk for s in sessions)


async def test_a_start_on_a_busy_connector_closes_what_it_supersedes(announced):
    charger = await sync_to_async(ChargerFactory)()
    older = await sync_to_async(opening.open_orm)(
        opening.OpenRequest(
            charger_id=charger.pk,
            connector_id=1,
            id_tag="OLD",
            meter_start=0,
            started_at=T0 - timedelta(hours=2),
        )
    )
    announced.clear()
    results = await asyncio.gather(
        opening.session_start(_request(charger, connector_id=1, tx=800_001)),
        # Two starts of connector 2 in one batch: the earlier one is superseded by the later.
        opening.session_start(_request(charger, connector_id=2, tx=800_002)),
        opening.session_start(
            _request(charger, connector_id=2, tx=800_003, started_at=T0 + timedelta(minutes=5))
        ),
        opening.session_start(_request(charger, connector_id=3, tx=800_004)),
    )
    assert [r.transaction_id for r in results] == [800_001, 800_002, 800_003, 800_004]
    stored = await sync_to_async(
        lambda: {s.transaction_id: s for s in ChargingSession.objects.all()}
    )()
    assert (stored[older.transaction_id].status, stored[older.transaction_id].stop_reason) == (
        "completed",
        rules.SUPERSEDED,
    )
    assert (stored[800_002].status, stored[800_002].stop_reason) == (
        "completed",
        rules.SUPERSEDED,
    )
    assert [stored[tx].status for tx in (800_001, 800_003, 800_004)] == ["active"] * 3
    assert sorted(announced) == sorted(r.pk for r in results)


async def test_a_batch_the_database_refuses_still_opens_every_start(caplog):
    chargers = await sync_to_async(lambda: [ChargerFactory() for _ in range(5)])()
    # Charger 0 resends a start whose first copy is stored already (a race the facts read could
    # not see); charger 1's drawn transaction id is taken meanwhile.
    first = await sync_to_async(opening.open_orm)(
        opening.OpenRequest(
            charger_id=chargers[0].pk,
            connector_id=1,
            id_tag="CARD-1",
            meter_start=1000,
            started_at=T0,
            transaction_id=900_000,
        )
    )
    await sync_to_async(opening.open_orm)(
        opening.OpenRequest(
            charger_id=chargers[4].pk,
            connector_id=9,
            id_tag="X",
            meter_start=0,
            started_at=T0,
            transaction_id=900_001,
        )
    )
    results = await asyncio.gather(
        *(opening.session_start(_request(c, tx=900_000 + i)) for i, c in enumerate(chargers[:4]))
    )
    assert results[0].pk == first.pk  # the same session, the same answer
    assert results[1].transaction_id not in (900_000, 900_001)  # drawn again
    assert [r.transaction_id for r in results[2:]] == [900_002, 900_003]
    count = await sync_to_async(ChargingSession.objects.count)()
    assert count == 2 + 3


def test_sessions_announced_together_ask_the_platform_wide_questions_once():
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    from chargers.models import ConnectorReservation
    from guest.models import GuestSession

    charger = ChargerFactory()
    ids = [
        opening.open_orm(
            opening.OpenRequest(
                charger_id=charger.pk, connector_id=n, id_tag="CARD", meter_start=0, started_at=T0
            )
        ).pk
        for n in range(1, 11)
    ]
    guests, reservations = GuestSession._meta.db_table, ConnectorReservation._meta.db_table
    for event in ("started", "finished"):
        with CaptureQueriesContext(conn) as queries:
            services.sessions_announce(event, ids)
        asked = [
            q["sql"]
            for q in queries.captured_queries
            if guests in q["sql"] or reservations in q["sql"]
        ]
        assert len(asked) == (2 if event == "started" else 1), asked  # not once per session
