"""OCPP 2.0.1 on the one endpoint: subprotocol negotiation, BootNotification, Heartbeat, StatusNotification."""

import pytest

from chargers.messagelog.log import writer
from chargers.models import Connector, OcppMessage, StatusEvent
from tests.ocpp_client import OcppTestClient

from .conftest import BOOT, TS, connect201

pytestmark = pytest.mark.django_db(transaction=True)


async def test_charger_offering_both_gets_201_and_the_version_is_stored(charger):
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp1.6", "ocpp2.0.1"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp2.0.1"
    await client.close()
    await charger.arefresh_from_db()
    assert charger.ocpp_version == "2.0.1"


async def test_16_charger_still_gets_16(charger):
    charger.ocpp_version = "2.0.1"
    await charger.asave()
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp1.6"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp1.6"
    await client.close()
    await charger.arefresh_from_db()
    assert charger.ocpp_version == "1.6"


async def test_unsupported_subprotocol_completes_then_closes(charger):
    # OCPP-J 2.0.1 part 4 §3.2: no agreed subprotocol -> handshake without one, then closed.
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.0"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol is None
    assert (await client.communicator.receive_output(timeout=5))["type"] == "websocket.close"


async def test_password_rules_apply_to_201(charger):
    from asgiref.sync import sync_to_async

    await sync_to_async(charger.set_ocpp_password)("correct-horse-battery")
    charger.security_profile = 1
    await charger.asave()
    assert not (await OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.0.1"]).connect())[0]
    assert not (
        await OcppTestClient(
            "CP-TEST-1", subprotocols=["ocpp2.0.1"], password="wrong-password-123"
        ).connect()
    )[0]
    client = await connect201(password="correct-horse-battery")
    await client.close()


async def test_boot_heartbeat_status_are_stored_and_logged(charger):
    client = await connect201()
    boot = await client.result("BootNotification", BOOT)
    assert (
        boot["status"] == "Accepted" and boot["interval"] > 0 and boot["currentTime"].endswith("Z")
    )
    assert (await client.result("Heartbeat", {}))["currentTime"].endswith("Z")
    status = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
    assert await client.result("StatusNotification", status) == {}
    await charger.arefresh_from_db()
    assert (charger.vendor, charger.model, charger.serial_number, charger.firmware_version) == (
        "VendorX",
        "SingleSocketCharger",
        "SN-201",
        "1.2.3",
    )
    assert charger.is_online()
    connector = await Connector.objects.aget(charger=charger, connector_id=1)
    # The EVSE is the port; its first plug goes unsaid, another plug is named.
    assert (connector.status, connector.info) == ("Occupied", "")
    second_plug = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 2, "connectorId": 2}
    assert await client.result("StatusNotification", second_plug) == {}
    assert (await Connector.objects.aget(charger=charger, connector_id=2)).info == "plug 2"
    assert await StatusEvent.objects.filter(
        charger=charger, connector_id=1, status="Occupied"
    ).aexists()
    await client.close()
    await writer.flush()
    actions = [
        m
        async for m in OcppMessage.objects.filter(charger=charger).values_list(
            "action", "direction"
        )
    ]
    assert ("BootNotification", "in") in actions and ("BootNotification", "out") in actions
    assert ("StatusNotification", "out") in actions


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
async def test_pending_or_rejected_station_gets_security_error_except_boot(charger, status):
    charger.registration_status = status
    await charger.asave()
    client = await connect201()
    boot = await client.result("BootNotification", BOOT)
    assert boot["status"] == status and boot["interval"] > 0
    reply = await client.call("Heartbeat", {})
    # B02.FR.09 / B03.FR.07
    assert reply[0] == 4 and reply[2] == "SecurityError"
    await client.close()


async def test_pending_station_may_send_the_report_it_was_asked_for(charger):
    charger.registration_status = "Pending"
    await charger.asave()
    client = await connect201()
    report = {
        "requestId": 1,
        "generatedAt": TS,
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "OCPPCommCtrl"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [
                    {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
                ],
            }
        ],
    }
    assert await client.result("NotifyReport", report) == {}
    await client.close()
