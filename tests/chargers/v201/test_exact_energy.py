"""Energy is exact (issue 33 item 8): a 2.0.1 register with decimals, in Wh or kWh, is kept to
its last decimal on every path (the batched Started on PostgreSQL, the appended steady events,
the full refold), and the session is billed on that exact energy."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import Rate
from billing.services import session_price
from chargers.models import ChargingSession, MeterValue
from chargers.sessions import rules, transaction_events

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


def at(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00Z"


def _kwh_event(event_type: str, seq_no: int, minute: int, value: str, **kw) -> dict:
    """An event whose register is in kWh, with decimals, as a string (2.0.1 allows both)."""
    event = tx_event(event_type, seq_no, timestamp=at(minute), **kw)
    event["meterValue"] = [
        {
            "timestamp": at(minute),
            "sampledValue": [
                {
                    "value": value,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "kWh"},
                }
            ],
        }
    ]
    return event


@pytest.fixture(params=["appended", "full"])
def path(request, monkeypatch):
    """'appended': a steady transaction's Updated and Ended go through the batched append
    (services_v201.transaction_events_append[_batch]); 'full': every event is refolded."""
    if request.param == "full":
        monkeypatch.setattr(rules, "appendable", lambda steady, event, end_register_wh: False)
    return request.param


async def test_decimal_wh_registers_give_the_exact_energy(charger, token, path):
    client = await connect201()
    appended = transaction_events._appends.batches
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1234.56),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=2000.25),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 2, timestamp=at(2), wh=5678.9, stopped_reason="EVDisconnected"),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.status == "completed"
    assert session.meter_start_wh == Decimal("1234.56")
    assert session.meter_stop_wh == Decimal("5678.9")
    assert session.energy_wh == Decimal("4444.34")
    assert (transaction_events._appends.batches > appended) == (path == "appended")
    await client.close()


async def test_a_kwh_register_with_decimals_is_converted_exactly(charger, token, path):
    client = await connect201()
    await client.result(
        "TransactionEvent", _kwh_event("Started", 0, 0, "12.3456", id_token="04A1B2C3")
    )
    await client.result(
        "TransactionEvent", _kwh_event("Updated", 1, 1, "13.0001", trigger="MeterValuePeriodic")
    )
    await client.result(
        "TransactionEvent", _kwh_event("Ended", 2, 2, "20.0007", stopped_reason="Local")
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.meter_start_wh == Decimal("12345.6")
    assert session.meter_stop_wh == Decimal("20000.7")
    assert session.energy_wh == Decimal("7655.1")
    stored = [
        (mv.value, mv.unit)
        async for mv in MeterValue.objects.filter(session=session).order_by("id")
    ]
    assert stored[0] == (Decimal("12.3456"), "kWh")  # the reading itself, as sent
    await client.close()


async def test_the_session_is_billed_on_the_exact_energy(charger, token, prop):
    """1999.9 Wh at 10.00/kWh is 20.00 (19.999 rounded); cut to 1999 Wh it was 19.99."""
    await Rate.objects.acreate(
        property=prop,
        valid_from=timezone.now() - timedelta(days=3650),
        energy_price_per_kwh=Decimal("10.00"),
        tax_percent=Decimal("0"),
    )
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=0)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, timestamp=at(5), wh=1999.9, stopped_reason="Local"),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    charge = await sync_to_async(session_price)(session_id=session.pk)
    assert charge.energy_wh == Decimal("1999.9")
    energy_line = next(line for line in charge.lines if line["kind"] == "energy")
    assert energy_line["amount"] == "20.00"
    assert charge.total == Decimal("20.00")
    await client.close()
