"""A charger whose clock is not set (1970 or 2000 after a reboot without a battery behind its
clock) or far ahead of ours (chargers.ocpp.clock; docs/quirks.md `clock_wrong`): its session
is timed by when we received its messages, never 56 years long or ending before it began; a
resent start is still known as the same start; the Logs row says what was replaced and support
finds the charger's clock named on it. A time in the past after 2015 (a queued message sent
late) is kept as sent."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chargers.messagelog.log import writer
from chargers.models import ChargerDeviation, ChargingSession, MeterValue, OcppMessage
from chargers.ocpp import clock
from chargers.plumbing import background
from chargers.state import quirks as quirks_state
from tests.bounds import GENEROUS_S
from tests.chargers.v201.conftest import connect201, tx_event
from tests.ocpp_client import OcppTestClient

UNSET = "1970-01-01T00:00:42Z"


@pytest.fixture(autouse=True)
def _profiles_read_afresh():
    quirks_state.forget()
    yield
    quirks_state.forget()


def test_a_time_before_2015_or_far_ahead_is_no_time_the_charger_meant():
    received = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert "not set" in clock.wrong(datetime(1970, 1, 1, tzinfo=UTC), received)
    assert "not set" in clock.wrong(datetime(2000, 1, 1, tzinfo=UTC), received)
    assert clock.wrong(received + timedelta(hours=2, minutes=5), received).startswith(
        "is 2 h 5 min ahead of ours"
    )
    assert clock.wrong(datetime(2099, 1, 1, tzinfo=UTC), received).startswith(
        "is 26330 days ahead of ours"
    )
    # Drift of a few minutes, and a message queued offline for weeks, are kept as sent.
    assert clock.wrong(received + timedelta(minutes=4), received) == ""
    assert clock.wrong(received - timedelta(days=40), received) == ""
    assert clock.checked(datetime(1970, 1, 1, tzinfo=UTC), received) == (
        received,
        "is before 2015: the charger's clock is not set",
    )


async def _log_violation(charger, action: str) -> str:
    await writer.flush()
    row = await OcppMessage.objects.filter(
        charger=charger, action=action, direction="in", message_type=2
    ).alast()
    return row.violation


@pytest.mark.django_db(transaction=True)
async def test_a_16_session_of_a_charger_without_a_clock_is_timed_by_its_messages(charger, token):
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    start = {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": UNSET}
    before = timezone.now()
    first = await client.result("StartTransaction", start)
    # Our answer was lost: the charger sends the same start again, with the same unset time.
    again = await client.result("StartTransaction", start)
    assert again["transactionId"] == first["transactionId"]
    session = await ChargingSession.objects.aget(charger=charger)
    assert before <= session.started_at <= timezone.now()
    assert "is before 2015" in await _log_violation(charger, "StartTransaction")

    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": first["transactionId"],
            "meterValue": [
                {"timestamp": "2000-01-01T00:10:00Z", "sampledValue": [{"value": "4000"}]}
            ],
        },
    )
    await client.result(
        "StopTransaction",
        {"transactionId": first["transactionId"], "meterStop": 6000, "timestamp": UNSET},
    )
    await session.arefresh_from_db()
    assert session.status == "completed" and session.started_at <= session.stopped_at
    assert session.stopped_at - session.started_at < timedelta(minutes=10)
    reading = await MeterValue.objects.aget(session=session, value=4000)
    assert session.started_at <= reading.timestamp <= session.stopped_at
    await background.drain(GENEROUS_S)
    row = await ChargerDeviation.objects.aget(charger=charger)
    assert row.code == "clock_wrong" and "1970-01-01" in row.detail
    # A wrong clock is a deviation, not a schema violation: the Overview's count stays 0.
    await charger.arefresh_from_db()
    assert charger.schema_violations == 0
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_a_start_queued_offline_keeps_its_own_time(charger, token):
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    queued = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 1000,
            "timestamp": queued.isoformat().replace("+00:00", "Z"),
        },
    )
    assert (await ChargingSession.objects.aget(charger=charger)).started_at == queued
    assert not await _log_violation(charger, "StartTransaction")
    await background.drain(GENEROUS_S)
    assert not await ChargerDeviation.objects.filter(charger=charger).aexists()
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_a_201_transaction_of_a_station_whose_clock_runs_ahead_is_timed_by_its_events(
    charger, token
):
    charger.ocpp_version = "2.0.1"
    await charger.asave()
    client = await connect201(charger.station_id)
    ahead = (timezone.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    before = timezone.now()
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-AHEAD", timestamp=ahead, wh=1000, id_token="04A1B2C3"),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, "TX-AHEAD", timestamp=UNSET, wh=5000, stopped_reason="Local"),
    )
    session = await ChargingSession.objects.aget(charger=charger)
    assert session.status == "completed"
    assert before <= session.started_at <= session.stopped_at <= timezone.now()
    assert "ahead of ours" in await _log_violation(charger, "TransactionEvent") or (
        "before 2015" in await _log_violation(charger, "TransactionEvent")
    )
    await client.result(
        "StatusNotification",
        {"timestamp": UNSET, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )
    assert "before 2015" in await _log_violation(charger, "StatusNotification")
    await background.drain(GENEROUS_S)
    assert await ChargerDeviation.objects.filter(charger=charger, code="clock_wrong").aexists()
    await client.close()
