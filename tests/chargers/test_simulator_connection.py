"""The simulator without an open socket (typed in issue 50 item 7): a call before connect() or
an answer still under way after a drop raises ConnectionError, which run() retries on, rather
than failing on None."""

from __future__ import annotations

import pytest

from chargers.management.simulator import SimulatedCharger, make_simulator


def _charger(protocol: str = "1.6") -> SimulatedCharger:
    return make_simulator(protocol, url="ws://unused", station_id="SIM-1", auto_sessions=False)


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_a_call_before_connect_raises_connection_error_and_leaves_nothing_pending(
    protocol: str,
) -> None:
    charger = _charger(protocol)
    with pytest.raises(ConnectionError, match="not connected"):
        await charger.call("Heartbeat", {})
    assert charger._pending == {}
    assert charger.latencies == []


async def test_an_answer_after_the_socket_dropped_raises_connection_error() -> None:
    charger = _charger()
    with pytest.raises(ConnectionError, match="not connected"):
        await charger._answer("m1", "NoSuchAction", {})
    assert charger.received_calls == [("NoSuchAction", {})]
