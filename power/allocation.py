"""Pure site power allocation: the limit in amperes each charging session may draw (docs/power.md).

No Django here (the "stay pure" contract). Inputs are the active sessions (`Demand`), the site's
budget with its circuit tree (`Budget`), the policy and the previous allocation; the output is one
`Limit` per connector. The rules, in order:

1. Admission. Every admitted session gets at least its minimum (6 A by default); when the budget
   (at any circuit, on any phase) cannot give the next session its minimum, it waits at 0 A, and
   so does every later one whose path crosses the full circuit: a queue in arrival order (priority
   policy: by class first, then arrival).
2. Sharing. What is left is shared by progressive filling ("water-filling"): all admitted sessions
   rise together until they reach their own cap or a circuit on their path is full. Equal policy:
   everyone together; priority policy: class by class, the next class gets what the one before left.
3. Give-back. A car that has drawn less than its limit (by more than the margin) for the settling
   time is capped at what it draws plus the margin (never below its minimum); the rest goes to the
   others. When it draws close to that cap it gets its share back on the next allocation.

Amperes are per phase. A three-phase connector uses the site's three phases; a single-phase one
uses the site phase its phase rotation puts first (OCPP PhaseRotation "RST": R = L1, S = L2,
T = L3). The sum of the limits on every phase of every circuit never exceeds its limit; limits are
rounded down to 0.1 A so rounding never crosses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

STEP = Decimal("0.1")
ZERO = Decimal(0)
EPSILON = Decimal("1e-9")
DEFAULT_MIN_A = Decimal(6)
DEFAULT_MARGIN_A = Decimal(2)
DEFAULT_SETTLE = timedelta(seconds=60)
MAIN = ""  # the circuit id of the site's main connection (the root of the tree)

PHASE_OF_LETTER = {"R": 0, "S": 1, "T": 2}


class Policy(StrEnum):
    EQUAL = "equal"
    PRIORITY = "priority"


class PriorityClass(StrEnum):
    """Who is charging, most important first under the priority policy (lower rank wins)."""

    STAY_GUEST = "stay_guest"
    PAYING_GUEST = "paying_guest"
    EMPLOYEE = "employee"
    FLEET = "fleet"
    OTHER = "other"


DEFAULT_PRIORITY_ORDER: tuple[PriorityClass, ...] = tuple(PriorityClass)


def priority_rank(kind: str, order: Sequence[str] = DEFAULT_PRIORITY_ORDER) -> int:
    """Return the rank of a priority class in the host's order (unknown classes come last)."""
    try:
        return list(order).index(kind)
    except ValueError:
        return len(order)


@dataclass(frozen=True)
class Demand:
    """An active session asking for power on one connector."""

    station_id: str
    connector_id: int
    phases: int  # 1, 2 or 3: how many of the site's phases the connector uses
    min_a: Decimal
    max_a: Decimal
    measured_a: Decimal | None  # the current drawn now (highest phase), None if unknown
    priority: int  # rank: lower is served first under the priority policy
    arrived_at: datetime
    session_id: int | None = None
    circuit: str = MAIN  # the circuit it hangs on (MAIN = the site's main connection)
    phase_rotation: str = "RST"
    # A charger that refused its profile is assumed to draw this (its maximum) whatever we say:
    # it is reserved first, never waits and never shares (issue 38: "the others' budget shrinks").
    fixed_a: Decimal | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.station_id, self.connector_id)


@dataclass(frozen=True)
class Circuit:
    """A sub-panel: its limit per phase and the circuit it hangs from (MAIN = the main)."""

    id: str
    limit_a: Decimal
    parent: str = MAIN


@dataclass(frozen=True)
class Budget:
    """What the site may draw: per phase at the main connection, and per circuit below it."""

    limit_a_per_phase: Decimal
    phases: int = 3
    voltage: int = 230
    circuits: tuple[Circuit, ...] = ()

    @property
    def limit_kw(self) -> Decimal:
        return self.limit_a_per_phase * self.voltage * self.phases / 1000


