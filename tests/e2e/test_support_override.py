"""End to end: a support agent starts an override session from a ticket in the admin, over HTTP to
the real server, while a charger on a real websocket answers RemoteStartTransaction and starts the
transaction; the session is real and linked from the ticket (seed 003 §9, issue 16)."""

import asyncio
import base64
import json
import re
from datetime import UTC, datetime

import httpx
import pytest
import websockets

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, Command
from support.models import Ticket
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.e2e


def _setup():
    prop = PropertyFactory(name="Lakeside")
    charger = ChargerFactory(property=prop, station_id="OVR-001", security_profile=1)
    charger.set_ocpp_password("ovr-password-0123456")
    charger.save()
    UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)
    ticket = Ticket.objects.create(
        email="guest@example.com",
        message="my guest can't start a charge",
        topic="guest_start",
        source="assistant",
        station_id="OVR-001",
        charger=charger,
        property=prop,
        organization=prop.organization,
    )
    return charger, ticket


async def _admin_session(http: httpx.AsyncClient) -> None:
    await http.get("/admin/login/")
    response = await http.post(
        "/admin/login/?next=/admin/",
        data={
            "username": "agent@example.com",
            "password": "secret-pass-123",
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.text[:500]


def test_override_start_from_a_ticket_starts_a_real_linked_session(live_server_proc):
    charger, ticket = _setup()
    toolkit = f"/admin/support/ticket/{ticket.pk}/toolkit/"
    auth = base64.b64encode(b"OVR-001:ovr-password-0123456").decode()
    seen: dict = {}

    async def charger_side(ws):
        # Answer the portal's RemoteStartTransaction, then start the transaction it asked for, as a
        # charger does (OCPP 1.6 §5.11: Accepted, then StartTransaction with the given idTag).
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame[0] == 2 and frame[2] == "RemoteStartTransaction":
                seen["remote_start"] = frame[3]
                await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
                break
        await ws.send(
            json.dumps(
                [
                    2,
                    "st-1",
                    "StartTransaction",
                    {
                        "connectorId": frame[3].get("connectorId", 1),
                        "idTag": frame[3]["idTag"],
                        "meterStart": 1000,
                        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    },
                ]
            )
        )
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply[0] == 3 and reply[1] == "st-1":
                seen["start"] = reply[2]
                return

    async def agent_side(http):
        page = await http.get(toolkit)
        assert page.status_code == 200 and 'name="override-charger"' in page.text
        response = await http.post(
            toolkit,
            data={
                "csrfmiddlewaretoken": http.cookies["csrftoken"],
                "action": "override",
                "override-action": "override",
                "override-charger": str(charger.pk),
                "override-connector_id": "1",
                "override-uid": "",
            },
        )
        assert response.status_code == 302, response.text[:2000]  # done: back to the toolkit

    async def scenario():
        ws = await websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/OVR-001",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": f"Basic {auth}"},
        )
        await ws.send(
            json.dumps(
                [
                    2,
                    "b1",
                    "BootNotification",
                    {"chargePointVendor": "RawCo", "chargePointModel": "R1"},
                ]
            )
        )
        assert json.loads(await ws.recv())[2]["status"] == "Accepted"
        await ws.send(
            json.dumps(
                [
                    2,
                    "s1",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"},
                ]
            )
        )
        await ws.recv()
        async with httpx.AsyncClient(base_url=live_server_proc.url, timeout=40) as http:
            await _admin_session(http)
            await asyncio.gather(charger_side(ws), agent_side(http))
            # The toolkit now links the session started with the override token.
            for _ in range(50):
                page = (await http.get(toolkit)).text
                if "Sessions started with the override token" in page:
                    break
                await asyncio.sleep(0.1)
            seen["page"] = page
        await ws.close()

    asyncio.run(scenario())

    id_tag = f"SUPPORT-{ticket.reference}"
    assert seen["remote_start"]["idTag"] == id_tag and seen["remote_start"]["connectorId"] == 1
    assert seen["start"]["idTagInfo"]["status"] == "Accepted"
    session = ChargingSession.objects.get(charger=charger, id_tag=id_tag)
    assert session.transaction_id == seen["start"]["transactionId"]
    ticket.refresh_from_db()
    override = ticket.details["override"]
    assert (override["station_id"], override["id_tag"], override["result"]) == (
        "OVR-001",
        id_tag,
        "Accepted",
    )
    assert Command.objects.get(pk=override["command_id"]).action == "RemoteStartTransaction"
    assert AuthorizationDecision.objects.filter(uid=id_tag, status="Accepted").exists()
    assert re.search(rf'href="/admin/chargers/chargingsession/{session.pk}/change/"', seen["page"])
    assert (
        f"Override start at OVR-001/1 with {id_tag}: charger answered Accepted"
        in ticket.agent_notes
    )
