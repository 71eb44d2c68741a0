"""Energy is exact for OCPP 1.6 too (issue 33 item 8): a meterStart/meterStop sent with
decimals is taken as sent (and flagged: the schema says integer), and a stop without a usable
meterStop ends at the last register reading, kWh with decimals converted exactly. On
PostgreSQL the stop with a meterStop goes through the batched UPDATE (chargers.sessions.closing)."""

from decimal import Decimal

import pytest

from chargers.messagelog.log import writer
from chargers.models import ChargingSession, OcppMessage
from chargers.sessions import closing
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def _client() -> OcppTestClient:
    client = OcppTestClient("CP-TEST-1")
    ok, _ = await client.connect()
    assert ok
    return client


async def test_meter_start_and_stop_with_decimals_are_kept_exactly(charger, token):
    client = await _client()
    started = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 1234.56,
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    batches = closing.batches()
    await client.result(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": "5678.9",
            "timestamp": "2026-11-20T11:00:00Z",
        },
    )
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert (session.meter_start_wh, session.meter_stop_wh) == (
        Decimal("1234.56"),
        Decimal("5678.9"),
    )
    assert session.energy_wh == Decimal("4444.34")
    assert closing.batches() > batches
    await writer.flush()
    logged = await OcppMessage.objects.filter(action="StartTransaction", direction="in").alatest(
        "id"
    )
    assert "meterStart sent as float" in logged.violation
    await client.close()


async def test_a_stop_without_meter_stop_ends_at_the_last_kwh_reading_exactly(charger, token):
    client = await _client()
    started = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 10000,
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": started["transactionId"],
            "meterValue": [
                {
                    "timestamp": "2026-11-20T10:30:00Z",
                    "sampledValue": [
                        {
                            "value": "12.3456",
                            "unit": "kWh",
                            "measurand": "Energy.Active.Import.Register",
                        }
                    ],
                }
            ],
        },
    )
    await client.result(
        "StopTransaction",
        {"transactionId": started["transactionId"], "timestamp": "2026-11-20T11:00:00Z"},
    )
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert session.meter_stop_wh == Decimal("12345.6")
    assert session.energy_wh == Decimal("2345.6")
    await client.close()
