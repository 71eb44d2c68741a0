"""End to end, OCPP 2.1 (issue 53 item 3): the real server process, a Charging Station offering
only `ocpp2.1`, written from the 2.1 JSON schemas of the pinned `ocpp` package (raw JSON arrays
over the plain `websockets` client), and the REST API.

It connects, boots, authorizes a known card and a 2.1-only one (a 255-character token of a free
type), runs a transaction with meter values and 2.1-only fields, is stopped remotely from the API,
and its session is priced like a 2.0.1 one: the Ended answer's totalCost is the API's cost. Every
frame in both directions is checked against its 2.1 schema.
"""

import asyncio
import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import websockets

from billing.models import Rate
from chargers.ocpp import protocol21
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = pytest.mark.e2e

STATION = "E2E-21"
PASSWORD = "e2e-password-21-abcdef"
LONG_TOKEN = "urn:vendor:pnc:" + "7F" * 120  # 255 characters: only 2.1 allows it


class Station21:
    """Sends CALLs and answers the CSMS's CALLs as they come, checking every frame against the
    2.1 schemas: our CALLs before they go, the CSMS's CALLs and CALLRESULTs as they arrive."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.received_calls: list[list] = []
        self.answers = {
            "GetBaseReport": {"status": "Accepted"},
            "RequestStopTransaction": {"status": "Accepted"},
        }

    async def _next(self) -> list:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if message[0] == 2:  # a CALL from the CSMS: a 2.1 action with a valid 2.1 payload
            protocol21.check_outgoing(message[2], message[3])
            self.received_calls.append(message)
            answer = self.answers.get(message[2], {})
            protocol21.RESPONSE_VALIDATORS[message[2]](answer)
            await self.ws.send(json.dumps([3, message[1], answer]))
        return message

    async def call(self, action: str, payload: dict) -> list:
        protocol21.check_call(action, payload)
        self.n += 1
        message_id = f"cs21-{self.n}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        while True:
            message = await self._next()
            if message[0] in (3, 4) and message[1] == message_id:
                if message[0] == 3:
                    protocol21.RESPONSE_VALIDATORS[action](message[2])
                return message

    async def wait_for_call(self, action: str) -> list:
        while True:
            found = [c for c in self.received_calls if c[2] == action]
            if found:
                return found[-1]
            await self._next()


def tx(event_type, seq_no, timestamp, *, trigger, wh=None, id_token=None, **info):
    payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "seqNo": seq_no,
        # operationMode and tariffId are 2.1 fields (a 2.0.1 schema refuses them).
        "transactionInfo": {
            "transactionId": "e2e-21-tx",
            "operationMode": "ChargingOnly",
            "tariffId": "T-2026",
            **info,
        },
        "evse": {"id": 1, "connectorId": 1},
    }
    if id_token:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if wh is not None:
        payload["meterValue"] = [
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "context": "Transaction.End"
                        if event_type == "Ended"
                        else "Sample.Periodic",
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
    TokenFactory(uid="CAFE0021", organization=prop.organization)
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("0.50"),
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


async def _session(http) -> dict:
    results = (await http.get("/api/v1/sessions/", params={"station_id": STATION})).json()[
        "results"
    ]
    assert len(results) == 1, results
    return results[0]


def test_a_charger_offering_only_ocpp21_boots_charges_is_stopped_and_priced(live_server_proc):
    user = _setup()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()}

    async def scenario():
        ws = await websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/{STATION}",
            subprotocols=["ocpp2.1"],
            additional_headers=auth,
            open_timeout=30,
        )
        assert ws.subprotocol == "ocpp2.1"
        cs = Station21(ws)
        boot = await cs.call(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "model": "Spec21",
                    "vendorName": "RawWorks",
                    "firmwareVersion": "2.1-e2e",
                },
            },
        )
        assert boot[0] == 3 and boot[2]["status"] == "Accepted"
        report = await cs.wait_for_call("GetBaseReport")  # B07, as for 2.0.1
        assert report[3]["reportBase"] == "FullInventory"
        status = await cs.call(
            "StatusNotification",
            {
                "timestamp": "2026-11-21T08:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        )
        assert status[0] == 3
        known = await cs.call("Authorize", {"idToken": {"idToken": "CAFE0021", "type": "ISO14443"}})
        assert known[2]["idTokenInfo"]["status"] == "Accepted"
        long = await cs.call("Authorize", {"idToken": {"idToken": LONG_TOKEN, "type": "VendorPnC"}})
        assert long[2]["idTokenInfo"]["status"] == "Unknown"
        # A SEND is never answered; the next CALL's answer is the next frame.
        await ws.send(
            json.dumps(
                [
                    6,
                    "send-1",
                    "NotifyPeriodicEventStream",
                    {"id": 1, "pending": 0, "basetime": "2026-11-21T08:00:00Z", "data": []},
                ]
            )
        )

        started = await cs.call(
            "TransactionEvent",
            tx(
                "Started",
                0,
                "2026-11-21T08:00:00Z",
                trigger="Authorized",
                wh=10000,
                id_token="CAFE0021",
            ),
        )
        assert started[0] == 3 and started[2]["idTokenInfo"]["status"] == "Accepted"
        updated = await cs.call(
            "TransactionEvent",
            tx("Updated", 1, "2026-11-21T08:30:00Z", trigger="MeterValuePeriodic", wh=13000),
        )
        assert updated[0] == 3
        meter = await cs.call(
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": "2026-11-21T08:31:00Z",
                        "sampledValue": [
                            {
                                "value": 11000,
                                "measurand": "Power.Active.Import",
                                "unitOfMeasure": {"unit": "W"},
                            }
                        ],
                    }
                ],
            },
        )
        assert meter[0] == 3

        http = await _api(live_server_proc.url, user)
        try:
            charger = (await http.get(f"/api/v1/chargers/{STATION}/")).json()
            assert charger["status"] == "online" and charger["ocpp_version"] == "2.1"
            session = await _session(http)
            assert session["status"] == "active" and session["id_tag"] == "CAFE0021"

            # The remote stop every caller sends (our integer id), as a 2.1 RequestStopTransaction.
            request = asyncio.create_task(
                http.post(
                    f"/api/v1/chargers/{STATION}/commands/RemoteStopTransaction/",
                    json={"transactionId": session["transaction_id"]},
                )
            )
            call = await cs.wait_for_call("RequestStopTransaction")
            assert call[3] == {"transactionId": "e2e-21-tx"}
            response = await request
            assert response.status_code == 200 and response.json()["status"] == "Accepted"
            ended = await cs.call(
                "TransactionEvent",
                tx(
                    "Ended",
                    2,
                    "2026-11-21T09:00:00Z",
                    trigger="RemoteStop",
                    wh=16000,
                    stoppedReason="Remote",
                ),
            )
            assert ended[0] == 3
            session = await _session(http)
            assert session["status"] == "completed" and session["stop_reason"] == "Remote"
            assert session["energy_kwh"] == "6.000"
            # 0.50 + 6 kWh x 0.30, priced by billing as for 2.0.1; the charger was told the same.
            assert Decimal(session["cost"]["total"]) == Decimal("2.30")
            assert Decimal(str(ended[2]["totalCost"])) == Decimal("2.30")
        finally:
            await http.aclose()
        await ws.close()

    asyncio.run(scenario())


def test_an_independent_ocpp21_client_runs_a_session(live_server_proc):
    """The `ocpp` library's own 2.1 Charging Station (mobilityhouse/ocpp, `ocpp.v21.ChargePoint`:
    its framing, its jsonschema validation of every request and response) against the server."""
    from ocpp.routing import on
    from ocpp.v21 import ChargePoint, call, call_result

    user = _setup()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()}

    class LibraryStation(ChargePoint):
        stopped: asyncio.Event

        @on("RequestStopTransaction")
        async def on_request_stop(self, transaction_id, **kwargs):
            self.stopped.set()
            return call_result.RequestStopTransaction(status="Accepted")

        @on("GetBaseReport")
        async def on_get_base_report(self, request_id, report_base, **kwargs):
            return call_result.GetBaseReport(status="NotSupported")

    def event(
        event_type: str, seq_no: int, timestamp: str, wh: int, **extra
    ) -> call.TransactionEvent:
        return call.TransactionEvent(
            event_type=event_type,
            seq_no=seq_no,
            timestamp=timestamp,
            trigger_reason=extra.pop("trigger", "MeterValuePeriodic"),
            transaction_info={"transactionId": "lib-21-tx", **extra.pop("info", {})},
            evse={"id": 1, "connectorId": 1},
            meter_value=[
                {
                    "timestamp": timestamp,
                    "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}],
                }
            ],
            **extra,
        )

    async def scenario():
        ws = await websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/{STATION}",
            subprotocols=["ocpp2.1"],
            additional_headers=auth,
            open_timeout=30,
        )
        assert ws.subprotocol == "ocpp2.1"
        station = LibraryStation(STATION, ws, response_timeout=30)
        station.stopped = asyncio.Event()
        runner = asyncio.create_task(station.start())
        try:
            boot = await station.call(
                call.BootNotification(
                    charging_station={"model": "Lib21", "vendorName": "mobilityhouse"},
                    reason="PowerUp",
                ),
                suppress=False,
            )
            assert boot.status == "Accepted"
            assert (await station.call(call.Heartbeat(), suppress=False)).current_time
            authorized = await station.call(
                call.Authorize(id_token={"idToken": "CAFE0021", "type": "ISO14443"}),
                suppress=False,
            )
            assert authorized.id_token_info["status"] == "Accepted"
            started = await station.call(
                event(
                    "Started",
                    0,
                    "2026-11-21T08:00:00Z",
                    1000,
                    trigger="Authorized",
                    id_token={"idToken": "CAFE0021", "type": "ISO14443"},
                ),
                suppress=False,
            )
            assert started.id_token_info["status"] == "Accepted"
            await station.call(event("Updated", 1, "2026-11-21T08:30:00Z", 3000), suppress=False)
            http = await _api(live_server_proc.url, user)
            try:
                session = await _session(http)
                response = await http.post(
                    f"/api/v1/chargers/{STATION}/commands/RemoteStopTransaction/",
                    json={"transactionId": session["transaction_id"]},
                )
                assert response.status_code == 200 and response.json()["status"] == "Accepted"
                await asyncio.wait_for(station.stopped.wait(), 30)
                ended = await station.call(
                    event(
                        "Ended",
                        2,
                        "2026-11-21T09:00:00Z",
                        5000,
                        trigger="RemoteStop",
                        info={"stoppedReason": "Remote"},
                    ),
                    suppress=False,
                )
                session = await _session(http)
                assert session["status"] == "completed" and session["energy_kwh"] == "4.000"
                # 0.50 + 4 kWh x 0.30: billing's price, and what the station was told.
                assert Decimal(session["cost"]["total"]) == Decimal("1.70")
                assert Decimal(str(ended.total_cost)) == Decimal("1.70")
            finally:
                await http.aclose()
        finally:
            runner.cancel()
            await ws.close()

    asyncio.run(scenario())