@dataclass(frozen=True)
class Limit:
    """The allocation for one connector."""

    station_id: str
    connector_id: int
    limit_a: Decimal
    waiting: bool
    reason: str
    session_id: int | None = None
    # Give-back state, carried to the next allocation through `previous`:
    low_since: datetime | None = None  # drawing less than its limit since
    given_back: bool = False  # capped at its draw plus the margin
    queue_position: int | None = None  # 0 = next in line (only when waiting)

    @property
    def key(self) -> tuple[str, int]:
        return (self.station_id, self.connector_id)


@dataclass
class _Node:
    limit: Decimal
    used: list[Decimal] = field(default_factory=lambda: [ZERO, ZERO, ZERO])


class CircuitError(ValueError):
    """The circuit tree is not a tree (unknown parent, a loop)."""


def check_tree(parents: dict[str, str]) -> None:
    """Raise CircuitError unless every circuit reaches the main connection: each one walked up at
    most once (a circuit already known to reach it ends the walk), so the check is linear in the
    number of circuits however deep the chain (a loop: a circuit met again on the same walk)."""
    if MAIN in parents:
        raise CircuitError("A circuit needs a name.")
    done = {MAIN}
    for cid in parents:
        walk: list[str] = []
        on_walk: set[str] = set()
        node = cid
        while node not in done:
            if node in on_walk:
                raise CircuitError(f"Circuit {cid!r} is part of a loop.")
            if node not in parents:
                raise CircuitError(f"Circuit {walk[-1]!r} hangs from an unknown circuit.")
            walk.append(node)
            on_walk.add(node)
            node = parents[node]
        done.update(walk)


def circuit_paths(budget: Budget) -> dict[str, tuple[str, ...]]:
    """Return each circuit's path to the main connection, itself first (MAIN's is (MAIN,))."""
    parents = {c.id: c.parent or MAIN for c in budget.circuits}
    check_tree(parents)
    paths: dict[str, tuple[str, ...]] = {MAIN: (MAIN,)}

    def path(cid: str) -> tuple[str, ...]:
        # Iterative, so a deep chain needs no deep recursion; each path is built once.
        pending = []
        while cid not in paths:
            pending.append(cid)
            cid = parents[cid]
        for node in reversed(pending):
            paths[node] = (node, *paths[parents[node]])
        return paths[pending[0]] if pending else paths[cid]

    for cid in parents:
        path(cid)
    return paths


def site_phases(demand: Demand, site_phase_count: int) -> tuple[int, ...]:
    """Return the site phases (0 = L1) a connector draws from."""
    if site_phase_count <= 1:
        return (0,)
    rotation = demand.phase_rotation if len(demand.phase_rotation) == 3 else "RST"
    ordered = [PHASE_OF_LETTER.get(letter, i) for i, letter in enumerate(rotation.upper())]
    count = max(1, min(demand.phases, site_phase_count, 3))
    return tuple(ordered[:count])


def _floor(value: Decimal) -> Decimal:
    # The tiny nudge undoes the last digit of a division rounded down (31 stays 31, not 30.9);
    # limits are whole tenths, so it can never carry a sum of limits over one.
    return max(ZERO, (value + EPSILON).quantize(STEP, rounding=ROUND_DOWN))


class _Grid:
    """Capacity left at every circuit on every phase."""

    def __init__(self, budget: Budget) -> None:
        self.paths = circuit_paths(budget)
        self.nodes = {MAIN: _Node(budget.limit_a_per_phase)}
        for c in budget.circuits:
            self.nodes[c.id] = _Node(c.limit_a)
        self.site_phases = budget.phases

    def path(self, demand: Demand) -> tuple[str, ...]:
        return self.paths.get(demand.circuit or MAIN, (MAIN,))

    def cells(self, demand: Demand) -> list[tuple[str, int]]:
        phases = site_phases(demand, self.site_phases)
        return [(node, ph) for node in self.path(demand) for ph in phases]

    def room(self, cell: tuple[str, int]) -> Decimal:
        node = self.nodes[cell[0]]
        return node.limit - node.used[cell[1]]

    def fits(self, demand: Demand, amps: Decimal) -> list[tuple[str, int]]:
        """Return the cells that cannot take `amps` more (empty = it fits)."""
        return [cell for cell in self.cells(demand) if self.room(cell) < amps]

    def take(self, demand: Demand, amps: Decimal) -> None:
        for node, ph in self.cells(demand):
            self.nodes[node].used[ph] += amps


