"""`simulate_chargers --protocol 2.0.1` / the demo's 2.0.1 charger: the simulator speaks real 2.0.1
frames to the real server, and what it does shows up as for a 1.6 charger (session, energy,
device model, remote start/stop through the protocol-neutral commands)."""

import asyncio
import time

import httpx
import pytest

from chargers.management.simulator import SimulatedCharger201, make_simulator
from chargers.models import Charger, ChargingSession, DeviceVariable
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory, TokenFactory

pytestmark = pytest.mark.e2e


def _wait_for(check, timeout=GENEROUS_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_the_201_simulator_boots_reports_charges_and_obeys_remote_start_stop(live_server_proc):
    charger = ChargerFactory(station_id="SIM-201")
    TokenFactory(uid="SIMCARD", organization=charger.property.organization)
    user = MembershipFactory(organization=charger.property.organization, role="owner").user
    sim = make_simulator(
        "2.0.1",
        url=f"{live_server_proc.ws_url}/ocpp",
        station_id="SIM-201",
        auto_sessions=False,
        id_tags=["SIMCARD"],
    )
    assert isinstance(sim, SimulatedCharger201)

    async def scenario():
        await sim.connect()
        assert sim.ws.subprotocol == "ocpp2.0.1"
        assert (await sim.boot())["status"] == "Accepted"
        assert await sim.authorize("SIMCARD") == "Accepted"
        assert await sim.authorize("NOT-A-CARD") == "Unknown"
        await sim.start(1, "SIMCARD")
        await sim.meter_values(1, seconds=3600)  # one hour at 7.4 kW
        await sim.stop(1)
        # The server asked for the device model after the first boot; the simulator sent it.
        assert await asyncio.to_thread(
            _wait_for, lambda: DeviceVariable.objects.filter(charger=charger).exists()
        )
        # Protocol-neutral commands: a 1.6 remote start reaches it as RequestStartTransaction
        # (sent by the server process, through the API).
        async with httpx.AsyncClient(base_url=live_server_proc.url, timeout=30) as http:
            token = (
                await http.post(
                    "/api/v1/auth/token/",
                    json={"username": user.username, "password": "secret-pass-123"},
                )
            ).json()["token"]
            http.headers["Authorization"] = f"Token {token}"
            started = await http.post(
                "/api/v1/chargers/SIM-201/commands/RemoteStartTransaction/",
                json={"idTag": "SIMCARD", "connectorId": 1},
            )
            assert started.status_code == 200 and started.json()["status"] == "Accepted"
            assert await asyncio.to_thread(
                _wait_for,
                lambda: ChargingSession.objects.filter(charger=charger, status="active").exists(),
            )
            active = await ChargingSession.objects.aget(charger=charger, status="active")
            stopped = await http.post(
                "/api/v1/chargers/SIM-201/commands/RemoteStopTransaction/",
                json={"transactionId": active.transaction_id},
            )
            assert stopped.status_code == 200 and stopped.json()["status"] == "Accepted"
        assert await asyncio.to_thread(
            _wait_for,
            lambda: not ChargingSession.objects.filter(charger=charger, status="active").exists(),
        )
        assert [a for a, _ in sim.received_calls if a.startswith("Request")] == [
            "RequestStartTransaction",
            "RequestStopTransaction",
        ]
        await sim.close()

    asyncio.run(scenario())
    sessions = list(ChargingSession.objects.filter(charger=charger).order_by("started_at"))
    assert len(sessions) == 2 and all(s.status == "completed" for s in sessions)
    assert sessions[0].energy_wh == 7400 and sessions[0].id_tag == "SIMCARD"
    assert sessions[1].remote_start_id is not None and sessions[1].stop_reason == "Remote"
    assert Charger.objects.get(pk=charger.pk).ocpp_version == "2.0.1"
