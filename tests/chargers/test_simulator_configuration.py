"""The demo's simulated 1.6 charger keeps its configuration as a real one does: the Core
profile's keys, writable ones changed by ChangeConfiguration and read back, read-only ones
refused, unknown ones NotSupported. So the energy-reporting check after boot configures the demo
chargers cleanly (it warned on every demo boot: "StopTxnSampledData is not a key it knows")."""

from chargers.devices import energy_config
from chargers.management.simulator import make_simulator
from tests.power.test_simulator_profiles import Wire


def _sim():
    sim = make_simulator("1.6", url="ws://unused", station_id="SIM-CFG", auto_sessions=False)
    sim.ws = Wire()
    return sim


async def _ask(sim, action, payload):
    await sim._answer("m1", action, payload)
    return sim.ws.sent[-1][2]


async def test_the_energy_check_configures_the_simulator_and_finds_nothing_left():
    sim = _sim()
    keys = (await _ask(sim, "GetConfiguration", {"key": list(energy_config.KEYS_16)}))[
        "configurationKey"
    ]
    changes = energy_config.change_configuration_16(keys)
    assert changes == [{"key": "StopTxnSampledData", "value": energy_config.ENERGY_REGISTER}]
    changed = {c["key"]: (await _ask(sim, "ChangeConfiguration", c))["status"] for c in changes}
    assert energy_config.problems_16(keys, changed) == []
    again = (await _ask(sim, "GetConfiguration", {"key": list(energy_config.KEYS_16)}))[
        "configurationKey"
    ]
    assert energy_config.change_configuration_16(again) == []  # read back: nothing to change


async def test_read_only_and_unknown_keys_are_refused_and_change_nothing():
    sim = _sim()
    assert (await _ask(sim, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "9"}))[
        "status"
    ] == "Rejected"
    assert (await _ask(sim, "ChangeConfiguration", {"key": "VendorThing", "value": "1"}))[
        "status"
    ] == "NotSupported"
    answer = await _ask(sim, "GetConfiguration", {"key": ["NumberOfConnectors", "VendorThing"]})
    assert answer["configurationKey"] == [
        {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
    ]
    assert answer["unknownKey"] == ["VendorThing"]


async def test_heartbeat_interval_changed_is_the_one_it_beats_at():
    sim = _sim()
    assert (await _ask(sim, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "90"}))[
        "status"
    ] == "Accepted"
    assert sim.heartbeat_interval == 90
    answer = await _ask(sim, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "90"


async def test_the_201_simulator_answers_whether_it_runs_a_transaction():
    """E14: the stale check and power's refusal check ask it; the demo's 2.0.1 charger answered
    NotSupported, so a session it forgot over a restart was taken for a refusal of limits."""
    sim = make_simulator("2.0.1", url="ws://unused", station_id="SIM-TX", auto_sessions=False)
    sim.ws = Wire()
    sim.tx_ids[1] = "tx-running"
    running = await _ask(sim, "GetTransactionStatus", {"transactionId": "tx-running"})
    assert running == {"messagesInQueue": False, "ongoingIndicator": True}
    forgotten = await _ask(sim, "GetTransactionStatus", {"transactionId": "tx-forgotten"})
    assert forgotten == {"messagesInQueue": False, "ongoingIndicator": False}
    assert await _ask(sim, "GetTransactionStatus", {}) == {"messagesInQueue": False}