def _give_back(
    demand: Demand, prev: Limit | None, now: datetime, settle: timedelta, margin: Decimal
) -> tuple[Decimal, datetime | None, bool]:
    """Return (cap, low_since, given_back) for a demand from its draw and its previous limit."""
    cap = max(demand.min_a, demand.max_a)
    if demand.measured_a is None or prev is None or prev.waiting:
        return cap, None, False
    measured = demand.measured_a
    if prev.given_back:
        # Still drawing below the cap we left it: keep it capped, following its draw only when
        # the cap would move by half the margin or more: a car's reading wanders by tenths of an
        # ampere, and each new cap is a profile sent to the charger (and one to each other).
        if measured < prev.limit_a - margin / 2:
            follow = max(demand.min_a, min(cap, measured + margin))
            if abs(follow - prev.limit_a) < margin / 2:
                follow = max(demand.min_a, min(cap, prev.limit_a))
            return follow, prev.low_since, True
        return cap, None, False  # it draws more: its share comes back now
    if measured < prev.limit_a - margin:
        low_since = prev.low_since or now
        if now - low_since >= settle:
            return max(demand.min_a, min(cap, measured + margin)), low_since, True
        return cap, low_since, False
    return cap, None, False


def _fill(
    demands: list[Demand],
    alloc: dict[tuple[str, int], Decimal],
    caps: dict[tuple[str, int], Decimal],
    grid: _Grid,
) -> None:
    """Raise the demands together until each reaches its cap or a full circuit (water-filling)."""
    active = [d for d in demands if alloc[d.key] < caps[d.key]]
    while active:
        users: dict[tuple[str, int], int] = {}
        for d in active:
            for cell in grid.cells(d):
                users[cell] = users.get(cell, 0) + 1
        step = min(caps[d.key] - alloc[d.key] for d in active)
        for cell, count in users.items():
            step = min(step, grid.room(cell) / count)
        step = max(ZERO, step)
        for d in active:
            alloc[d.key] += step
            grid.take(d, step)
        full = {cell for cell in users if grid.room(cell) <= Decimal("0.0001")}
        active = [
            d
            for d in active
            if caps[d.key] - alloc[d.key] > Decimal("0.0001")
            and not any(cell in full for cell in grid.cells(d))
        ]


# Connector states in which a charger cannot start a session (1.6 ChargePointStatus, 2.0.1
# ConnectorStatusEnumType); any other, or no news (offline), and it could draw at any moment.
CANNOT_DRAW = frozenset({"Unavailable", "Faulted"})


def could_draw(*, online: bool, status: str) -> bool:
    """Whether a connector that refuses limits could draw now: connected and neither Unavailable
    nor Faulted, or offline (a charger may start sessions offline, 1.6 §3.5.4, 2.0.1 C15)."""
    return not online or status not in CANNOT_DRAW


def waiting_reason(ahead: int) -> str:
    if ahead == 0:
        return "Waiting for power, you are next"
    return f"Waiting for power: {ahead} ahead of you"


