"""A slow MSP never delays other chargers: Authorize answers at the MSP timeout with the
policy's outcome while another charger's Heartbeats are answered quickly (real server)."""

import asyncio
import json
import time

import pytest
import websockets

from tests.factories import ChargerFactory, MspFactory, TokenFactory
from tests.msp_server import FakeMsp

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _stub_msp_allow_listed(monkeypatch):
    """The server process reads the allow-list from its environment (set before it starts)."""
    monkeypatch.setenv("MSP_URL_ALLOWLIST", "127.0.0.1")


async def call(ws, uid, action, payload):
    started = time.perf_counter()
    await ws.send(json.dumps([2, uid, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return reply, time.perf_counter() - started


@pytest.mark.parametrize("policy, expected", [("reject", "Invalid"), ("accept", "Accepted")])
def test_slow_msp_times_out_at_its_timeout_and_other_chargers_keep_going(live_server_proc, policy, expected):
    msp_server = FakeMsp(delay=20)
    try:
        slow = ChargerFactory(station_id="MSP-SLOW")
        ChargerFactory(station_id="MSP-OTHER", property=slow.property)
        msp = MspFactory(organization=slow.property.organization, live_validation_url=msp_server.url, timeout_s=2, on_timeout=policy)
        TokenFactory(uid="ROAM0001", organization=None, msp=msp)
        url = live_server_proc.ws_url

        async def scenario():
            a = await websockets.connect(f"{url}/ocpp/MSP-SLOW", subprotocols=["ocpp1.6"])
            b = await websockets.connect(f"{url}/ocpp/MSP-OTHER", subprotocols=["ocpp1.6"])
            authorize = asyncio.create_task(call(a, "auth-1", "Authorize", {"idTag": "ROAM0001"}))
            heartbeats = []
            await asyncio.sleep(0.1)
            while not authorize.done():
                reply, elapsed = await call(b, f"hb-{len(heartbeats)}", "Heartbeat", {})
                assert reply[0] == 3
                heartbeats.append(elapsed)
                await asyncio.sleep(0.1)
            reply, elapsed = await authorize
            await a.close()
            await b.close()
            return reply, elapsed, heartbeats

        reply, elapsed, heartbeats = asyncio.run(scenario())
        from authorization.models import AuthorizationDecision

        decision = AuthorizationDecision.objects.get(station_id="MSP-SLOW")
        assert decision.reason == "msp_timeout" and 1800 <= decision.msp_latency_ms <= 3500
        assert reply[2]["idTagInfo"]["status"] == expected
        assert 1.8 <= elapsed <= 3.5, elapsed
        assert len(heartbeats) >= 10
        assert max(heartbeats) < 0.1, heartbeats
    finally:
        msp_server.close()
