"""A 2.0.1 transaction without any energy reading (issue 33 item 9): its energy is unknown, not
0 kWh. The session keeps no meter start/stop, every page and the API say no reading was
reported, it is priced by time rules only, and support is flagged (one ticket per charger)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Rate
from billing.services import session_price
from chargers.models import ChargingSession
from support.models import Ticket

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


def at(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00Z"


async def _session_without_readings(client, transaction_id: str, minute: int) -> ChargingSession:
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, transaction_id, timestamp=at(minute), id_token="04A1B2C3"),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, transaction_id, timestamp=at(minute + 30), stopped_reason="Local"),
    )
    return await ChargingSession.objects.aget(ocpp_transaction_id=transaction_id)


async def test_no_reading_is_shown_priced_by_time_and_flagged(charger, token, prop, host):
    await Rate.objects.acreate(
        property=prop,
        valid_from=timezone.now() - timedelta(days=3650),
        energy_price_per_kwh=Decimal("0.50"),
        time_price_per_hour=Decimal("2.00"),
        tax_percent=Decimal("0"),
    )
    client = await connect201()
    session = await _session_without_readings(client, "TX-1", 0)
    assert session.status == "completed"
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (None, None, None)
    assert session.no_reading

    charge = await sync_to_async(session_price)(session_id=session.pk)
    assert charge.energy_wh is None
    kinds = [line["kind"] for line in charge.lines]
    assert "energy" not in kinds and "charging_time" in kinds
    assert charge.total == Decimal("1.00")  # 30 min at 2.00/h, nothing for energy

    def pages():
        web = Client()
        web.force_login(host)
        detail = web.get(reverse("chargers:session-detail", args=[session.pk])).content.decode()
        listing = web.get(reverse("chargers:session-list")).content.decode()
        api = web.get("/api/v1/sessions/").json()["results"][0]
        return detail, listing, api

    detail, listing, api = await sync_to_async(pages)()
    assert "No reading reported" in detail and "0 Wh" not in detail
    assert "No reading reported" in listing
    assert api["no_energy_reading"] is True
    assert (api["energy_kwh"], api["meter_start_wh"], api["meter_stop_wh"]) == (None, None, None)

    tickets = [t async for t in Ticket.objects.filter(charger=charger)]
    assert len(tickets) == 1 and tickets[0].details["sessions"] == [session.pk]
    assert tickets[0].organization_id == prop.organization_id
    # A second such session of the same charger adds to the open ticket, not a new one.
    second = await _session_without_readings(client, "TX-2", 40)
    tickets = [t async for t in Ticket.objects.filter(charger=charger)]
    assert len(tickets) == 1 and tickets[0].details["sessions"] == [session.pk, second.pk]
    await client.close()


async def test_a_reading_after_a_started_without_one_sets_the_meter_start(charger, token):
    """Not every transaction without a reading at its start stays without: the first register
    any event reports is where it started."""
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3")
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=100.5),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 2, timestamp=at(9), wh=2100.75, stopped_reason="Local"),
    )
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    assert session.energy_wh == Decimal("2000.25") and not session.no_reading
    assert not await Ticket.objects.filter(charger=charger).aexists()
    await client.close()