def allocate(
    demands: Iterable[Demand],
    budget: Budget,
    policy: Policy | str,
    now: datetime,
    previous: Iterable[Limit] = (),
    *,
    settle: timedelta = DEFAULT_SETTLE,
    margin_a: Decimal = DEFAULT_MARGIN_A,
    reserved: Iterable[Demand] = (),
) -> list[Limit]:
    """Return one Limit per demand (in the demands' order) within the budget and circuits.

    `reserved`: connectors without a session that refuse limits and could draw (`could_draw`);
    each takes its `fixed_a` (else its maximum) before anyone else, and gets no Limit: whatever
    the order of events, the others never count on power such a charger may take."""
    demands = list(demands)
    policy = Policy(policy)
    prev = {p.key: p for p in previous}
    grid = _Grid(budget)
    for r in reserved:
        grid.take(r, r.fixed_a if r.fixed_a is not None else r.max_a)
    order = sorted(
        demands,
        key=lambda d: (
            d.priority if policy == Policy.PRIORITY else 0,
            d.arrived_at,
            d.station_id,
            d.connector_id,
        ),
    )
    alloc: dict[tuple[str, int], Decimal] = {}
    caps: dict[tuple[str, int], Decimal] = {}
    state: dict[tuple[str, int], tuple[datetime | None, bool]] = {}
    waiting: list[Demand] = []
    blocked: set[tuple[str, int]] = set()

    # Chargers that do not obey are reserved first, at what they are assumed to draw.
    for d in order:
        if d.fixed_a is not None:
            alloc[d.key] = caps[d.key] = d.fixed_a
            grid.take(d, d.fixed_a)
    admitted: list[Demand] = []
    for d in order:
        if d.fixed_a is not None:
            continue
        cap, low_since, given_back = _give_back(d, prev.get(d.key), now, settle, margin_a)
        minimum = min(d.min_a, d.max_a)
        short = grid.fits(d, minimum)
        # Behind someone who waits for the same full circuit: wait too (no overtaking).
        if short or any(cell in blocked for cell in grid.cells(d)):
            waiting.append(d)
            blocked.update(short)
            continue
        grid.take(d, minimum)
        alloc[d.key], caps[d.key] = minimum, cap
        state[d.key] = (low_since, given_back)
        admitted.append(d)

    if policy == Policy.PRIORITY:
        for rank in sorted({d.priority for d in admitted}):
            _fill([d for d in admitted if d.priority == rank], alloc, caps, grid)
    else:
        _fill(admitted, alloc, caps, grid)

    queue = {d.key: i for i, d in enumerate(waiting)}
    out: list[Limit] = []
    for d in demands:
        if d.key in queue:
            ahead = queue[d.key]
            out.append(
                Limit(
                    d.station_id,
                    d.connector_id,
                    ZERO,
                    True,
                    waiting_reason(ahead),
                    d.session_id,
                    queue_position=ahead,
                )
            )
            continue
        low_since, given_back = state.get(d.key, (None, False))
        if d.fixed_a is not None:
            reason = "Refused its limit: assumed to draw its maximum"
        elif given_back:
            reason = "Drawing less than its share: the rest goes to the others"
        elif alloc[d.key] >= caps[d.key]:
            reason = "Full power"
        else:
            reason = "Sharing the site's power"
        out.append(
            Limit(
                d.station_id,
                d.connector_id,
                _floor(alloc[d.key]),
                False,
                reason,
                d.session_id,
                low_since=low_since,
                given_back=given_back,
            )
        )
    return out


def may_draw(id_tag_status: str, measured_a: Decimal | None) -> bool:
    """Whether a session takes a share of the site's power. One whose start we answered other
    than Accepted does not: the charger stops it, or only its energy delivery (OCPP 1.6 §3.5.4,
    StopTransactionOnInvalidId), unless its readings show it drawing current all the same."""
    return id_tag_status in ("", "Accepted") or (measured_a is not None and measured_a > 0)


def amps_from_kw(kw: Decimal, *, voltage: int, phases: int) -> Decimal:
    """Return the current per phase for a power in kW (rounded down to 0.1 A)."""
    return _floor(Decimal(kw) * 1000 / (voltage * max(1, phases)))


def phase_load(limits: Iterable[Limit], demands: Iterable[Demand], budget: Budget) -> dict:
    """Return {(circuit, phase): amps} the limits add up to at every circuit (for checks/charts)."""
    grid = _Grid(budget)
    by_key = {d.key: d for d in demands}
    for limit in limits:
        d = by_key.get(limit.key)
        if d is not None:
            grid.take(d, d.fixed_a if d.fixed_a is not None else limit.limit_a)
    return {
        (node, ph): n.used[ph]
        for node, n in grid.nodes.items()
        for ph in range(max(1, budget.phases))
    }
