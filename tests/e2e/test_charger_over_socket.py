"""End to end: the real server process, a charger over a real websocket, the REST API over HTTP.

The charger here is written from the OCPP-J text with the plain `websockets` client
(not the `ocpp` package), as the issue's acceptance check does.
"""

import asyncio
import base64
import json
import time

import httpx
import pytest
import websockets

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = pytest.mark.e2e


class RawCharger:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0

    async def call(self, action, payload):
        self.n += 1
        uid = f"e2e-{self.n}"
        await self.ws.send(json.dumps([2, uid, action, payload]))
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert reply[1] == uid
        return reply

    async def raw(self, text):
        await self.ws.send(text)
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))


def _auth(station_id, password):
    return {
        "Authorization": "Basic " + base64.b64encode(f"{station_id}:{password}".encode()).decode()
    }


def _setup():
    prop = PropertyFactory()
    membership = MembershipFactory(organization=prop.organization, role="owner")
    charger = ChargerFactory(property=prop, station_id="E2E-001", security_profile=1)
    charger.set_ocpp_password("e2e-password-0123456")
    charger.save()
    TokenFactory(uid="CAFE0001", organization=prop.organization)
    return membership.user


def test_charger_lifecycle_visible_through_the_api(live_server_proc):
    user = _setup()
    base = live_server_proc.url
    ws_base = live_server_proc.ws_url

    async def scenario():
        # Refused: unknown identity (404) and wrong password (401), before any upgrade.
        with pytest.raises(websockets.InvalidStatus) as unknown:
            await websockets.connect(f"{ws_base}/ocpp/NOPE-1", subprotocols=["ocpp1.6"])
        assert unknown.value.response.status_code == 404
        with pytest.raises(websockets.InvalidStatus) as wrong:
            await websockets.connect(
                f"{ws_base}/ocpp/E2E-001",
                subprotocols=["ocpp1.6"],
                additional_headers=_auth("E2E-001", "nope-nope-nope-nope"),
            )
        assert wrong.value.response.status_code == 401

        ws = await websockets.connect(
            f"{ws_base}/ocpp/E2E-001",
            subprotocols=["ocpp1.6"],
            additional_headers=_auth("E2E-001", "e2e-password-0123456"),
        )
        assert ws.subprotocol == "ocpp1.6"
        cp = RawCharger(ws)
        boot = await cp.call(
            "BootNotification",
            {"chargePointVendor": "RawCo", "chargePointModel": "R1", "firmwareVersion": "0.9"},
        )
        assert boot[2]["status"] == "Accepted"
        assert "currentTime" in (await cp.call("Heartbeat", {}))[2]
        await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
        )
        assert (await cp.call("Authorize", {"idTag": "CAFE0001"}))[2]["idTagInfo"][
            "status"
        ] == "Accepted"
        assert (await cp.call("Authorize", {"idTag": "UNKNOWN9"}))[2]["idTagInfo"][
            "status"
        ] == "Invalid"
        start = await cp.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "CAFE0001",
                "meterStart": 10000,
                "timestamp": "2026-11-21T08:00:00Z",
            },
        )
        tx = start[2]["transactionId"]
        await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": "2026-11-21T08:30:00Z",
                        "sampledValue": [{"value": "13000", "unit": "Wh"}],
                    }
                ],
            },
        )
        assert (await cp.raw("{oops"))[2] == "FormationViolation"
        assert (await cp.call("Teleport", {}))[2] == "NotImplemented"
        await cp.call(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 16250,
                "timestamp": "2026-11-21T09:00:00Z",
                "reason": "EVDisconnected",
            },
        )
        await check_api(ws)

    async def check_api(ws):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            token = (
                await http.post(
                    "/api/v1/auth/token/",
                    json={"username": user.username, "password": "secret-pass-123"},
                )
            ).json()["token"]
            http.headers["Authorization"] = f"Token {token}"
            charger = (await http.get("/api/v1/chargers/E2E-001/")).json()
            assert charger["vendor"] == "RawCo" and charger["firmware_version"] == "0.9"
            assert charger["connectors"][0]["status"] == "Preparing"
            sessions = (
                await http.get("/api/v1/sessions/", params={"station_id": "E2E-001"})
            ).json()["results"]
            assert sessions[0]["energy_kwh"] == "6.250" and sessions[0]["status"] == "completed"
            deadline = time.monotonic() + 5
            while True:  # the log is written in batches a few ms after the frame
                logs = (
                    await http.get(
                        "/api/v1/chargers/E2E-001/logs/", params={"action": "StartTransaction"}
                    )
                ).json()["results"]
                if len(logs) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert {row["direction"] for row in logs} == {"in", "out"}
            by_tag = (
                await http.get("/api/v1/chargers/E2E-001/logs/", params={"search": "UNKNOWN9"})
            ).json()["results"]
            assert by_tag and all("UNKNOWN9" in json.dumps(row["payload"]) for row in by_tag)

            # While connected: online. A disconnect shows offline within 5 seconds.
            assert (await http.get("/api/v1/chargers/E2E-001/")).json()["status"] == "online"
            await ws.close()
            deadline = time.monotonic() + 5
            status = "online"
            while time.monotonic() < deadline and status != "offline":
                status = (await http.get("/api/v1/chargers/E2E-001/")).json()["status"]
                await asyncio.sleep(0.2)
            assert status == "offline"

    asyncio.run(scenario())
