"""End to end: the real server (`manage.py serve` subprocess via live_server_proc), a charger
over a real websocket with a SuspendedEV in the middle, and the sessions API over HTTP
showing exactly the hand-computed lines."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import websockets

from billing.models import Rate
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = [pytest.mark.e2e]


async def call(ws, uid, action, payload):
    await ws.send(json.dumps([2, uid, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply[0] == 3 and reply[1] == uid, reply
    return reply[2]


def test_session_api_shows_idle_fee_after_suspended_ev(live_server_proc):
    prop = PropertyFactory(currency="EUR")
    user = MembershipFactory(organization=prop.organization, role="owner").user
    ChargerFactory(property=prop, station_id="BILL-E2E-1")
    TokenFactory(uid="BILL0001", organization=prop.organization)
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        idle_fee_cap=Decimal("10.00"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )

    async def scenario():
        async with websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/BILL-E2E-1", subprotocols=["ocpp1.6"]
        ) as ws:
            await call(
                ws, "1", "BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "B1"}
            )
            await call(
                ws,
                "2",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Preparing",
                    "timestamp": "2026-11-20T07:59:50Z",
                },
            )
            start = await call(
                ws,
                "3",
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "BILL0001",
                    "meterStart": 10000,
                    "timestamp": "2026-11-20T08:00:00Z",
                },
            )
            tx = start["transactionId"]
            await call(
                ws,
                "4",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Charging",
                    "timestamp": "2026-11-20T08:00:05Z",
                },
            )
            await call(
                ws,
                "5",
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": tx,
                    "meterValue": [
                        {
                            "timestamp": "2026-11-20T08:30:00Z",
                            "sampledValue": [
                                {"value": "16000", "unit": "Wh"},
                                {"value": "7.2", "unit": "kW", "measurand": "Power.Active.Import"},
                            ],
                        }
                    ],
                },
            )
            # The car is full at 09:00 but stays plugged in until 09:40.
            await call(
                ws,
                "6",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "SuspendedEV",
                    "timestamp": "2026-11-20T09:00:00Z",
                },
            )
            await call(
                ws,
                "7",
                "StopTransaction",
                {
                    "transactionId": tx,
                    "meterStop": 22000,
                    "timestamp": "2026-11-20T09:40:00Z",
                    "reason": "EVDisconnected",
                },
            )
            await call(
                ws,
                "8",
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Finishing",
                    "timestamp": "2026-11-20T09:40:01Z",
                },
            )

        async with httpx.AsyncClient(base_url=live_server_proc.url, timeout=10) as http:
            token = (
                await http.post(
                    "/api/v1/auth/token/",
                    json={"username": user.username, "password": "secret-pass-123"},
                )
            ).json()["token"]
            http.headers["Authorization"] = f"Token {token}"
            sessions = (
                await http.get("/api/v1/sessions/", params={"station_id": "BILL-E2E-1"})
            ).json()["results"]
            return sessions

    sessions = asyncio.run(scenario())
    assert len(sessions) == 1
    # 12 kWh x 0.35 = 4.20; idle 09:00 -> 09:40 = 40 min - 15 grace = 25 min x 0.10 = 2.50;
    # subtotal 1.00 + 4.20 + 2.50 = 7.70; tax 21% = 1.617 -> 1.62; total 9.32.
    assert sessions[0]["cost"] == {
        "currency": "EUR",
        "lines": [
            {
                "kind": "connection_fee",
                "description": "Connection fee (once per session)",
                "quantity": "1",
                "unit": "session",
                "unit_price": "1.00",
                "amount": "1.00",
            },
            {
                "kind": "energy",
                "description": "Energy 12.000 kWh × 0.35 EUR/kWh",
                "quantity": "12.000",
                "unit": "kWh",
                "unit_price": "0.35",
                "amount": "4.20",
            },
            {
                "kind": "idle_fee",
                "description": "Idle fee: plugged in 40 min after charging finished, first 15 min free",
                "quantity": "25",
                "unit": "min",
                "unit_price": "0.10",
                "amount": "2.50",
            },
        ],
        "subtotal": "7.70",
        "tax": "1.62",
        "total": "9.32",
        "tax_percent": "21",
        "prices_include_tax": False,
    }
