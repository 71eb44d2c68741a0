"""TransactionEvent Started in batches (chargers.sessions.transactions.started_batched): Started events that arrive together
open their sessions together on PostgreSQL, with their decisions, events and readings, and the
sessions are the ones the full path (services_v201.transaction_event_record) opens. What the batch
cannot take (a resent Started, a running session on the connector, two starts of one connector,
a batch the database refuses) ends as the full path ends it."""

import asyncio
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from authorization.decisions import Context, Decision, Status
from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, MeterValue, TransactionEvent
from chargers.sessions import transactions as services_v201
from chargers.sessions import transactions as starts_v201
from tests.factories import ChargerFactory, TokenFactory

from .conftest import tx_event

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVED = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
# What a session is, whichever path opened it (not its id, its charger or our transaction id).
FIELDS = (
    "connector_id",
    "id_tag",
    "token_id",
    "id_tag_status",
    "started_at",
    "meter_start_wh",
    "status",
    "ocpp_transaction_id",
    "remote_start_id",
    "reservation_id",
    "stopped_at",
    "meter_stop_wh",
    "stop_reason",
)


@pytest.fixture
def announced(announced_started):
    return announced_started


def _request(charger, payload, *, tx, token=None, unique_id="u"):
    record = None
    if "idToken" in payload:
        record = dict(
            decision=Decision(Status.ACCEPTED, "accepted", 9, "Accepted: a test card."),
            uid=payload["idToken"]["idToken"],
            token_id=token.pk if token else None,
            organization_id=charger.property.organization_id,
            station_id=charger.station_id,
            connector_id=payload.get("evse", {}).get("id"),
            context=Context.START_TRANSACTION,
            ocpp_unique_id=unique_id,
        )
    return starts_v201.StartedRequest(
        charger_id=charger.pk,
        event=services_v201.read_transaction_event(payload, RECEIVED),
        payload=payload,
        storable=payload,
        received_at=RECEIVED,
        transaction_id=tx,
        id_tag_status="Accepted" if record else None,
        token_id=token.pk if token else None,
        decision_record=record,
    )


