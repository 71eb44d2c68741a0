"""What else a 2.0.1 charger sends: NotifyReport (device model, GetBaseReport after the first boot),
NotifyEvent, SecurityEventNotification, FirmwareStatusNotification, LogStatusNotification, DataTransfer."""

import pytest

from chargers.models import ChargerEvent, ChargerOperation, Command, DeviceVariable, SecurityEvent
from chargers.state import charger as connection_state
from tests.bounds import GENEROUS_S

from .conftest import BOOT, TS, connect201

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = {
    "requestId": 7,
    "generatedAt": TS,
    "seqNo": 0,
    "tbc": False,
    "reportData": [
        {
            "component": {"name": "OCPPCommCtrl"},
            "variable": {"name": "HeartbeatInterval"},
            "variableAttribute": [
                {"type": "Actual", "value": "300", "mutability": "ReadWrite", "persistent": True}
            ],
            "variableCharacteristics": {
                "dataType": "integer",
                "unit": "s",
                "supportsMonitoring": False,
            },
        },
        {
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "ConnectorType"},
            "variableAttribute": [{"value": "cType2", "mutability": "ReadOnly"}],
            "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False},
        },
        {
            "component": {"name": "VendorThing", "instance": "a"},
            "variable": {"name": "Mood"},
            "variableAttribute": [
                {"type": "Actual", "value": "happy"},
                {"type": "Target", "value": "ecstatic"},
            ],
            "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False},
        },
    ],
}


async def test_notify_report_is_stored_per_component_variable_and_attribute(charger):
    client = await connect201()
    assert await client.result("NotifyReport", REPORT) == {}
    rows = {
        (r.component, r.evse_id, r.connector_id, r.variable, r.attribute_type): r
        async for r in DeviceVariable.objects.filter(charger=charger)
    }
    assert len(rows) == 4
    heartbeat = rows[("OCPPCommCtrl", 0, 0, "HeartbeatInterval", "Actual")]
    assert (
        heartbeat.value,
        heartbeat.mutability,
        heartbeat.data_type,
        heartbeat.unit,
        heartbeat.standardized,
    ) == ("300", "ReadWrite", "integer", "s", True)
    assert (heartbeat.persistent, heartbeat.constant) == (True, False)
    connector_type = rows[("Connector", 1, 1, "ConnectorType", "Actual")]
    # Left out of the report: the schema's defaults (false), not unknown.
    assert connector_type.standardized and (connector_type.persistent, connector_type.constant) == (
        False,
        False,
    )
    assert not rows[("VendorThing", 0, 0, "Mood", "Target")].standardized
    # A newer report replaces the value, it does not add a row.
    newer = {
        **REPORT,
        "reportData": [{**REPORT["reportData"][0], "variableAttribute": [{"value": "60"}]}],
    }
    await client.result("NotifyReport", newer)
    assert await DeviceVariable.objects.filter(charger=charger).acount() == 4
    await heartbeat.arefresh_from_db()
    assert heartbeat.value == "60"
    await client.close()


async def test_a_report_naming_an_attribute_twice_keeps_the_later_value(charger):
    """One upsert per report: an attribute repeated within it must not fail the statement."""
    client = await connect201()
    item = REPORT["reportData"][0]
    twice = {
        **REPORT,
        "reportData": [item, {**item, "variableAttribute": [{"type": "Actual", "value": "90"}]}],
    }
    assert await client.result("NotifyReport", twice) == {}
    values = [
        v
        async for v in DeviceVariable.objects.filter(charger=charger).values_list(
            "value", flat=True
        )
    ]
    assert values == ["90"]
    await client.close()


async def test_a_report_with_text_the_database_cannot_hold_is_stored_escaped(charger):
    client = await connect201()
    report = {
        **REPORT,
        "reportData": [
            {
                "component": {"name": "Vendor\u0000Box"},
                "variable": {"name": "Mood\ud800"},
                "variableAttribute": [{"value": "x\u0000y"}],
            }
        ],
    }
    assert await client.result("NotifyReport", report) == {}
    row = await DeviceVariable.objects.aget(charger=charger)
    assert (row.component, row.variable, row.value) == (
        "Vendor\\u0000Box",
        "Mood\\ud800",
        "x\\u0000y",
    )
    await client.close()


async def test_first_accepted_boot_asks_for_the_base_report_once(charger, settings):
    settings.OCPP_BASE_REPORT_AFTER_BOOT = True
    client = await connect201()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == "GetBaseReport" and call[3]["reportBase"] == "FullInventory"
    await client.send([3, call[1], {"status": "Accepted"}])
    assert await client.result("NotifyReport", {**REPORT, "requestId": call[3]["requestId"]}) == {}
    # Known device model: the next boot does not ask again, and learns that with the boot itself
    # (no follow-up read of its own: after a deploy every charger boots at once).
    checks = connection_state._device_models.batches
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    assert await client.communicator.receive_nothing(timeout=1)
    assert connection_state._device_models.batches == checks
    assert await Command.objects.filter(charger=charger, action="GetBaseReport").acount() == 1
    await client.close()


async def test_notify_event_is_stored_once(charger):
    client = await connect201()
    event = {
        "generatedAt": TS,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 11,
                "timestamp": TS,
                "trigger": "Delta",
                "actualValue": "Occupied",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
                "eventNotificationType": "HardWiredNotification",
            }
        ],
    }
    assert await client.result("NotifyEvent", event) == {}
    assert await client.result("NotifyEvent", event) == {}  # answer lost, sent again
    stored = await ChargerEvent.objects.aget(charger=charger)
    assert (stored.component, stored.variable, stored.actual_value, stored.trigger) == (
        "Connector",
        "AvailabilityState",
        "Occupied",
        "Delta",
    )
    await client.close()


async def test_security_firmware_and_log_notifications_are_kept(charger):
    client = await connect201()
    assert (
        await client.result(
            "SecurityEventNotification",
            {"type": "StartupOfTheDevice", "timestamp": TS, "techInfo": "cold boot"},
        )
        == {}
    )
    assert (
        await client.result("FirmwareStatusNotification", {"status": "Downloading", "requestId": 3})
        == {}
    )
    assert (
        await client.result("LogStatusNotification", {"status": "Uploading", "requestId": 4}) == {}
    )
    event = await SecurityEvent.objects.aget(charger=charger)
    assert event.event_type == "StartupOfTheDevice" and event.critical
    kinds = {
        (o.kind, o.request_id, o.status)
        async for o in ChargerOperation.objects.filter(charger=charger)
    }
    assert kinds == {("firmware", 3, "Downloading"), ("log", 4, "Uploading")}
    await client.close()


async def test_data_transfer_is_answered_unknown_vendor(charger):
    client = await connect201()
    assert await client.result("DataTransfer", {"vendorId": "com.example"}) == {
        "status": "UnknownVendorId"
    }
    await client.close()


async def test_certificate_status_of_an_issuer_we_do_not_know_fails(charger):
    client = await connect201()
    # M06.FR.04: the status could not be had (its issuer is no CA the organization installed,
    # so its responder is not even asked; tests/pki/test_plug_and_charge.py).
    reply = await client.call(
        "GetCertificateStatus",
        {
            "ocspRequestData": {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": "a1" * 32,
                "issuerKeyHash": "b2" * 32,
                "serialNumber": "01",
                "responderURL": "http://ocsp.example.com",
            }
        },
    )
    assert reply[0] == 3 and reply[2]["status"] == "Failed" and "ocspResult" not in reply[2]
    await client.close()
