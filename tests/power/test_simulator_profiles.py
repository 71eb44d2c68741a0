"""The simulator obeys charging profiles (issue 38 item 5): it answers SetChargingProfile,
ClearChargingProfile and GetCompositeSchedule (1.6 and 2.0.1), refuses what the schema refuses,
and its car draws min(its maximum, the limit in force)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chargers.management.simulator import make_simulator
from power import profiles

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now():
    # The simulator reads the clock: "now" is each test's, not the module's import time (a CI
    # run imports it many minutes before the test runs, and a 5-minute lease had run out).
    global NOW
    NOW = datetime.now(UTC)


class Wire:
    """Stands in for the websocket: keeps what the simulator sends."""

    def __init__(self):
        self.sent = []

    async def send(self, text):
        self.sent.append(json.loads(text))


def _sim(version, **kwargs):
    sim = make_simulator(
        version,
        url="ws://unused",
        station_id="SIM-1",
        connectors=2,
        auto_sessions=False,
        power_kw=11,
        phases=3,
        **kwargs,
    )
    sim.ws = Wire()
    return sim


def _running(sim, version, connector_id=1):
    state = sim.state[connector_id]
    state.transaction_id, state.started_at, state.power_kw = 7, NOW, 11
    if version == profiles.V201:
        sim.tx_ids[connector_id] = "tx-7"
    return "tx-7" if version == profiles.V201 else 7


async def _ask(sim, action, payload):
    await sim._answer("m1", action, payload)
    return sim.ws.sent[-1]


@pytest.mark.parametrize("version", [profiles.V16, profiles.V201])
async def test_the_car_draws_the_lower_of_its_maximum_and_the_limit_in_force(version):
    sim = _sim(version)
    tx = _running(sim, version)
    assert sim.draw_a(1) == pytest.approx(11000 / 690)  # no profile: the car's maximum
    for profile in [
        profiles.safe_default(version, 6.3, now=NOW - timedelta(seconds=1)),
        *profiles.leases(
            version, 32, now=NOW - timedelta(seconds=1), valid_to=NOW + timedelta(minutes=5)
        ),
    ]:
        assert (await _ask(sim, "SetChargingProfile", profile.payload))[2] == {"status": "Accepted"}
    assert sim.draw_a(1) == 0  # the lease's TxDefaultProfile: 0 A until the session's limit
    tx_profile = profiles.session_limit(version, connector_id=1, transaction_id=tx, limit_a=10)
    assert (await _ask(sim, "SetChargingProfile", tx_profile.payload))[2]["status"] == "Accepted"
    assert sim.draw_a(1) == 10
    # The leases end (the charger lost its connection): the safe default caps it.
    assert sim.limit_a(1, NOW + timedelta(minutes=6)) == 6.3
    composite = (
        {"connectorId": 1, "duration": 60}
        if version == profiles.V16
        else {
            "evseId": 1,
            "duration": 60,
        }
    )
    answer = (await _ask(sim, "GetCompositeSchedule", composite))[2]
    schedule = answer["chargingSchedule"] if version == profiles.V16 else answer["schedule"]
    assert answer["status"] == "Accepted"
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10}]
    # The session's limit ends with the transaction.
    sim.profiles.end_transaction(1)
    assert all(p.purpose != "TxProfile" for p in sim.profiles.held.values())


@pytest.mark.parametrize("version", [profiles.V16, profiles.V201])
async def test_a_tx_profile_without_a_transaction_is_rejected_and_clear_removes(version):
    sim = _sim(version)
    tx_profile = profiles.session_limit(version, connector_id=2, transaction_id=9, limit_a=10)
    assert (await _ask(sim, "SetChargingProfile", tx_profile.payload))[2] == {"status": "Rejected"}
    safe = profiles.safe_default(version, 6, now=NOW)
    await _ask(sim, "SetChargingProfile", safe.payload)
    clear = (
        {"id": profiles.PROFILE_ID_SAFE}
        if version == profiles.V16
        else {"chargingProfileId": profiles.PROFILE_ID_SAFE}
    )
    assert (await _ask(sim, "ClearChargingProfile", clear))[2] == {"status": "Accepted"}
    assert (await _ask(sim, "ClearChargingProfile", clear))[2] == {"status": "Unknown"}
    assert sim.profiles.held == {}


@pytest.mark.parametrize("version", [profiles.V16, profiles.V201])
async def test_a_schema_invalid_profile_gets_a_callerror_and_changes_nothing(version):
    sim = _sim(version)
    payload = profiles.safe_default(version, 6, now=NOW).payload
    body = payload["csChargingProfiles" if version == profiles.V16 else "chargingProfile"]
    body["chargingProfilePurpose"] = "Whatever"
    frame = await _ask(sim, "SetChargingProfile", payload)
    assert frame[0] == 4
    assert sim.profiles.held == {}


async def test_a_charger_that_refuses_profiles_answers_rejected():
    sim = _sim(profiles.V16, profile_accept=False)
    answer = await _ask(
        sim, "SetChargingProfile", profiles.safe_default(profiles.V16, 6, now=NOW).payload
    )
    assert answer[2] == {"status": "Rejected"}


async def test_a_watt_only_simulator_says_so_and_takes_only_watts():
    sim = _sim(profiles.V16, rate_units="W")
    answer = await _ask(
        sim, "GetConfiguration", {"key": ["ChargingScheduleAllowedChargingRateUnit"]}
    )
    assert answer[2]["configurationKey"][0]["value"] == "Power"
    safe = profiles.safe_default(profiles.V16, 6, now=NOW)
    assert (await _ask(sim, "SetChargingProfile", safe.payload))[2] == {"status": "Rejected"}
    watts = profiles.expressed(safe, unit="W", voltage=230, phases=3)
    assert (await _ask(sim, "SetChargingProfile", watts.payload))[2] == {"status": "Accepted"}


async def test_meter_values_report_the_draw_per_phase():
    sim = _sim(profiles.V16)
    _running(sim, profiles.V16)
    await _ask(
        sim,
        "SetChargingProfile",
        profiles.session_limit(profiles.V16, connector_id=1, transaction_id=7, limit_a=8).payload,
    )

    sent = []

    async def call(action, payload):
        sent.append(payload)
        return {}

    sim.call = call
    await sim.meter_values(1, seconds=3600)
    values = {
        (v["measurand"], v.get("phase")): v["value"]
        for v in sent[0]["meterValue"][0]["sampledValue"]
    }
    assert values[("Power.Active.Import", None)] == "5520"
    assert values[("Current.Import", "L1")] == values[("Current.Import", "L3")] == "8.0"
