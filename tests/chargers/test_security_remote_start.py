"""Remote starts: a chargingProfile given to the API reaches the charger (schema-checked), and a
guest's remote start is recorded as an authorization decision like every other one."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision
from chargers.models import Command
from guest import services as guest_services
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory, TokenFactory
from tests.guest.conftest import make_online
from tests.ocpp_client import OcppTestClient

TX_PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}


async def setup(station_id: str):
    charger = await sync_to_async(ChargerFactory)(station_id=station_id)
    org = await sync_to_async(lambda: charger.property.organization)()
    await sync_to_async(TokenFactory)(uid="CAFE0042", organization=org)
    owner = await sync_to_async(lambda: MembershipFactory(organization=org).user)()
    api = APIClient()
    api.force_authenticate(owner)
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    return charger, api, client


@pytest.mark.django_db(transaction=True)
async def test_the_charging_profile_reaches_the_charger():
    charger, api, client = await setup("RS-1")
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/RS-1/commands/RemoteStartTransaction/",
            {"idTag": "CAFE0042", "connectorId": 1, "chargingProfile": TX_PROFILE},
            format="json",
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "RemoteStartTransaction" and call[3]["chargingProfile"] == TX_PROFILE
    await client.send([3, call[1], {"status": "Accepted"}])
    assert (await request).json()["status"] == "Accepted"
    command = await Command.objects.aget(charger=charger, action="RemoteStartTransaction")
    assert command.payload["chargingProfile"] == TX_PROFILE
    await client.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "profile",
    [
        {**TX_PROFILE, "chargingProfilePurpose": "TxDefaultProfile"},
        {
            **TX_PROFILE,
            "chargingSchedule": {"chargingRateUnit": "Volt", "chargingSchedulePeriod": []},
        },
    ],
)
async def test_a_wrong_charging_profile_is_refused_before_any_decision(profile):
    charger, api, client = await setup("RS-2")
    response = await sync_to_async(api.post)(
        "/api/v1/chargers/RS-2/commands/RemoteStartTransaction/",
        {"idTag": "CAFE0042", "connectorId": 1, "chargingProfile": profile},
        format="json",
    )
    assert response.status_code == 400
    assert not await AuthorizationDecision.objects.filter(station_id="RS-2").aexists()
    await client.close()


def test_a_guest_remote_start_records_its_decision(db, monkeypatch):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from billing.models import Rate
    from tests.guest.test_start_flow import APPROVE, FakeCharger

    charger = make_online(ChargerFactory(station_id="RS-GUEST", access_mode="guest"))
    # A guest hold is priced from the rate (no rate, no guest start).
    Rate.objects.create(
        property=charger.property,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.40"),
    )
    fake = FakeCharger()
    monkeypatch.setattr(guest_services, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    gs = guest_services.guest_start(
        charger=charger, connector_id=1, email="g@example.com", payment_method=APPROVE
    )
    decision = AuthorizationDecision.objects.get(station_id="RS-GUEST")
    assert (
        decision.uid == gs.id_tag
        and decision.context == "remote_app"
        and decision.status == "Accepted"
    )
    assert decision.connector_id == 1 and decision.token_id == gs.token_id
