"""A slow MSP never delays other chargers: Authorize answers at the MSP timeout with the
policy's outcome, before the MSP answers, while another charger's Heartbeats keep being
answered (real server). Ordering and isolation only: no millisecond bounds (a loaded CI
machine would make them flaky; speed is measured in `make bench`)."""

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
def test_slow_msp_times_out_at_its_timeout_and_other_chargers_keep_going(
    live_server_proc, policy, expected
):
    msp_server = FakeMsp(delay=20)
    try:
        slow = ChargerFactory(station_id="MSP-SLOW")
        ChargerFactory(station_id="MSP-OTHER", property=slow.property)
        msp = MspFactory(
            organization=slow.property.organization,
            live_validation_url=msp_server.url,
            timeout_s=2,
            on_timeout=policy,
        )
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
            msp_answered_before_us = msp_server.answered
            await a.close()
            await b.close()
            return reply, elapsed, heartbeats, msp_answered_before_us

        reply, elapsed, heartbeats, msp_answered_before_us = asyncio.run(scenario())
        from authorization.models import AuthorizationDecision

        decision = AuthorizationDecision.objects.get(station_id="MSP-SLOW")
        # The charger got the policy's answer at the timeout: before the MSP ever answered.
        assert decision.reason == "msp_timeout" and decision.msp_latency_ms >= 1800
        assert msp_answered_before_us == 0 and len(msp_server.requests) == 1
        assert reply[2]["idTagInfo"]["status"] == expected
        assert elapsed >= 1.8  # it did wait for the MSP's timeout, not less
        # Meanwhile the other charger kept being answered: several heartbeats while it waited.
        assert len(heartbeats) >= 3, heartbeats
    finally:
        msp_server.close()
