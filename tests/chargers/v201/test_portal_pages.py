"""Portal tabs for reservations and the 2.0.1 device model: what hosts see and change, by role."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chargers.models import Charger, Command, Connector, ConnectorReservation, DeviceVariable
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory

from .conftest import connect201

pytestmark = pytest.mark.django_db(transaction=True)


def _portal(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _answer(client, answer: dict) -> list:
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], answer])
    return call


async def test_host_reserves_and_cancels_from_the_reservations_tab(charger, host):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    portal = await sync_to_async(_portal)(host)
    page = await sync_to_async(portal.get)("/chargers/CP-TEST-1/reservations/")
    assert page.status_code == 200 and b"Reserve a connector" in page.content
    client = await connect201()
    post = asyncio.create_task(
        sync_to_async(portal.post)(
            "/chargers/CP-TEST-1/reservations/new/",
            {"connector_id": "1", "id_tag": "04A1B2C3", "minutes": "45"},
            follow=True,
        )
    )
    call = await _answer(client, {"status": "Accepted"})
    page = await post
    assert call[2] == "ReserveNow" and call[3]["evseId"] == 1
    assert b"Reservation: the charger answered Accepted." in page.content
    reservation = await ConnectorReservation.objects.aget(charger=charger)
    assert reservation.status == "active" and reservation.source == "portal"
    assert b"04A1B2C3" in page.content and b"Active" in page.content

    post = asyncio.create_task(
        sync_to_async(portal.post)(
            f"/chargers/CP-TEST-1/reservations/{reservation.pk}/cancel/", follow=True
        )
    )
    call = await _answer(client, {"status": "Accepted"})
    await post
    assert call[2] == "CancelReservation" and call[3] == {
        "reservationId": reservation.reservation_id
    }
    assert (await ConnectorReservation.objects.aget(pk=reservation.pk)).status == "cancelled"
    await client.close()


def test_viewer_sees_reservations_but_cannot_reserve_and_others_get_404(charger, prop):
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    portal = _portal(viewer)
    page = portal.get("/chargers/CP-TEST-1/reservations/")
    assert page.status_code == 200 and b"Reserve a connector" not in page.content
    assert (
        portal.post(
            "/chargers/CP-TEST-1/reservations/new/",
            {"connector_id": "0", "id_tag": "X", "minutes": "5"},
        ).status_code
        == 403
    )
    stranger = MembershipFactory(role="owner").user  # another organization
    assert _portal(stranger).get("/chargers/CP-TEST-1/reservations/").status_code == 404
    assert not ConnectorReservation.objects.exists()


async def test_owner_sets_a_device_variable_and_sees_the_result(charger, host):
    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    row = await DeviceVariable.objects.acreate(
        charger=charger,
        component="OCPPCommCtrlr",
        variable="HeartbeatInterval",
        value="60",
        mutability="ReadWrite",
        standardized=True,
    )
    read_only = await DeviceVariable.objects.acreate(
        charger=charger,
        component="SecurityCtrlr",
        variable="Identity",
        value="CP-TEST-1",
        mutability="ReadOnly",
    )
    portal = await sync_to_async(_portal)(host)
    page = await sync_to_async(portal.get)("/chargers/CP-TEST-1/device-model/")
    assert (
        page.status_code == 200
        and b"HeartbeatInterval" in page.content
        and b"Device model" in page.content
    )
    client = await connect201()
    post = asyncio.create_task(
        sync_to_async(portal.post)(
            "/chargers/CP-TEST-1/device-model/set/",
            {"variable": str(row.pk), "value": "120"},
            follow=True,
        )
    )
    call = await _answer(
        client,
        {
            "setVariableResult": [
                {
                    "attributeType": "Actual",
                    "attributeStatus": "Accepted",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    )
    page = await post
    assert call[2] == "SetVariables"
    assert call[3]["setVariableData"] == [
        {
            "attributeType": "Actual",
            "attributeValue": "120",
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
    ]
    assert b"Set OCPPCommCtrlr.HeartbeatInterval: Accepted." in page.content
    assert (await DeviceVariable.objects.aget(pk=row.pk)).value == "120"
    # A read-only variable is not sent.
    await sync_to_async(portal.post)(
        "/chargers/CP-TEST-1/device-model/set/", {"variable": str(read_only.pk), "value": "x"}
    )
    assert await Command.objects.filter(action="SetVariables").acount() == 1
    await client.close()


def test_viewer_cannot_set_variables_nor_reach_another_organizations_rows(charger, prop):
    row = DeviceVariable.objects.create(
        charger=charger, component="C", variable="V", mutability="ReadWrite"
    )
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    assert (
        _portal(viewer)
        .post("/chargers/CP-TEST-1/device-model/set/", {"variable": row.pk, "value": "1"})
        .status_code
        == 403
    )
    other = ChargerFactory(station_id="CP-OTHER")
    other_owner = MembershipFactory(organization=other.property.organization, role="owner").user
    # Their own charger, our row's id: not found.
    assert (
        _portal(other_owner)
        .post("/chargers/CP-OTHER/device-model/set/", {"variable": row.pk, "value": "1"})
        .status_code
        == 404
    )
    assert not Command.objects.exists()


async def test_host_sets_a_limit_and_reads_the_composite_schedule(charger, host):
    from chargers.models import ChargingProfile

    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    portal = await sync_to_async(_portal)(host)
    page = await sync_to_async(portal.get)("/chargers/CP-TEST-1/smart-charging/")
    assert page.status_code == 200 and b"Set a limit" in page.content
    client = await connect201()
    post = asyncio.create_task(
        sync_to_async(portal.post)(
            "/chargers/CP-TEST-1/smart-charging/action/",
            {
                "what": "limit",
                "evse_id": "0",
                "purpose": "ChargingStationMaxProfile",
                "stack_level": "0",
                "unit": "A",
                "limit": "16",
            },
            follow=True,
        )
    )
    call = await _answer(client, {"status": "Accepted"})
    page = await post
    profile = call[3]["chargingProfile"]
    assert call[2] == "SetChargingProfile" and call[3]["evseId"] == 0
    assert (
        profile["chargingProfileKind"] == "Absolute"
        and "startSchedule" in profile["chargingSchedule"][0]
    )
    assert profile["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0}
    ]
    assert b"Charging limit: the charger answered Accepted." in page.content
    assert (await ChargingProfile.objects.aget(charger=charger)).status == "installed"

    post = asyncio.create_task(
        sync_to_async(portal.post)(
            "/chargers/CP-TEST-1/smart-charging/action/",
            {"what": "schedule", "evse_id": "0", "minutes": "60"},
            follow=True,
        )
    )
    call = await _answer(
        client,
        {
            "status": "Accepted",
            "schedule": {
                "evseId": 0,
                "duration": 3600,
                "scheduleStart": "2026-11-20T10:00:00Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
            },
        },
    )
    page = await post
    assert call[3] == {"evseId": 0, "duration": 3600}
    assert b"from +0 min: 16 A" in page.content
    await client.close()
