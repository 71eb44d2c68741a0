"""Signed meter values over OCPP 1.6 (OCA "Signed Meter Values in OCPP" 3.1): the signed start
in a separate MeterValues right after StartTransaction, the signed end in StopTransaction's
transactionData; kept whole, verified with the registered key, the session's energy = signed
end - signed start. On PostgreSQL the start and the stop go through the batched paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from chargers.messagelog.log import writer
from chargers.models import ChargingSession, MeterValue, OcppMessage, SignedSample
from chargers.sessions import closing, opening
from metering import services
from metering.models import SignedReading
from metering.selectors import session_signature
from tests.chargers.conftest import outage  # noqa: F401  (the outage journal fixture)
from tests.metering.signing import Meter, signed_data_16, tamper
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_sample(value: str, context: str) -> dict:
    return {
        "value": value,
        "format": "SignedData",
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
    }


async def charge(
    meter: Meter, *, end_text: str | None = None, wrap: bool = True
) -> ChargingSession:
    """A 1.6 session: StartTransaction, the signed start in MeterValues, a stop with the end."""
    client = OcppTestClient("CP-TEST-1")
    ok, _ = await client.connect()
    assert ok
    batches = (opening.open_batches(), closing.batches())
    started = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": iso(T0)},
    )
    transaction_id = started["transactionId"]
    start_text = meter.ocmf("B", "1.000", T0, pagination=11)
    end_text = end_text or meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    start_value = signed_data_16(meter, start_text) if wrap else start_text
    end_value = signed_data_16(meter, end_text) if wrap else end_text
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": iso(T0),
                    "sampledValue": [signed_sample(start_value, "Transaction.Begin")],
                }
            ],
        },
    )
    await client.result(
        "StopTransaction",
        {
            "transactionId": transaction_id,
            "meterStop": 9000,
            "timestamp": iso(T0 + timedelta(hours=1)),
            "transactionData": [
                {
                    "timestamp": iso(T0 + timedelta(hours=1)),
                    "sampledValue": [signed_sample(end_value, "Transaction.End")],
                }
            ],
        },
    )
    await client.close()
    if connection.vendor == "postgresql":  # the start and the stop went through the batches
        assert opening.open_batches() > batches[0] and closing.batches() > batches[1]
    return await ChargingSession.objects.aget(transaction_id=transaction_id)


@pytest.fixture
def meter(charger) -> Meter:
    meter = Meter()
    services.meter_key_put(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_hex
    )
    return meter


@pytest.mark.parametrize("wrap", [True, False], ids=["SignedMeterValueType JSON", "plain OCMF"])
async def test_signed_start_and_end_verify_and_give_the_energy(charger, token, meter, wrap):
    session = await charge(meter, wrap=wrap)
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None
    assert summary.status == "verified", summary
    assert summary.start is not None and summary.end is not None
    assert (summary.start.value_wh, summary.end.value_wh) == (Decimal(1000), Decimal(9500))
    assert summary.energy_wh == Decimal(8500)  # the signed readings, not meterStop - meterStart
    assert summary.public_key == meter.public_key_hex
    assert summary.start.ocmf.startswith("OCMF|") and summary.end.ocmf.startswith("OCMF|")
    # The raw signed start is kept whole in chargers; the MeterValue row keeps 100 characters
    # and the message is not flagged for it.
    sample = await SignedSample.objects.aget(transaction_id=session.transaction_id)
    assert len(sample.value) > 100
    assert await MeterValue.objects.filter(session=session).aexists()
    await writer.flush()
    logged = await OcppMessage.objects.filter(action="MeterValues", direction="in").alatest("id")
    assert "cut" not in logged.violation


async def test_one_digit_changed_in_the_end_reading_is_an_invalid_signature(charger, token, meter):
    end = meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    session = await charge(meter, end_text=tamper(end, '"RV":9.5', '"RV":9.6'))
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "invalid_signature"
    assert summary.start is not None and summary.start.status == "verified"
    assert summary.end is not None and summary.end.status == "invalid_signature"
    assert summary.energy_wh is None
    assert "end:" in summary.reason


async def test_without_a_registered_key_the_values_are_kept_as_unknown_key(charger, token):
    session = await charge(Meter())
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "unknown_key"
    assert await SignedReading.objects.filter(session=session).acount() == 2


async def test_registering_the_key_later_verifies_the_stored_values(
    charger, token, api_client, host
):
    meter = Meter()
    session = await charge(meter)
    await sync_to_async(api_client.force_authenticate)(host)
    response = await sync_to_async(api_client.put)(
        "/api/v1/chargers/CP-TEST-1/meter-keys/",
        {"meter_serial": meter.serial, "public_key": meter.public_key_pem},
        format="json",
    )
    assert response.status_code == 200, response.content
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "verified"


async def test_a_session_of_a_charger_that_does_not_sign_has_no_signature(charger, token):
    client = OcppTestClient("CP-TEST-1")
    ok, _ = await client.connect()
    assert ok
    started = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": iso(T0)},
    )
    await client.result(
        "StopTransaction",
        {"transactionId": started["transactionId"], "meterStop": 10, "timestamp": iso(T0)},
    )
    await client.close()
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert await sync_to_async(session_signature)(session) is None


async def test_signed_values_journaled_in_an_outage_are_kept_and_verified_on_replay(
    charger,
    token,
    meter,
    outage,  # noqa: F811
):
    from chargers.plumbing.journal import read_entries
    from chargers.sessions import replay

    outage.engage("test outage")
    await charge_without_reading(meter)
    entries, _ = read_entries(outage._path)
    assert not await SignedSample.objects.aexists()
    for _ in range(2):  # an interrupted replay run again applies each entry once
        for entry in entries:
            await sync_to_async(replay.journal_apply)(outage._path.name, entry)
    assert await SignedSample.objects.acount() == 1
    session = await ChargingSession.objects.aget(charger=charger)
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "verified"
    assert summary.energy_wh == Decimal(8500)


async def charge_without_reading(meter: Meter) -> None:
    """As charge(), for a database that is away: the answers come from the journal."""
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    started = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": iso(T0)},
    )
    transaction_id = started["transactionId"]
    start_text = meter.ocmf("B", "1.000", T0, pagination=11)
    end_text = meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": iso(T0),
                    "sampledValue": [
                        signed_sample(signed_data_16(meter, start_text), "Transaction.Begin")
                    ],
                }
            ],
        },
    )
    await client.result(
        "StopTransaction",
        {
            "transactionId": transaction_id,
            "meterStop": 9000,
            "timestamp": iso(T0 + timedelta(hours=1)),
            "transactionData": [
                {
                    "timestamp": iso(T0 + timedelta(hours=1)),
                    "sampledValue": [
                        signed_sample(signed_data_16(meter, end_text), "Transaction.End")
                    ],
                }
            ],
        },
    )
    await client.close()
