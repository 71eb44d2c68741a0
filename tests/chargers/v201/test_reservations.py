"""Reservations (2.0.1 H01-H04, 1.6 §5.13): ReserveNow/CancelReservation through the API in either
protocol's words, ReservationStatusUpdate stored, and a reserved connector taking only its card."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, Connector, ConnectorReservation
from chargers.ocpp.protocol import format_datetime
from chargers.sessions.reservations import reservations_expire, reserved_for
from tests.bounds import GENEROUS_S
from tests.factories import TokenFactory
from tests.ocpp_client import OcppTestClient

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


async def command(
    api, client, action: str, payload: dict, answer: dict, station_id: str = "CP-TEST-1"
):
    request = asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/chargers/{station_id}/commands/{action}/", payload, format="json"
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], answer])
    return call, await request


def _in(minutes: int) -> str:
    return format_datetime(timezone.now() + timedelta(minutes=minutes))


async def _reserve(api, client, *, reservation_id=77, connector_id=1, answer="Accepted", **extra):
    return await command(
        api,
        client,
        "ReserveNow",
        {
            "connectorId": connector_id,
            "expiryDate": _in(30),
            "idTag": "04A1B2C3",
            "reservationId": reservation_id,
            **extra,
        },
        {"status": answer},
    )


async def test_reserve_now_in_16_words_reaches_a_201_charger_translated_and_holds_the_evse(
    charger, token, api
):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    await Connector.objects.acreate(charger=charger, connector_id=2)
    other = await sync_to_async(TokenFactory)(uid="0BADCAFE", organization=token.organization)
    client = await connect201()
    call, response = await _reserve(api, client, parentIdTag="FLEET-1")
    assert response.status_code == 200, response.content
    assert call[2] == "ReserveNow"
    assert call[3]["id"] == 77 and call[3]["evseId"] == 1
    assert call[3]["idToken"] == {"idToken": "04A1B2C3", "type": "ISO14443"}
    assert call[3]["groupIdToken"]["idToken"] == "FLEET-1"
    reservation = await ConnectorReservation.objects.aget(charger=charger, reservation_id=77)
    assert reservation.status == "active" and reservation.connector_id == 1

    # Another card on the reserved EVSE is refused, with the reason recorded.
    answer = await client.result(
        "TransactionEvent", tx_event("Started", 0, "TX-OTHER", id_token=other.uid, wh=0)
    )
    assert answer["idTokenInfo"]["status"] == "Invalid"
    decision = await AuthorizationDecision.objects.filter(uid=other.uid).alatest("id")
    assert decision.reason == "connector_reserved"
    # ... but not on the other EVSE.
    answer = await client.result(
        "TransactionEvent", tx_event("Started", 0, "TX-FREE", id_token=other.uid, wh=0, evse=2)
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"

    # The reserved card starts and uses the reservation up (H01.FR.15: it names the reservation).
    answer = await client.result(
        "TransactionEvent",
        tx_event(
            "Started",
            0,
            "TX-RES",
            id_token="04A1B2C3",
            wh=0,
            timestamp=format_datetime(timezone.now()),
        ),
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-RES")
    await reservation.arefresh_from_db()
    assert reservation.status == "used" and reservation.session_id == session.pk
    await client.close()


async def test_a_refused_reservation_holds_nothing(charger, token, api):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    client = await connect201()
    _, response = await _reserve(api, client, answer="Occupied")
    assert response.status_code == 200
    reservation = await ConnectorReservation.objects.aget(charger=charger)
    assert reservation.status == "refused" and reservation.charger_answer == "Occupied"
    assert await sync_to_async(reserved_for)(charger.pk, 1) is None
    await client.close()


async def test_reservation_status_update_and_cancel_end_a_reservation(charger, token, api):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    client = await connect201()
    await _reserve(api, client, reservation_id=5)
    await _reserve(api, client, reservation_id=6, connector_id=0)
    assert (
        await client.result(
            "ReservationStatusUpdate", {"reservationId": 5, "reservationUpdateStatus": "Expired"}
        )
        == {}
    )
    assert (await ConnectorReservation.objects.aget(reservation_id=5)).status == "expired"
    call, response = await command(
        api, client, "CancelReservation", {"reservationId": 6}, {"status": "Accepted"}
    )
    assert call[3] == {"reservationId": 6} and response.status_code == 200
    assert (await ConnectorReservation.objects.aget(reservation_id=6)).status == "cancelled"
    # An unknown reservation is acknowledged and changes nothing.
    assert (
        await client.result(
            "ReservationStatusUpdate", {"reservationId": 999, "reservationUpdateStatus": "Removed"}
        )
        == {}
    )
    await client.close()


async def test_16_charger_reservation_refuses_other_cards_at_start(charger, token, api):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    other = await sync_to_async(TokenFactory)(uid="0BADCAFE", organization=token.organization)
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    call, response = await _reserve(api, client)
    assert (
        call[2] == "ReserveNow"
        and call[3]["reservationId"] == 77
        and call[3]["idTag"] == "04A1B2C3"
    )
    # A single-connector charger: Authorize (no connector named) is refused for other cards too.
    assert (await client.result("Authorize", {"idTag": other.uid}))["idTagInfo"][
        "status"
    ] == "Invalid"
    start = {
        "connectorId": 1,
        "idTag": other.uid,
        "meterStart": 0,
        "timestamp": format_datetime(timezone.now()),
    }
    assert (await client.result("StartTransaction", start))["idTagInfo"]["status"] == "Invalid"
    start = {**start, "idTag": "04A1B2C3", "reservationId": 77, "meterStart": 10}
    assert (await client.result("StartTransaction", start))["idTagInfo"]["status"] == "Accepted"
    assert (await ConnectorReservation.objects.aget(reservation_id=77)).status == "used"
    await client.close()


def test_expired_reservations_hold_nothing_and_are_marked(charger):
    Connector.objects.create(charger=charger, connector_id=1)
    reservation = ConnectorReservation.objects.create(
        charger=charger,
        connector_id=1,
        reservation_id=1,
        id_tag="04A1B2C3",
        status="active",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert reserved_for(charger.pk, 1).id_tags == frozenset({"04A1B2C3"})
    later = timezone.now() + timedelta(minutes=6)
    assert reserved_for(charger.pk, 1, now=later) is None
    assert reservations_expire(now=later) == 1
    reservation.refresh_from_db()
    assert reservation.status == "expired"
