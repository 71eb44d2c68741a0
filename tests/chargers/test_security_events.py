"""SecurityEventNotification is answered, stored once and shown; critical events reach the
dashboard. LogStatusNotification / SignedFirmwareStatusNotification follow the operations a
GetLog / SignedUpdateFirmware started, with their status history."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse
from rest_framework.test import APIClient

from chargers.models import ChargerOperation, SecurityEvent
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def setup(station_id: str):
    charger = await sync_to_async(ChargerFactory)(station_id=station_id)
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    return charger, owner, client


async def test_events_are_answered_stored_once_and_critical_ones_flagged():
    charger, owner, client = await setup("SE-1")
    event = {
        "type": "TamperDetectionActivated",
        "timestamp": "2026-11-21T08:00:00Z",
        "techInfo": "lid opened",
    }
    assert await client.result("SecurityEventNotification", event) == {}
    assert (
        await client.result("SecurityEventNotification", event) == {}
    )  # its answer was lost: sent again
    assert (
        await client.result(
            "SecurityEventNotification",
            {"type": "VendorSpecificThing", "timestamp": "2026-11-21T08:01:00Z"},
        )
        == {}
    )
    rows = [e async for e in SecurityEvent.objects.filter(charger=charger).order_by("timestamp")]
    assert [(e.event_type, e.critical, e.tech_info) for e in rows] == [
        ("TamperDetectionActivated", True, "lid opened"),
        ("VendorSpecificThing", False, ""),
    ]
    await client.close()

    web = AsyncClient()
    await web.aforce_login(owner)
    dashboard = (await web.get(reverse("backoffice:dashboard"))).content.decode()
    assert "Security: TamperDetectionActivated" in dashboard
    security_tab = (
        await web.get(reverse("chargers:charger-security", args=["SE-1"]))
    ).content.decode()
    assert "lid opened" in security_tab and "VendorSpecificThing" in security_tab
    overview = (await web.get(reverse("chargers:charger-detail", args=["SE-1"]))).content.decode()
    assert "1 critical in the last 7 days" in overview


async def test_a_malformed_event_gets_a_call_error():
    _, _, client = await setup("SE-2")
    reply = await client.call("SecurityEventNotification", {"type": "X"})
    assert reply[0] == 4 and reply[2] == "OccurenceConstraintViolation"
    await client.close()


async def answer_next(client, action: str, response: dict) -> dict:
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == action, call
    await client.send([3, call[1], response])
    return call[3]


async def test_a_log_upload_is_followed_through_its_notifications():
    charger, owner, client = await setup("LOG-1")
    api = APIClient()
    api.force_authenticate(owner)
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/LOG-1/commands/GetLog/",
            {"logType": "SecurityLog", "log": {"remoteLocation": "https://logs.example/upload"}},
            format="json",
        )
    )
    sent = await answer_next(client, "GetLog", {"status": "Accepted", "filename": "security.log"})
    response = (await request).json()
    assert response["status"] == "Accepted" and response["requestId"] == sent["requestId"]
    for status in ("Uploading", "Uploaded"):
        assert (
            await client.result(
                "LogStatusNotification", {"status": status, "requestId": sent["requestId"]}
            )
            == {}
        )
    await client.close()

    operations = (await sync_to_async(api.get)("/api/v1/chargers/LOG-1/operations/")).json()
    assert len(operations) == 1
    assert operations[0]["kind"] == "log" and operations[0]["status"] == "Uploaded"
    assert operations[0]["details"]["filename"] == "security.log"
    assert [h["status"] for h in operations[0]["history"]] == [
        "Requested",
        "Accepted",
        "Uploading",
        "Uploaded",
    ]


async def test_a_signed_firmware_update_is_followed_even_without_request_ids():
    charger, owner, client = await setup("FW-1")
    api = APIClient()
    api.force_authenticate(owner)
    firmware = {
        "location": "https://fw.example/v2.bin",
        "retrieveDateTime": "2026-11-21T08:00:00Z",
        "signingCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "signature": "c2ln",
    }
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/FW-1/commands/SignedUpdateFirmware/",
            {"requestId": 42, "firmware": firmware},
            format="json",
        )
    )
    await answer_next(client, "SignedUpdateFirmware", {"status": "Accepted"})
    await request
    await client.result(
        "SignedFirmwareStatusNotification", {"status": "Downloading", "requestId": 42}
    )
    # Edition 3 made requestId optional: the charger's latest firmware update is meant.
    await client.result("SignedFirmwareStatusNotification", {"status": "SignatureVerified"})
    await client.result(
        "SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 42}
    )
    await client.close()
    operation = await ChargerOperation.objects.aget(charger=charger)
    history = [h.status async for h in operation.history.all()]
    assert history == ["Requested", "Accepted", "Downloading", "SignatureVerified", "Installed"]
    assert (
        operation.status == "Installed"
        and operation.details["location"] == "https://fw.example/v2.bin"
    )


async def test_the_security_tab_starts_a_log_upload_through_the_command_path():
    charger, owner, client = await setup("LOG-PORTAL")
    web = AsyncClient()
    await web.aforce_login(owner)
    url = reverse("chargers:charger-security-action", args=["LOG-PORTAL"])
    invalid = await web.post(
        url, {"what": "log", "log_type": "SecurityLog", "remote_location": "not a url"}
    )
    assert invalid.status_code == 400
    request = asyncio.create_task(
        web.post(
            url,
            {
                "what": "log",
                "log_type": "SecurityLog",
                "remote_location": "https://logs.example/up",
            },
        )
    )
    sent = await answer_next(client, "GetLog", {"status": "Accepted", "filename": "s.log"})
    assert (await request).status_code == 302
    assert sent["logType"] == "SecurityLog" and sent["log"] == {
        "remoteLocation": "https://logs.example/up"
    }
    await client.result(
        "LogStatusNotification", {"status": "Uploaded", "requestId": sent["requestId"]}
    )
    request = asyncio.create_task(web.post(url, {"what": "renew_certificate"}))
    trigger = await answer_next(client, "ExtendedTriggerMessage", {"status": "Accepted"})
    assert trigger == {"requestedMessage": "SignChargePointCertificate"}
    await request
    await client.close()
    page = (
        await web.get(reverse("chargers:charger-security", args=["LOG-PORTAL"]))
    ).content.decode()
    assert "Requested → " in page and "Uploaded" in page
