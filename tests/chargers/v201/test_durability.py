"""Durability of 2.0.1 transaction messages: during a database outage they are answered from the
journal (chargers.plumbing.journal) and replayed into the database later, each exactly once."""

import pytest

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, Connector, MeterValue, TransactionEvent
from chargers.plumbing.journal import read_entries
from chargers.sessions import replay, services

from .conftest import TS, connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


async def test_outage_answers_from_the_journal_then_replays_exactly_once(charger, token, outage):
    client = await connect201()
    outage.engage("test outage")
    started = await client.result(
        "TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=100)
    )
    assert started == {"idTokenInfo": {"status": "Accepted"}}  # the card cannot be checked now
    await client.result(
        "TransactionEvent", tx_event("Ended", 1, timestamp="2026-11-20T10:30:00Z", wh=2100)
    )
    status = {"timestamp": TS, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await client.result("StatusNotification", status) == {}
    meter = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": TS,
                "sampledValue": [
                    {"value": 5, "measurand": "Voltage", "unitOfMeasure": {"unit": "V"}}
                ],
            }
        ],
    }
    assert await client.result("MeterValues", meter) == {}
    await client.close()
    assert not await ChargingSession.objects.filter(
        charger=charger
    ).aexists()  # only in the journal yet

    entries, _ = read_entries(outage._path)
    calls = [e for e in entries if e.get("kind") == "call"]
    assert [e["action"] for e in calls] == [
        "TransactionEvent",
        "TransactionEvent",
        "StatusNotification",
        "MeterValues",
    ]
    from asgiref.sync import sync_to_async

    for _ in range(2):  # a replay interrupted and run again applies each entry once
        for entry in entries:
            await sync_to_async(replay.journal_apply)(outage._path.name, entry)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.transaction_id == calls[0]["transaction_id"]  # the id drawn while journaling
    assert (session.status, session.meter_start_wh, session.meter_stop_wh) == (
        "completed",
        100,
        2100,
    )
    assert await TransactionEvent.objects.filter(session=session).acount() == 2
    assert (await Connector.objects.aget(charger=charger, connector_id=1)).status == "Available"
    assert await MeterValue.objects.filter(charger=charger, measurand="Voltage").acount() == 1
    # The card is decided when the start is replayed, once, and paired with its frame.
    decision = await AuthorizationDecision.objects.aget()
    assert (decision.uid, decision.context, decision.status) == (
        "04A1B2C3",
        "start_transaction",
        "Accepted",
    )
    assert decision.message.endswith(services.REPLAYED_START_NOTE)
    assert decision.ocpp_unique_id == calls[0]["unique_id"]


async def test_signed_meter_values_journaled_in_an_outage_go_to_the_open_session(
    charger, token, outage
):
    """A 2.0.1 MeterValues with a signedMeterValue answered from the journal keeps the signed
    value whole; the replay gives it to the session open on the EVSE, as the live path does."""
    from asgiref.sync import sync_to_async

    from chargers.models import SignedSample
    from tests.metering.signing import Meter, signed_meter_value_201

    meter = Meter()
    signed = signed_meter_value_201(meter, meter.ocmf("C", "1.500", _at(), pagination=7))
    client = await connect201()
    outage.engage("test outage")
    await client.result("TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=100))
    reading = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": "2026-11-20T10:10:00Z",
                "sampledValue": [
                    {
                        "value": 1500,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                        "signedMeterValue": signed,
                    }
                ],
            }
        ],
    }
    assert await client.result("MeterValues", reading) == {}
    await client.close()
    assert not await SignedSample.objects.aexists()
    entries, _ = read_entries(outage._path)
    for _ in range(2):
        for entry in entries:
            await sync_to_async(replay.journal_apply)(outage._path.name, entry)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    sample = await SignedSample.objects.aget(charger=charger)  # once, though replayed twice
    assert sample.transaction_id == session.transaction_id
    assert '"signedMeterData"' in sample.value


def _at():
    from datetime import UTC, datetime

    return datetime(2026, 11, 20, 10, 10, tzinfo=UTC)
