"""Issue 46 item 1: a closed session stays as its Ended left it. "After" is by seqNo, not by
arrival: an Updated numbered after the Ended is stored and logged, recorded on the session as a
late event, and never changes its stop, energy or price; a queued Updated numbered before the
Ended still counts when it arrives after it (conformance case E_31)."""

from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chargers.models import ChargingSession, MeterValue, OcppMessage, TransactionEvent
from chargers.sessions import v201_transactions as tx
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0, T1, T2, T3 = (
    "2026-11-20T10:00:00Z",
    "2026-11-20T10:15:00Z",
    "2026-11-20T10:30:00Z",
    "2026-11-20T10:45:00Z",
)


async def _ended_at_2000(client) -> ChargingSession:
    await client.result(
        "TransactionEvent",
        tx_event(
            "Started", 0, timestamp=T0, id_token="04A1B2C3", wh=0, context="Transaction.Begin"
        ),
    )
    await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            2,
            timestamp=T2,
            wh=2000,
            context="Transaction.End",
            stopped_reason="EVDisconnected",
        ),
    )
    return await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")


def _page(user, path: str) -> str:
    portal = Client()
    portal.force_login(user)
    return portal.get(path).content.decode()


async def test_an_updated_numbered_after_the_ended_leaves_the_session_as_ended_set_it(
    charger, token, host
):
    client = await connect201()
    session = await _ended_at_2000(client)
    assert (session.meter_stop_wh, session.energy_wh, session.late_events) == (2000, 2000, 0)
    finished_at = session.received_stop_at
    answer = await client.result(
        "TransactionEvent",
        tx_event("Updated", 3, timestamp=T3, trigger="MeterValuePeriodic", wh=2600),
    )
    assert answer == {}  # never refused
    await session.arefresh_from_db()
    assert session.status == "completed"
    assert (session.meter_stop_wh, session.energy_wh) == (2000, 2000)
    assert session.stopped_at == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert session.stop_reason == "EVDisconnected"
    assert session.received_stop_at == finished_at  # not finished again: not priced again
    # Stored, logged and recorded on the session; its reading is not one of the session's.
    assert session.late_events == 1 and session.late_event_at is not None
    assert await TransactionEvent.objects.filter(session=session, seq_no=3).aexists()
    assert (
        await OcppMessage.objects.filter(charger=charger, action="TransactionEvent").acount() >= 3
    )
    assert not await MeterValue.objects.filter(session=session, value=2600).aexists()
    page = await sync_to_async(_page)(host, f"/sessions/{session.pk}/")
    assert 'data-late-events="1"' in page and "kept in Logs" in page
    await client.close()


async def test_a_queued_updated_numbered_before_the_ended_still_counts(charger, token):
    # E_31: the Ended carries no reading; the queued Updated (seqNo 1) arrives after it.
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    )
    await client.result(
        "TransactionEvent", tx_event("Ended", 2, timestamp=T3, stopped_reason="Local")
    )
    # seqNo 1 is missing: the CSMS asks at once whether messages are still queued (E_31).
    asked = await client.receive(timeout=GENEROUS_S)
    assert asked[:3] == [2, asked[1], "GetTransactionStatus"], asked
    await client.send([3, asked[1], {"messagesInQueue": True, "ongoingIndicator": False}])
    await client.result(
        "TransactionEvent", tx_event("Updated", 1, timestamp=T1, wh=5000, offline=True)
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.meter_stop_wh, session.energy_wh, session.late_events) == (5000, 4000, 0)
    await client.close()


def _event(event_type, seq_no, minute, wh, context="Sample.Periodic"):
    when = datetime(2026, 11, 20, 10, minute, tzinfo=UTC)
    payload = tx_event(
        event_type,
        seq_no,
        timestamp=when.isoformat().replace("+00:00", "Z"),
        wh=wh,
        context=context,
    )
    return tx.read_event(payload, lambda _payload: None, when)


def test_the_stop_is_the_ended_transaction_end_reading_whatever_came_later():
    # A later-timed reading numbered before the Ended (a queued sample) does not move the stop
    # off the Transaction.End reading; one numbered after it is counted as late.
    state = tx.fold(
        [
            _event("Started", 0, 0, 0, "Transaction.Begin"),
            _event("Ended", 2, 30, 2000, "Transaction.End"),
            _event("Updated", 1, 40, 2300),
            _event("Updated", 3, 45, 2600),
        ]
    )
    assert (state.meter_stop_wh, state.late_events) == (2000, 1)
