"""End to end, OCPP 2.0.1: the real server process, a Charging Station written from the OCPP-J
2.0.1 text (raw JSON arrays over the plain `websockets` client, no OCPP library), and the REST API.

The issue's acceptance: it boots, authorizes a known token (Accepted) and an unknown one (Unknown,
with the recorded reason), runs TransactionEvent Started/Updated/Ended including an offline-queued
Updated that arrives after Ended; the API shows it online, its session with energy and cost and its
frames in the Logs; RequestStartTransaction from the API starts it.
"""

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import websockets

from billing.models import Rate
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = pytest.mark.e2e

STATION = "E2E-201"
PASSWORD = "e2e-password-201-abcdef"


class Station201:
    """Sends CALLs and answers the CSMS's CALLs (OCPP-J 2.0.1 part 4 §4.2) as they come."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.received_calls: list[list] = []
        self.answers = {
            "GetBaseReport": {"status": "Accepted"},
            "RequestStartTransaction": {"status": "Accepted"},
        }

    async def _next(self) -> list:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 15))
        if message[0] == 2:  # a CALL from the CSMS
            self.received_calls.append(message)
            await self.ws.send(json.dumps([3, message[1], self.answers.get(message[2], {})]))
        return message

    async def call(self, action: str, payload: dict) -> list:
        self.n += 1
        message_id = f"cs201-{self.n}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        while True:
            message = await self._next()
            if message[0] in (3, 4) and message[1] == message_id:
                return message

    async def wait_for_call(self, action: str) -> list:
        while True:
            found = [c for c in self.received_calls if c[2] == action]
            if found:
                return found[-1]
            await self._next()


def tx(event_type, seq_no, timestamp, *, trigger, wh=None, id_token=None, offline=None, **info):
    payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "e2e-tx-1", **info},
        "evse": {"id": 1, "connectorId": 1},
    }
    if id_token:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if offline is not None:
        payload["offline"] = offline
    if wh is not None:
        payload["meterValue"] = [
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ]
    return payload


def _setup():
    prop = PropertyFactory()
    membership = MembershipFactory(organization=prop.organization, role="owner")
    charger = ChargerFactory(property=prop, station_id=STATION, security_profile=1)
    charger.set_ocpp_password(PASSWORD)
    charger.save()
    TokenFactory(uid="CAFE0201", organization=prop.organization)
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.30"),
    )
    return membership.user


async def _api(base, user) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=40)
    token = (
        await http.post(
            "/api/v1/auth/token/", json={"username": user.username, "password": "secret-pass-123"}
        )
    ).json()["token"]
    http.headers["Authorization"] = f"Token {token}"
    return http


def test_a_201_charger_from_the_spec_text_works_end_to_end(live_server_proc):
    user = _setup()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()}

    async def scenario():
        ws = await websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/{STATION}",
            subprotocols=["ocpp2.0.1", "ocpp1.6"],
            additional_headers=auth,
        )
        assert ws.subprotocol == "ocpp2.0.1"
        cs = Station201(ws)
        boot = await cs.call(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "model": "Spec201",
                    "vendorName": "RawWorks",
                    "firmwareVersion": "2.0.1-e2e",
                },
            },
        )
        assert boot[0] == 3 and boot[2]["status"] == "Accepted" and boot[2]["interval"] > 0
        # B07: the first boot of a charger whose device model we lack is followed by GetBaseReport.
        report = await cs.wait_for_call("GetBaseReport")
        assert report[3]["reportBase"] == "FullInventory"
        assert (
            await cs.call(
                "NotifyReport",
                {
                    "requestId": report[3]["requestId"],
                    "generatedAt": "2026-11-21T07:59:00Z",
                    "seqNo": 0,
                    "reportData": [
                        {
                            "component": {"name": "OCPPCommCtrl"},
                            "variable": {"name": "HeartbeatInterval"},
                            "variableAttribute": [{"value": "60"}],
                        }
                    ],
                },
            )
        )[0] == 3
        assert (
            await cs.call(
                "StatusNotification",
                {
                    "timestamp": "2026-11-21T08:00:00Z",
                    "connectorStatus": "Available",
                    "evseId": 1,
                    "connectorId": 1,
                },
            )
        )[0] == 3
        known = await cs.call("Authorize", {"idToken": {"idToken": "CAFE0201", "type": "ISO14443"}})
        assert known[2] == {"idTokenInfo": {"status": "Accepted"}}
        unknown = await cs.call(
            "Authorize", {"idToken": {"idToken": "UNKNOWN201", "type": "ISO14443"}}
        )
        assert unknown[2] == {"idTokenInfo": {"status": "Unknown"}}

        started = await cs.call(
            "TransactionEvent",
            tx(
                "Started",
                0,
                "2026-11-21T08:00:00Z",
                trigger="Authorized",
                wh=10000,
                id_token="CAFE0201",
                chargingState="Charging",
            ),
        )
        assert started[2] == {"idTokenInfo": {"status": "Accepted"}}
        assert (
            await cs.call(
                "TransactionEvent",
                tx("Updated", 1, "2026-11-21T08:20:00Z", trigger="MeterValuePeriodic", wh=12000),
            )
        )[0] == 3
        ended = await cs.call(
            "TransactionEvent",
            tx(
                "Ended",
                3,
                "2026-11-21T09:00:00Z",
                trigger="EVDeparted",
                stoppedReason="EVDisconnected",
            ),
        )
        assert ended[0] == 3
        # Queued while the charger was offline, delivered after the Ended: accepted, and counted.
        late = await cs.call(
            "TransactionEvent",
            tx(
                "Updated",
                2,
                "2026-11-21T08:50:00Z",
                trigger="MeterValuePeriodic",
                wh=16250,
                offline=True,
            ),
        )
        assert late[0] == 3 and late[2] == {}

        http = await _api(live_server_proc.url, user)
        try:
            charger = (await http.get(f"/api/v1/chargers/{STATION}/")).json()
            assert charger["status"] == "online" and charger["ocpp_version"] == "2.0.1"
            assert (charger["vendor"], charger["model"], charger["firmware_version"]) == (
                "RawWorks",
                "Spec201",
                "2.0.1-e2e",
            )
            assert charger["connectors"][0]["status"] == "Available"
            sessions = (await http.get("/api/v1/sessions/", params={"station_id": STATION})).json()[
                "results"
            ]
            assert len(sessions) == 1
            session = sessions[0]
            assert session["status"] == "completed" and session["stop_reason"] == "EVDisconnected"
            assert session["energy_kwh"] == "6.250" and session["id_tag"] == "CAFE0201"
            assert session["started_at"].startswith("2026-11-21T08:00:00")
            assert Decimal(session["cost"]["total"]) == Decimal("1.88")  # 6.25 kWh x 0.30
            decisions = (
                await http.get("/api/v1/authorizations/", params={"uid": "UNKNOWN201"})
            ).json()["results"]
            assert [(d["reason"], d["ocpp_unique_id"]) for d in decisions] == [
                ("unknown_token", unknown[1])
            ]
            deadline = time.monotonic() + 5
            while True:  # the log is written in batches a few ms after the frame
                logs = (
                    await http.get(
                        f"/api/v1/chargers/{STATION}/logs/",
                        params={"action": "TransactionEvent", "limit": 100},
                    )
                ).json()["results"]
                if len(logs) >= 8 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert len(logs) == 8 and {row["direction"] for row in logs} == {"in", "out"}

            # RequestStartTransaction from the API starts it (F01), through the authorization engine.
            request = asyncio.create_task(
                http.post(
                    f"/api/v1/chargers/{STATION}/commands/RequestStartTransaction/",
                    json={"idToken": {"idToken": "CAFE0201", "type": "ISO14443"}, "evseId": 1},
                )
            )
            call = await cs.wait_for_call("RequestStartTransaction")
            response = await request
            assert response.status_code == 200 and response.json()["status"] == "Accepted"
            remote = await cs.call(
                "TransactionEvent",
                {
                    **tx(
                        "Started",
                        0,
                        "2026-11-21T10:00:00Z",
                        trigger="RemoteStart",
                        wh=16250,
                        id_token="CAFE0201",
                        remoteStartId=call[3]["remoteStartId"],
                    ),
                    "transactionInfo": {
                        "transactionId": "e2e-tx-2",
                        "remoteStartId": call[3]["remoteStartId"],
                    },
                },
            )
            assert remote[2] == {"idTokenInfo": {"status": "Accepted"}}
            active = (
                await http.get(
                    "/api/v1/sessions/", params={"station_id": STATION, "status": "active"}
                )
            ).json()
            assert len(active["results"]) == 1 and active["results"][0]["started_at"].startswith(
                "2026-11-21T10:00"
            )
        finally:
            await http.aclose()
        await ws.close()

    asyncio.run(scenario())
