"""Issue 46 item 3: the host asks a connected charger for its meters' keys (1.6 GetConfiguration
of `MeterPublicKey[ConnectorID]`, OCA note 3.3.1; 2.0.1 GetVariables of FiscalMetering.PublicKey,
4.3.2) over the real socket; what it reports is kept unconfirmed."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.models import Charger, Connector, DeviceVariable
from metering.models import MeterKey
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory
from tests.metering.signing import Meter
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def _setup(station_id: str, version: str):
    charger = await sync_to_async(ChargerFactory)(station_id=station_id, ocpp_version=version)
    await Connector.objects.acreate(charger=charger, connector_id=1, status="Available")
    await Connector.objects.acreate(charger=charger, connector_id=2, status="Available")
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    api = APIClient()
    api.force_authenticate(owner)
    subprotocol = "ocpp2.0.1" if version == Charger.OcppVersion.V201 else "ocpp1.6"
    client = OcppTestClient(station_id, subprotocols=(subprotocol,))
    assert (await client.connect())[0]
    return charger, api, client


def _read(api, station_id: str):
    return asyncio.create_task(
        sync_to_async(api.post)(f"/api/v1/chargers/{station_id}/meter-keys/read-from-charger/")
    )


async def test_a_1_6_charger_reports_its_meter_keys_and_they_stay_unconfirmed():
    meter = Meter(serial="")
    charger, api, client = await _setup("MK-16", Charger.OcppVersion.V16)
    request = _read(api, "MK-16")
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetConfiguration"
    assert call[3] == {"key": ["MeterPublicKey1", "MeterPublicKey2"]}
    await client.send(
        [
            3,
            call[1],
            {
                "configurationKey": [
                    {"key": "MeterPublicKey1", "readonly": True, "value": meter.public_key_oca}
                ],
                "unknownKey": ["MeterPublicKey2"],
            },
        ]
    )
    response = await request
    await client.close()
    assert response.status_code == 200, response.content
    assert [(k["connector_id"], k["source"], k["confirmed"]) for k in response.json()] == [
        (1, "charger", False)
    ]
    key = await MeterKey.objects.aget(charger=charger)
    assert bytes(key.public_key) == meter.public_key_der and key.confirmed_at is None


async def test_a_2_0_1_charger_reports_its_meter_keys_per_evse():
    meter = Meter(serial="")
    charger, api, client = await _setup("MK-201", Charger.OcppVersion.V201)
    # Its device model says how many variables one GetVariables may carry (B06.FR.05).
    await DeviceVariable.objects.acreate(
        charger=charger,
        component="DeviceDataCtrlr",
        variable="ItemsPerMessage",
        variable_instance="GetVariables",
        value="8",
    )
    request = _read(api, "MK-201")
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetVariables"
    asked = call[3]["getVariableData"]
    assert [(d["component"]["evse"]["id"], d["variable"]["name"]) for d in asked] == [
        (1, "PublicKey"),
        (2, "PublicKey"),
    ]
    await client.send(
        [
            3,
            call[1],
            {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": meter.public_key_hex,
                        "component": {"name": "FiscalMetering", "evse": {"id": 2}},
                        "variable": {"name": "PublicKey"},
                    },
                    {
                        "attributeStatus": "UnknownComponent",
                        "component": {"name": "FiscalMetering", "evse": {"id": 1}},
                        "variable": {"name": "PublicKey"},
                    },
                ]
            },
        ]
    )
    response = await request
    await client.close()
    assert response.status_code == 200, response.content
    assert [(k["evse_id"], k["confirmed"]) for k in response.json()] == [(2, False)]
    assert await MeterKey.objects.filter(charger=charger, evse_id=2).aexists()


async def test_read_from_an_offline_charger_says_so():
    charger = await sync_to_async(ChargerFactory)(station_id="MK-OFF")
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    api = APIClient()
    api.force_authenticate(owner)
    response = await sync_to_async(api.post)(
        "/api/v1/chargers/MK-OFF/meter-keys/read-from-charger/"
    )
    assert response.status_code == 409
    assert "offline" in response.json()["detail"]


async def test_the_portal_tab_reads_keys_from_a_connected_charger():
    """Issue 51 item 2: the Meter keys tab's "Read keys from the charger" asks the same way."""
    from django.test import Client

    meter = Meter(serial="")
    charger, api, client = await _setup("MK-PORTAL", Charger.OcppVersion.V16)
    owner = await sync_to_async(lambda: charger.property.organization.memberships.first().user)()
    portal = Client()
    await sync_to_async(portal.force_login)(owner)
    url = "/chargers/MK-PORTAL/meter-keys/"
    request = asyncio.create_task(sync_to_async(portal.post)(f"{url}read/", follow=True))
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetConfiguration"
    await client.send(
        [
            3,
            call[1],
            {"configurationKey": [{"key": "MeterPublicKey2", "value": meter.public_key_oca}]},
        ]
    )
    response = await request
    await client.close()
    html = response.content.decode()
    assert "The charger reported 1 key" in html and "Connector 2" in html
    key = await MeterKey.objects.aget(charger=charger)
    assert (key.connector_id, key.source, key.confirmed_at) == (2, "charger", None)
