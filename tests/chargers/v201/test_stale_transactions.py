"""Stale 2.0.1 transactions (E14): asked about with GetTransactionStatus, closed when ended."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chargers.devices.stale import stale_sessions, transaction_status_check
from chargers.models import ChargingSession, Command
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _stale_at_once(settings):
    settings.OCPP_STALE_TRANSACTION_SECONDS = 0


async def _ask(client, answer: dict):
    session = await ChargingSession.objects.select_related("charger").aget(
        ocpp_transaction_id="TX-1"
    )
    check = asyncio.create_task(sync_to_async(transaction_status_check)(session))
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], answer])
    return call, await check


@pytest.mark.parametrize(
    ("answer", "outcome", "status"),
    [
        ({"ongoingIndicator": True, "messagesInQueue": False}, "ongoing", "active"),
        ({"ongoingIndicator": False, "messagesInQueue": True}, "queued", "active"),
        ({"ongoingIndicator": False, "messagesInQueue": False}, "ended", "completed"),
    ],
)
async def test_a_silent_transaction_is_asked_about_and_closed_only_when_ended(
    charger, token, answer, outcome, status
):
    client = await connect201()
    await client.result("TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=1000))
    await client.result(
        "TransactionEvent",
        tx_event(
            "Updated", 1, wh=4000, timestamp="2026-11-20T10:30:00Z", trigger="MeterValuePeriodic"
        ),
    )
    assert [s.ocpp_transaction_id for s in await sync_to_async(stale_sessions)()] == ["TX-1"]
    call, verdict = await _ask(client, answer)
    assert call[2] == "GetTransactionStatus" and call[3] == {"transactionId": "TX-1"}
    assert verdict.outcome == outcome
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    assert session.status == status
    if status == "completed":
        assert session.stop_reason == "NoEndedEvent" and session.meter_stop_wh == 4000
        assert session.stopped_at.isoformat() == "2026-11-20T10:30:00+00:00"
    # The question is recorded like any command (and keeps it from being asked again too soon).
    assert await Command.objects.filter(action="GetTransactionStatus").acount() == 1
    await client.close()


async def test_a_late_ended_event_still_replaces_the_estimate(charger, token):
    client = await connect201()
    await client.result("TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=1000))
    await _ask(client, {"ongoingIndicator": False, "messagesInQueue": False})
    await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            1,
            wh=9000,
            timestamp="2026-11-20T11:00:00Z",
            trigger="EVCommunicationLost",
            stopped_reason="EVDisconnected",
        ),
    )
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    assert (session.stop_reason, session.meter_stop_wh) == ("EVDisconnected", 9000)
    await client.close()
