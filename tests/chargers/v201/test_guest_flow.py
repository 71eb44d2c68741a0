"""The guest QR flow with a 2.0.1 charger: the guest code sends its 1.6 remote start, the charger
gets RequestStartTransaction, and its TransactionEvents link, finish and settle the guest session."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import Payment
from guest import services
from guest.models import GuestSession
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, PropertyFactory

from .conftest import TS, connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(db):
    return PropertyFactory(name="Harbour Hotel", currency="EUR", timezone="Europe/Amsterdam")


@pytest.fixture
def rate(site):
    from billing.models import Rate

    return Rate.objects.create(
        property=site,
        valid_from=timezone.now() - timedelta(days=365),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.40"),
    )


async def test_a_guest_charges_at_a_201_charger(rate, site, monkeypatch):
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    charger = await sync_to_async(ChargerFactory)(
        property=site, station_id="CP-TEST-1", name="Lot 201"
    )
    client = await connect201()
    for evse in (0, 1):
        await client.result(
            "StatusNotification",
            {
                "timestamp": TS,
                "connectorStatus": "Available",
                "evseId": evse,
                "connectorId": 0 if evse == 0 else 1,
            },
        )
    await charger.arefresh_from_db()  # now online
    start = asyncio.create_task(
        sync_to_async(services.guest_start)(
            charger=charger,
            connector_id=1,
            email="guest@example.com",
            payment_method="pm_card_visa",
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "RequestStartTransaction" and call[3]["evseId"] == 1
    uid = call[3]["idToken"]["idToken"]
    await client.send([3, call[1], {"status": "Accepted"}])
    gs = await start
    assert gs.state == GuestSession.State.STARTING and gs.id_tag == uid

    started = tx_event(
        "Started", 0, "G-TX", trigger="RemoteStart", wh=1000, remoteStartId=call[3]["remoteStartId"]
    )
    started["idToken"] = {"idToken": uid, "type": "Central"}
    assert await client.result("TransactionEvent", started) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    await gs.arefresh_from_db()
    assert gs.state == GuestSession.State.CHARGING and gs.charging_session_id is not None
    await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            1,
            "G-TX",
            timestamp="2026-11-20T11:00:00Z",
            trigger="EVDeparted",
            wh=11000,
            stopped_reason="EVDisconnected",
        ),
    )
    await gs.arefresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    payment = await Payment.objects.aget(pk=gs.payment_id)
    assert payment.status == Payment.Status.CAPTURED and payment.amount_captured > 0
    await client.close()
