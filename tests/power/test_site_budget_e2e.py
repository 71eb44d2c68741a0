"""Issue 38, "Done when", checked from outside: ten simulated chargers (1.6 and 2.0.1 mixed, each
obeying the charging profiles it is sent, each car at most 11 kW: 16 A on three phases) on a site
with a 63 A three-phase budget, against the real server over real sockets.

What is in force is read from the simulators themselves (the limit their profiles give, what
their cars draw), sampled all along by a watcher: the sum of the limits in force and the sum of
the draws never exceed the budget. Each step's outcome is due within 10 s: `make bench` holds that
bound (tests/bounds.py); here each step waits generously, so a busy machine does not fail it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import httpx
import pytest

from chargers.management.simulator import SimulatedCharger, make_simulator
from power.models import AllocationSample, ConnectorPower, SiteBudget
from tests import bounds
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, TokenFactory

pytestmark = pytest.mark.e2e

BUDGET = 63.0
LOWER_BUDGET = 45.0
EV_MAX_A = 16.0
# Issue 38: each reaction within 10 s; make bench holds that bound (tests/bounds.py), the suite
# waits generously so that a busy machine does not fail it.
STEP_S = bounds.deadline("power.site_step")
EPSILON = 0.05
LEASE_S = 20  # renewed 10 s before its end; exposed (reserved) 8 s before: see lease_margin
WATCHER: list[Watcher] = []


@pytest.fixture
def power_server(transactional_db, tmp_path):
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        # The sweeps run in the server even when a broker is configured (PostgreSQL + Redis runs).
        IN_PROCESS_BEAT="true",
        CELERY_TASK_ALWAYS_EAGER="true",
        POWER_SWEEP_SECONDS=1,
        POWER_ENFORCE_SWEEP_SECONDS=1,
        POWER_REFRESH_SECONDS=1,
        POWER_SETTLE_SECONDS=3,
        POWER_LEASE_SECONDS=LEASE_S,
        POWER_PROFILE_MIN_INTERVAL_S=1,
        POWER_COMMAND_TIMEOUT=5,
    )
    yield server
    stop_live_server(server)


def _share(sessions: int, budget: float = BUDGET) -> float:
    """The equal share of `sessions` (rounded down to 0.1 A), at most what a car takes."""
    share = (Decimal(str(budget)) / sessions).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return min(float(share), EV_MAX_A)


class Watcher:
    """Samples what is in force on every simulator, all along."""

    def __init__(self, sims: list[SimulatedCharger]):
        self.sims = sims
        self.budget = BUDGET
        self.worst_limits = 0.0
        self.worst_draw = 0.0
        self.breaches: list[str] = []
        self.samples = 0
        self.step = "start"  # the step under way: a breach names it

    def charging(self) -> list[SimulatedCharger]:
        return [s for s in self.sims if s.state[1].transaction_id is not None]

    def sample(self) -> None:
        self.samples += 1
        limits = [s.limit_a(1) for s in self.charging()]
        total = sum(EV_MAX_A if limit is None else min(limit, EV_MAX_A) for limit in limits)
        draw = sum(s.draw_a(1) for s in self.charging())
        self.worst_limits, self.worst_draw = (
            max(self.worst_limits, total),
            max(self.worst_draw, draw),
        )
        if total > self.budget + EPSILON or draw > self.budget + EPSILON:
            each = ", ".join(
                f"{s.station_id} {s.limit_a(1)}{_in_force(s)}" for s in self.charging()
            )
            self.breaches.append(
                f"{self.step}: limits {total:.1f} A, draw {draw:.1f} A > {self.budget} A ({each})"
            )

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.05)


def _in_force(sim: SimulatedCharger) -> str:
    """The profile ids in force on the simulator (3801/3802: its leases), for a breach's text."""
    now = datetime.now(UTC)
    return str(sorted(pid for pid, p in sim.profiles.held.items() if p.valid(now)))


async def _until(check, what: str, timeout: float = STEP_S) -> None:
    if WATCHER:
        WATCHER[0].step = what
    started = asyncio.get_running_loop().time()
    deadline = started + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():
            took = asyncio.get_running_loop().time() - started
            bounds.record("power.site_step", took, extra_s=timeout - STEP_S)
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


async def _meters(sims: list[SimulatedCharger]) -> None:
    """Each charging car reports its draw every second (MeterValues / TransactionEvent)."""
    while True:
        await asyncio.sleep(1)
        for sim in sims:
            if sim.ws is not None and sim.state[1].transaction_id is not None:
                try:
                    await sim.meter_values(1, seconds=1)
                except Exception:  # noqa: BLE001 - a charger that left reports nothing
                    pass


def _limits(sims: list[SimulatedCharger]) -> list[float | None]:
    return [s.limit_a(1) for s in sims]


def _all_at(sims: list[SimulatedCharger], value: float) -> bool:
    return all(limit is not None and abs(limit - value) < EPSILON for limit in _limits(sims))


