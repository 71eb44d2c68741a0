"""Issue 35 item 17: the demo's simulated sessions always leave a port free for a guest."""

from __future__ import annotations

import asyncio

from chargers.management.simulator import SimulatedCharger


def _charger(connectors: int = 2, keep_free: int = 1) -> SimulatedCharger:
    return SimulatedCharger(
        url="ws://unused", station_id="SIM-1", connectors=connectors, keep_free=keep_free
    )


def test_a_simulated_session_never_takes_the_last_free_port():
    charger = _charger()
    assert charger.may_simulate_on(1) and charger.may_simulate_on(2)
    charger.state[1].transaction_id = 7
    assert not charger.may_simulate_on(2)  # the guest's port
    charger.state[1].transaction_id = None
    charger.state[1].status = "Faulted"
    assert not charger.may_simulate_on(2)  # a faulted port is not free for a guest either
    assert not _charger(connectors=1).may_simulate_on(1)
    assert _charger(connectors=1, keep_free=0).may_simulate_on(1)


def test_two_ports_deciding_at_once_leave_one_free():
    charger = _charger()
    charger.idle_seconds = (0.0, 0.0)
    charger.session_seconds = (3600.0, 3600.0)
    charger.meter_interval = 0.0
    started: list[int] = []

    async def authorize(id_tag: str) -> str:
        await asyncio.sleep(0)  # a round trip: the other port's loop runs meanwhile
        return "Accepted"

    async def start(connector_id: int, id_tag: str) -> dict:
        await asyncio.sleep(0)
        charger.state[connector_id].transaction_id = 100 + connector_id
        started.append(connector_id)
        return {}

    async def meter_values(connector_id: int, seconds: float | None = None) -> None:
        await asyncio.sleep(0)

    charger.authorize = authorize  # type: ignore[method-assign]
    charger.start = start  # type: ignore[method-assign]
    charger.meter_values = meter_values  # type: ignore[method-assign]

    async def run() -> None:
        loops = [asyncio.create_task(charger._sessions(n)) for n in (1, 2)]
        for _ in range(200):
            await asyncio.sleep(0)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    asyncio.run(run())
    assert len(started) == 1
    assert sum(1 for c in charger.state.values() if c.transaction_id is None) == 1
