"""A watt-only charger from outside (issue 45 item 1): a simulated 1.6 charger that takes only W
(ChargingScheduleAllowedChargingRateUnit = Power) and a single-phase car, through the real
server: it is asked its units after boot, accepts its limits in W, and once the car's per-phase
readings show it draws on one phase, its session limit says numberPhases 1 (W for one phase)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from chargers.management.sim_profiles import TX
from chargers.management.simulator import make_simulator
from chargers.models import Charger
from power.models import ConnectorAllocation, ConnectorPower, SiteBudget
from tests.bounds import GENEROUS_S
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, TokenFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
def power_server(transactional_db, tmp_path):
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        OCPP_ENERGY_CONFIG_AFTER_BOOT="true",  # the check after boot asks the units
        IN_PROCESS_BEAT="true",
        CELERY_TASK_ALWAYS_EAGER="true",
        POWER_SWEEP_SECONDS=1,
        POWER_ENFORCE_SWEEP_SECONDS=1,
        POWER_REFRESH_SECONDS=1,
        POWER_PROFILE_MIN_INTERVAL_S=1,
        POWER_COMMAND_TIMEOUT=5,
    )
    yield server
    stop_live_server(server)


async def _until(check, what: str, timeout: float = GENEROUS_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def test_a_watt_only_charger_accepts_limits_in_w_for_the_phases_its_car_draws_on(power_server):
    charger = ChargerFactory(station_id="WATT-1")
    SiteBudget.objects.create(property=charger.property, limit_a=Decimal(20), phases=3)
    ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=Decimal(16))
    TokenFactory(uid="CARD-W", organization=charger.property.organization)
    sim = make_simulator(
        "1.6",
        url=f"{power_server.ws_url}/ocpp",
        station_id="WATT-1",
        auto_sessions=False,
        phases=1,  # a single-phase car
        ev_max_a=16.0,
        rate_units="W",
    )

    def tx_profile():
        return next((p for p in sim.profiles.held.values() if p.purpose == TX), None)

    async def scenario() -> None:
        await sim.connect()
        await sim.boot()
        try:
            await _until(
                lambda: Charger.objects.get(pk=charger.pk).rate_units == "W", "its units read"
            )
            await _until(lambda: len(sim.profiles.held) == 3, "set up in W")
            await sim.start(1, "CARD-W")
            await _until(lambda: tx_profile() is not None, "its session limit")
            for _ in range(300):  # the car's readings, L1 only, until the limit follows them
                await sim.meter_values(1, seconds=1)
                if (held := tx_profile()) is not None and held.periods[0][2] == 1:
                    break
                await asyncio.sleep(0.1)
        finally:
            await sim.close()

    asyncio.run(scenario())
    held = tx_profile()
    assert held is not None and held.unit == "W"
    assert held.periods[0][1:] == (3680.0, 1)  # 16 A x 230 V x 1 phase
    assert {p.unit for p in sim.profiles.held.values()} == {"W"}
    row = ConnectorAllocation.objects.get(charger=charger)
    assert row.applied_limit_a == Decimal(16) and not row.refused
    # Every profile it holds is in W (above). A power pass that read the charger before its units
    # were known (the safe default goes out at connection at once; the units are asked by a
    # follow-up that yields to a busy process, 0463bb3) sends A with W as its one retry, and its
    # refusal may land after the units were recorded: it then teaches W, never A.
    assert Charger.objects.get(pk=charger.pk).rate_unit_learnt in ("", "W")