def _started(i: int, tx_id: str = "", **kwargs) -> dict:
    """Started events that differ: with or without a card, a reading, a remote start id, an EVSE."""
    payload = tx_event(
        "Started",
        0,
        tx_id or f"TX-{i}",
        timestamp=f"2026-11-20T10:{i:02d}:00Z",
        id_token="CARD-1" if i % 2 else None,
        wh=1000 + i if i % 3 else None,
        evse=1 + i % 2 if i % 5 else None,
        **({"remoteStartId": i} if i % 4 == 0 else {}),
        **kwargs,
    )
    if i % 7 == 0:  # two readings, the register in the second
        payload["meterValue"] = [
            {
                "timestamp": "2026-11-20T09:59:00Z",
                "sampledValue": [
                    {"value": 5, "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}}
                ],
            },
            {
                "timestamp": "2026-11-20T10:00:00Z",
                "sampledValue": [{"value": 2.5, "unitOfMeasure": {"unit": "kWh"}}],
            },
        ]
    return payload


def _row(session: ChargingSession) -> tuple:
    return tuple(getattr(session, name) for name in FIELDS)


async def test_started_events_waiting_at_once_open_the_sessions_the_full_path_opens(announced):
    chargers = await sync_to_async(lambda: [ChargerFactory() for _ in range(30)])()
    twins = await sync_to_async(lambda: [ChargerFactory(property=c.property) for c in chargers])()
    token = await sync_to_async(TokenFactory)(uid="CARD-1")
    before = starts_v201.started_batches()
    outcomes = await asyncio.gather(
        *(
            starts_v201.started(
                _request(
                    c,
                    _started(i),
                    tx=800_000 + i,
                    token=token if i % 2 else None,
                    unique_id=f"started-{i}",
                )
            )
            for i, c in enumerate(chargers)
        )
    )
    if connection.vendor == "postgresql":
        assert starts_v201.started_batches() - before < len(chargers)
    # The same events through the full path, on twin chargers.
    for i, twin in enumerate(twins):
        await sync_to_async(services_v201.transaction_event_record)(
            charger_id=twin.pk,
            payload=_started(i),
            received_at=RECEIVED,
            id_tag_status="Accepted" if i % 2 else None,
            transaction_id=900_000 + i,
            token_id=token.pk if i % 2 else None,
            token_known=True,
        )
    for i, (charger, twin, outcome) in enumerate(zip(chargers, twins, outcomes, strict=True)):
        batched = await ChargingSession.objects.aget(charger=charger)
        full = await ChargingSession.objects.aget(charger=twin)
        assert _row(batched) == _row(full), i
        assert (outcome.session.pk, outcome.started, outcome.duplicate, outcome.ended) == (
            batched.pk,
            True,
            False,
            False,
        )
        assert batched.transaction_id == 800_000 + i and batched.received_start_at is not None
        # The event and its readings are stored as the full path stores them.
        events = [
            (
                e.seq_no,
                e.event_type,
                e.trigger_reason,
                e.timestamp,
                e.offline,
                e.payload,
                e.received_at,
            )
            async for e in TransactionEvent.objects.filter(session=batched)
        ]
        assert events == [
            (
                e.seq_no,
                e.event_type,
                e.trigger_reason,
                e.timestamp,
                e.offline,
                e.payload,
                e.received_at,
            )
            async for e in TransactionEvent.objects.filter(session=full)
        ]
        assert len(events) == 1 and events[0][5]["transactionInfo"]["transactionId"] == f"TX-{i}"
        meters = [
            (m.connector_id, m.timestamp, m.measurand, m.unit, m.value)
            async for m in MeterValue.objects.filter(session=batched).order_by(
                "timestamp", "measurand"
            )
        ]
        assert meters == [
            (m.connector_id, m.timestamp, m.measurand, m.unit, m.value)
            async for m in MeterValue.objects.filter(session=full).order_by(
                "timestamp", "measurand"
            )
        ]
        # Steady from its first event when it carries an energy reading (the next Updated appends).
        full_outcome_since = services_v201.steady_from_its_first_event(
            full, services_v201.read_transaction_event(_started(i), RECEIVED)
        )
        assert outcome.steady_since == full_outcome_since
    decisions = {d.ocpp_unique_id: d async for d in AuthorizationDecision.objects.all()}
    assert set(decisions) == {f"started-{i}" for i in range(30) if i % 2}
    assert (
        decisions["started-3"].station_id == chargers[3].station_id
        and decisions["started-3"].token_id == token.pk
    )
    assert set(announced) >= {o.session.pk for o in outcomes}


async def test_what_the_batch_cannot_take_ends_as_the_full_path_ends_it(announced, monkeypatch):
    """In one batch: a resent Started (its session exists), a Started on a connector whose older
    session still runs (superseded), and two Started of one connector (the later supersedes).
    A plain Started beside them is still opened by the batch."""
    resent_at, busy_at, twice_at, plain_at = await sync_to_async(
        lambda: [ChargerFactory() for _ in range(4)]
    )()
    full_path: list[str] = []
    record = services_v201.transaction_event_record

    def recording(**kwargs):
        full_path.append(kwargs["payload"]["transactionInfo"]["transactionId"])
        return record(**kwargs)

    first = tx_event("Started", 0, "TX-R", timestamp="2026-11-20T10:00:00Z", wh=100)
    resent = await starts_v201.started(_request(resent_at, first, tx=810_001))
    # Its connector free again (the session was closed meanwhile): only its transactionId is known.
    await ChargingSession.objects.filter(pk=resent.session.pk).aupdate(status="completed")
    older = await starts_v201.started(
        _request(
            busy_at,
            tx_event("Started", 0, "TX-OLD", timestamp="2026-11-20T09:00:00Z", wh=100),
            tx=810_002,
        )
    )
    monkeypatch.setattr(services_v201, "transaction_event_record", recording)
    outcomes = await asyncio.gather(
        starts_v201.started(_request(plain_at, tx_event("Started", 0, "TX-P", wh=1), tx=810_007)),
        starts_v201.started(_request(resent_at, first, tx=810_003)),
        starts_v201.started(
            _request(
                busy_at,
                tx_event("Started", 0, "TX-NEW", timestamp="2026-11-20T10:00:00Z", wh=900),
                tx=810_004,
            )
        ),
        starts_v201.started(
            _request(
                twice_at,
                tx_event("Started", 0, "TX-A", timestamp="2026-11-20T10:00:00Z", wh=100),
                tx=810_005,
            )
        ),
        starts_v201.started(
            _request(
                twice_at,
                tx_event("Started", 0, "TX-B", timestamp="2026-11-20T10:05:00Z", wh=200),
                tx=810_006,
            )
        ),
    )
    plain = outcomes.pop(0)
    assert (await ChargingSession.objects.aget(pk=plain.session.pk)).status == "active"
    if connection.vendor == "postgresql":
        assert full_path == ["TX-R", "TX-NEW", "TX-B"]  # the batch was not refused for them
    assert outcomes[0].duplicate and outcomes[0].session.pk == resent.session.pk
    assert await ChargingSession.objects.filter(charger=resent_at).acount() == 1
    assert await TransactionEvent.objects.filter(charger=resent_at).acount() == 1
    superseded = await ChargingSession.objects.aget(pk=older.session.pk)
    assert (superseded.status, superseded.stop_reason) == ("completed", "Superseded")
    assert (await ChargingSession.objects.aget(pk=outcomes[1].session.pk)).status == "active"
    a, b = [
        await ChargingSession.objects.aget(charger=twice_at, ocpp_transaction_id=t)
        for t in ("TX-A", "TX-B")
    ]
    assert (a.status, a.stop_reason, b.status) == ("completed", "Superseded", "active")
    assert {outcomes[1].session.pk, a.pk, b.pk} <= set(announced)


async def test_a_batch_the_database_refuses_opens_every_start_through_the_full_path(announced):
    """Our transaction id already taken (ids are drawn at random): the batch rolls back, and each
    start is opened by the full path, which draws another id for the one that collided."""
    chargers = await sync_to_async(lambda: [ChargerFactory() for _ in range(3)])()
    taken = await starts_v201.started(
        _request(chargers[0], tx_event("Started", 0, "TX-0", wh=1), tx=820_000)
    )
    outcomes = await asyncio.gather(
        *(
            starts_v201.started(
                _request(c, tx_event("Started", 0, f"TX-{i}", wh=1), tx=820_000 + i)
            )
            for i, c in enumerate(chargers[1:], start=0)
        )
    )
    assert outcomes[0].session.transaction_id not in (820_000, taken.session.transaction_id)
    assert outcomes[1].session.transaction_id == 820_001
    for outcome in outcomes:
        stored = await ChargingSession.objects.aget(pk=outcome.session.pk)
        assert (
            stored.status == "active"
            and await TransactionEvent.objects.filter(session=stored).acount() == 1
        )
    assert {o.session.pk for o in outcomes} <= set(announced)