def test_ten_chargers_share_a_63_a_site_within_its_budget(power_server):
    first = ChargerFactory(station_id="SITE-01")
    site = first.property
    org = site.organization
    chargers = [first] + [
        ChargerFactory(station_id=f"SITE-{n:02d}", property=site) for n in range(2, 11)
    ]
    SiteBudget.objects.create(property=site, limit_a=Decimal(BUDGET), phases=3, voltage=230)
    for charger in chargers:
        ConnectorPower.objects.create(
            charger=charger, connector_id=1, phases=3, min_a=Decimal(6), max_a=Decimal(16)
        )
    cards = [TokenFactory(uid=f"CARD-{n:02d}", organization=org).uid for n in range(1, 11)]
    user = MembershipFactory(organization=org, role="owner").user
    sims = [
        make_simulator(
            "2.0.1" if n % 2 else "1.6",
            url=f"{power_server.ws_url}/ocpp",
            station_id=charger.station_id,
            auto_sessions=False,
            id_tags=[cards[n]],
            power_kw=11,
            phases=3,
            voltage=230,
            ev_max_a=EV_MAX_A,
        )
        for n, charger in enumerate(chargers)
    ]
    watcher = Watcher(sims)
    WATCHER[:] = [watcher]

    async def scenario() -> None:
        for sim in sims:
            await sim.connect()
            assert (await sim.boot())["status"] == "Accepted"
        background = [asyncio.create_task(watcher.run()), asyncio.create_task(_meters(sims))]
        try:
            await _steps()
        finally:
            for task in background:
                task.cancel()
            for sim in sims:
                await sim.close()

    async def _steps() -> None:
        # Every charger gets its safe default (63 A / 10) and its leases before any session.
        await _until(
            lambda: all(len(s.profiles.held) == 3 for s in sims), "safe defaults and leases"
        )
        for sim in sims:
            safe = sim.profiles.held[3800]
            assert safe.periods[0][1] == _share(10) and safe.stack_level == 0

        # Sessions start one by one; each new one gets its profile, the others make room.
        for n, sim in enumerate(sims, start=1):
            await sim.start(1, sim.id_tags[0])
            await _until(lambda n=n: _all_at(sims[:n], _share(n)), f"{n} sessions at {_share(n)} A")
            if n == 5:
                await _give_back(sims[:5])

        # One stops: the others get more.
        await sims[9].stop(1)
        await _until(lambda: _all_at(sims[:9], _share(9)), "9 sessions share the budget again")

        # A charger that loses its connection falls back to its safe default (its leases end).
        gone = sims[8]
        await gone.ws.close()
        await _until(
            lambda: abs((gone.limit_a(1) or 99) - _share(10)) < EPSILON,
            "the disconnected charger at its safe default",
            timeout=LEASE_S + STEP_S,
        )
        # Back (a 1.6 charger whose socket dropped: it reconnects without a BootNotification):
        # it is sent its safe default, leases and session limit again.
        asked_before = len(gone.received_calls)
        await gone.connect()

        def set_again() -> bool:
            sent = [p for a, p in gone.received_calls[asked_before:] if a == "SetChargingProfile"]
            purposes = {
                (p.get("csChargingProfiles") or p.get("chargingProfile"))["chargingProfilePurpose"]
                for p in sent
            }
            return {"TxProfile", "TxDefaultProfile"} <= purposes and len(purposes) == 3

        await _until(set_again, "the reconnected charger set up again")
        await _until(lambda: _all_at(sims[:9], _share(9)), "the reconnected charger's limit back")

        # The building meter says less: every limit goes down.
        before = _limits(sims[:9])
        async with httpx.AsyncClient(base_url=power_server.url, timeout=30) as http:
            token = (
                await http.post(
                    "/api/v1/auth/token/",
                    json={"username": user.username, "password": "secret-pass-123"},
                )
            ).json()["token"]
            answer = await http.post(
                f"/api/v1/properties/{site.pk}/power/reading/",
                json={"limit_a": str(LOWER_BUDGET), "valid_for_s": 600},
                headers={"Authorization": f"Token {token}"},
            )
            assert answer.status_code == 201, answer.text

        def lowered() -> bool:
            now = _limits(sims[:9])
            total = sum(limit or 0 for limit in now)
            return total <= LOWER_BUDGET + EPSILON and all(
                a is not None and b is not None and a < b for a, b in zip(now, before, strict=True)
            )

        await _until(lowered, f"every limit lower, {LOWER_BUDGET} A in all")
        watcher.budget = LOWER_BUDGET
        taken = watcher.samples
        while watcher.samples < taken + 30:  # a few more samples under the new budget
            await asyncio.sleep(0.05)

    async def _give_back(five: list[SimulatedCharger]) -> None:
        # The first car only takes 3 kW (4.3 A): after settling it keeps its draw plus a margin
        # (at least its 6 A minimum) and the other four share the rest.
        small = five[0]
        small.state[1].ev_max_a = 3000 / (3 * 230)
        await _until(
            lambda: (
                (small.limit_a(1) or 99) < 8
                and all((s.limit_a(1) or 0) > _share(5) + 1 for s in five[1:])
            ),
            "the 3 kW car's share given to the others",
            timeout=STEP_S + 2,
        )
        small.state[1].ev_max_a = None  # it draws more again: it gets its share back later

    asyncio.run(scenario())

    assert watcher.breaches == []
    assert watcher.worst_limits <= BUDGET + EPSILON
    assert watcher.worst_draw <= BUDGET + EPSILON
    assert AllocationSample.objects.filter(property=site).exists()  # the server saw it too
