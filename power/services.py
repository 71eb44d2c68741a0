"""Site power services: the budget in force, the demands of the active sessions, recompute
(atomic) and the budget writes (docs/power.md)."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from authorization.models import Token
from chargers.models import Charger, ChargingSession, Connector, MeterValue
from chargers.ocpp.readings import plausible

from . import allocation, profiles, schedule
from .allocation import Budget, Demand, Limit, Policy, PriorityClass
from .models import (
    AllocationSample,
    Circuit,
    ConnectorAllocation,
    ConnectorPower,
    SiteBudget,
    Uncontrollable,
    WaitingPeriod,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_A = Decimal(32)
LIVE_READING_TTL = timedelta(minutes=5)
SAMPLE_EVERY = timedelta(seconds=10)
CURRENT = "Current.Import"
POWER = "Power.Active.Import"


@dataclass(frozen=True)
class BudgetInForce:
    limit_a: Decimal
    source: str  # live, schedule, static
    budget: Budget
    policy: Policy


def budget_in_force(site: SiteBudget, now: datetime) -> BudgetInForce:
    """Return the budget that applies now: a fresh live reading, else the schedule, else static."""
    try:
        tz = zoneinfo.ZoneInfo(site.property.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    try:
        windows = schedule.parse_schedule(site.schedule)
    except schedule.ScheduleError:  # validated on the way in; an old bad row falls back
        windows = []
    limit_a, source = schedule.limit_in_force(
        static_a=site.limit_a,
        windows=windows,
        live_a=site.live_limit_a,
        live_expires_at=site.live_expires_at,
        now=now,
        local=now.astimezone(tz),
    )
    circuits = tuple(
        allocation.Circuit(id=str(c.pk), limit_a=c.limit_a, parent=str(c.parent_id or ""))
        for c in Circuit.objects.filter(property_id=site.property_id)
    )
    return BudgetInForce(
        limit_a=limit_a,
        source=source,
        budget=Budget(
            limit_a_per_phase=limit_a,
            phases=site.phases,
            voltage=site.voltage,
            circuits=circuits,
        ),
        policy=Policy(site.policy),
    )


def priority_class(token: Token | None, in_group: bool) -> PriorityClass:
    """Return who is charging: stay guest, paying guest, employee (a group card), fleet, other."""
    if token is None:
        return PriorityClass.OTHER
    if token.reservation_id is not None:
        return PriorityClass.STAY_GUEST
    if token.type == Token.Type.GUEST:
        return PriorityClass.PAYING_GUEST
    if in_group:
        return PriorityClass.EMPLOYEE
    if token.parent_id_tag:  # a fleet's cards share a parent id tag (OCPP 1.6 ParentIdTag)
        return PriorityClass.FLEET
    return PriorityClass.OTHER


def measured_current(session_id: int, *, phases: int, voltage: int) -> Decimal | None:
    """Return the current the session draws now (highest phase, A) from its latest meter values:
    Current.Import, else Power.Active.Import divided over the connector's phases."""
    rows = list(
        MeterValue.objects.filter(session_id=session_id, measurand__in=(CURRENT, POWER))
        .exclude(value=None)
        # Newest first along the (session, timestamp) index: a long session has thousands.
        .order_by("-timestamp", "-id")
        .values_list("timestamp", "measurand", "unit", "value")[:8]
    )
    if not rows:
        return None
    latest = rows[0][0]
    rows = [r for r in rows if r[0] == latest]
    return draw_of(
        [(at, measurand, unit, Decimal(value or 0)) for at, measurand, unit, value in rows],
        phases=phases,
        voltage=voltage,
    )


def phases_drawn(session_id: int) -> int | None:
    """The phases the car draws on from its latest per-phase Current.Import readings (OCPP 1.6
    has no numberOfPhasesUsed); None without per-phase readings (`profiles.phases_drawn`)."""
    rows = list(
        MeterValue.objects.filter(session_id=session_id, measurand=CURRENT)
        .exclude(value=None)
        .exclude(phase="")
        .order_by("-timestamp", "-id")
        .values_list("timestamp", "phase", "value")[:6]
    )
    if not rows:
        return None
    latest = rows[0][0]
    return profiles.phases_drawn(
        {phase: Decimal(value or 0) for at, phase, value in rows if at == latest}
    )


def active_sessions(property_id: int) -> list[ChargingSession]:
    in_group = Token.groups.through.objects.filter(token_id=OuterRef("token_id"))
    return list(
        ChargingSession.objects.filter(
            charger__property_id=property_id, status=ChargingSession.Status.ACTIVE
        )
        .select_related("charger", "token")
        .annotate(in_group=Exists(in_group))
        .order_by("started_at", "pk")
    )


def demands_for(
    property_id: int, site: SiteBudget
) -> tuple[list[Demand], dict[tuple[str, int], tuple[int, str, Decimal | None]]]:
    """Return the demands of the property's active sessions, and per connector (session id,
    priority class, measured A) for the allocation rows."""
    sessions = active_sessions(property_id)
    electrical = {
        (p.charger_id, p.connector_id): p
        for p in ConnectorPower.objects.filter(charger__property_id=property_id)
    }
    refused = {
        (a.charger_id, a.connector_id)
        for a in ConnectorAllocation.objects.filter(property_id=property_id, refused=True)
    } | set(refusing_connectors(property_id, whole=False))
    demands: list[Demand] = []
    facts: dict[tuple[str, int], tuple[int, str, Decimal | None]] = {}
    # Two open sessions on one connector: the older one is stale (sessions come oldest first).
    newest = {(s.charger.station_id, s.connector_id): s for s in sessions}
    for key, s in newest.items():
        ep = electrical.get((s.charger_id, s.connector_id))
        phases = ep.phases if ep else site.phases
        min_a = ep.min_a if ep else allocation.DEFAULT_MIN_A
        max_a = ep.max_a if ep else DEFAULT_MAX_A
        measured = measured_current(s.pk, phases=phases, voltage=site.voltage)
        if not allocation.may_draw(s.id_tag_status, measured):
            continue
        kind = priority_class(s.token, bool(getattr(s, "in_group", False)))
        demands.append(
            Demand(
                station_id=s.charger.station_id,
                connector_id=s.connector_id,
                phases=phases,
                min_a=min_a,
                max_a=max_a,
                measured_a=measured,
                priority=allocation.priority_rank(kind),
                arrived_at=s.started_at,
                session_id=s.pk,
                circuit=str(ep.circuit_id) if ep and ep.circuit_id else allocation.MAIN,
                phase_rotation=ep.phase_rotation if ep else "RST",
                fixed_a=max_a if (s.charger_id, s.connector_id) in refused else None,
            )
        )
        facts[key] = (s.charger_id, kind.value, measured)
    return demands, facts


def refusing_connectors(property_id: int, *, whole: bool = True) -> dict[tuple[int, int], Charger]:
    """The property's connectors that refuse limits (power.models.Uncontrollable), with their
    charger. A charger that refused its safe default or leases (connector 0) counts with every
    connector when `whole`: while idle or offline it may start at its maximum, whereas its
    sessions' own limits still hold."""
    rows = list(
        Uncontrollable.objects.filter(charger__property_id=property_id).select_related("charger")
    )
    if not whole:
        rows = [r for r in rows if r.connector_id]
    chargers = {r.charger_id for r in rows if r.connector_id == 0}
    ports: dict[int, set[int]] = {}
    if chargers:
        for charger_id, connector_id in [
            *Connector.objects.filter(charger_id__in=chargers, connector_id__gt=0).values_list(
                "charger_id", "connector_id"
            ),
            *ConnectorPower.objects.filter(charger_id__in=chargers).values_list(
                "charger_id", "connector_id"
            ),
        ]:
            ports.setdefault(charger_id, set()).add(connector_id)
    found: dict[tuple[int, int], Charger] = {}
    for r in rows:
        for connector_id in [r.connector_id] if r.connector_id else ports.get(r.charger_id, {1}):
            found[(r.charger_id, connector_id)] = r.charger
    return found


def reservations(property_id: int, site: SiteBudget, busy: set[tuple[int, int]]) -> list[Demand]:
    """The connectors without a session (`busy`: those with one) that refuse limits and could
    draw now (`allocation.could_draw`): each is reserved its maximum."""
    refusing = {k: c for k, c in refusing_connectors(property_id).items() if k not in busy}
    if not refusing:
        return []
    charger_ids = {charger_id for charger_id, _ in refusing}
    status = {
        (charger_id, connector_id): value
        for charger_id, connector_id, value in Connector.objects.filter(
            charger_id__in=charger_ids
        ).values_list("charger_id", "connector_id", "status")
    }
    electrical = {
        (p.charger_id, p.connector_id): p
        for p in ConnectorPower.objects.filter(charger_id__in=charger_ids)
    }
    now = timezone.now()
    reserved = []
    for (charger_id, connector_id), charger in sorted(refusing.items()):
        whole = status.get((charger_id, 0), "")
        state = (
            whole if whole in allocation.CANNOT_DRAW else status.get((charger_id, connector_id), "")
        )
        if not allocation.could_draw(online=charger.is_online(now), status=state):
            continue
        ep = electrical.get((charger_id, connector_id))
        reserved.append(_reserve(charger, connector_id, ep, site, None, now))
    return reserved


def _reserve(
    charger: Charger,
    connector_id: int,
    ep: ConnectorPower | None,
    site: SiteBudget,
    fixed_a: Decimal | None,
    now: datetime,
) -> Demand:
    """A connector without a session reserved `fixed_a` (None: its maximum) in the allocation."""
    max_a = ep.max_a if ep else DEFAULT_MAX_A
    return Demand(
        station_id=charger.station_id,
        connector_id=connector_id,
        phases=ep.phases if ep else site.phases,
        min_a=ep.min_a if ep else allocation.DEFAULT_MIN_A,
        max_a=max_a,
        measured_a=None,
        priority=0,
        arrived_at=now,
        circuit=str(ep.circuit_id) if ep and ep.circuit_id else allocation.MAIN,
        phase_rotation=ep.phase_rotation if ep else "RST",
        fixed_a=max_a if fixed_a is None else min(fixed_a, max_a),
    )


def lease_margin() -> timedelta:
    """How long before a charger's 0 A waiting lease ends its idle connectors are reserved its
    safe default, should no renewal be in force by then: the renewal's answer timeout, one
    refresh of the allocation and one pass of each sweep, so the others' decreases are sent
    before the lease ends (docs/power.md, "The lease rule")."""
    return timedelta(
        seconds=float(settings.POWER_COMMAND_TIMEOUT)
        + float(settings.POWER_REFRESH_SECONDS)
        + float(settings.POWER_SWEEP_SECONDS)
        + float(settings.POWER_ENFORCE_SWEEP_SECONDS)
    )


def lapsing(
    property_id: int, site: SiteBudget, busy: set[tuple[int, int]], now: datetime
) -> list[Demand]:
    """The idle connectors (`busy`: those with a session) of the chargers set up with a safe
    default whose 0 A waiting lease will not hold through `lease_margin()` (renewal refused,
    unanswered or late; offline; reconnected and not set up again): a session started there
    draws up to the charger's safe default, so that is reserved (in all, over its connectors
    that could draw). A charger that refuses limits is reserved its maximum instead
    (`reservations`)."""
    from . import enforcement

    refusing = {charger_id for charger_id, _ in refusing_connectors(property_id)}
    chargers = {
        c.pk: c for c in Charger.objects.filter(property_id=property_id).exclude(pk__in=refusing)
    }
    exposed = enforcement.exposed_safe_defaults(
        list(chargers.values()), until=now + lease_margin(), voltage=site.voltage
    )
    if not exposed:
        return []
    electrical: dict[int, list[ConnectorPower]] = {}
    for row in ConnectorPower.objects.filter(charger_id__in=exposed).order_by("connector_id"):
        electrical.setdefault(row.charger_id, []).append(row)
    status = {
        (charger_id, connector_id): value
        for charger_id, connector_id, value in Connector.objects.filter(
            charger_id__in=exposed
        ).values_list("charger_id", "connector_id", "status")
    }
    reserved: list[Demand] = []
    for charger_id, safe_a in sorted(exposed.items()):
        charger = chargers[charger_id]
        ports: list[ConnectorPower | None] = [*electrical.get(charger_id, [])] or [None]
        online = charger.is_online(now)
        left = safe_a
        for port in ports:
            connector_id = port.connector_id if port else 1
            whole = status.get((charger_id, 0), "")
            state = (
                whole
                if whole in allocation.CANNOT_DRAW
                else status.get((charger_id, connector_id), "")
            )
            if left <= 0 or (charger_id, connector_id) in busy:
                continue
            if not allocation.could_draw(online=online, status=state):
                continue
            demand = _reserve(charger, connector_id, port, site, left, now)
            left -= demand.fixed_a or 0
            reserved.append(demand)
    return reserved


def _previous(property_id: int) -> list[Limit]:
    return [
        Limit(
            station_id=a.charger.station_id,
            connector_id=a.connector_id,
            limit_a=a.limit_a,
            waiting=a.waiting,
            reason=a.reason,
            session_id=a.session_id,
            low_since=a.low_since,
            given_back=a.given_back,
        )
        for a in ConnectorAllocation.objects.filter(property_id=property_id).select_related(
            "charger"
        )
    ]


def _settle() -> timedelta:
    """How long a car draws less than its limit before the rest goes to others."""
    return timedelta(seconds=getattr(settings, "POWER_SETTLE_SECONDS", 60))


def recompute(property_id: int, *, now: datetime | None = None) -> list[Limit]:
    """Allocate the property's budget to its active sessions, store the allocation, and hand the
    limits to enforcement once committed. Without a budget: nothing (no allocation rows)."""
    now = now or timezone.now()
    with transaction.atomic():
        site = (
            SiteBudget.objects.select_for_update()
            .select_related("property")
            .filter(property_id=property_id)
            .first()
        )
        if site is None:
            # No budget (any more): no limits; enforcement lifts what it had set.
            deleted, _ = ConnectorAllocation.objects.filter(property_id=property_id).delete()
            if deleted:
                transaction.on_commit(lambda: _enforce(property_id, []))
            return []
        in_force = budget_in_force(site, now)
        demands, facts = demands_for(property_id, site)
        busy = {(facts[d.key][0], d.connector_id) for d in demands}
        reserved = reservations(property_id, site, busy) + lapsing(property_id, site, busy, now)
        previous = _previous(property_id)
        try:
            limits = allocation.allocate(
                demands,
                in_force.budget,
                in_force.policy,
                now,
                previous,
                settle=_settle(),
                reserved=reserved,
            )
        except allocation.CircuitError:
            logger.exception("Property %s: its circuits are not a tree", property_id)
            limits = allocation.allocate(
                demands,
                Budget(in_force.limit_a, site.phases, site.voltage),
                in_force.policy,
                now,
                previous,
                settle=_settle(),
                reserved=reserved,
            )
        _store(property_id, limits, facts)
        _waiting_periods(property_id, limits, now)
        _sample(site, in_force, limits, demands, facts, now)
        SiteBudget.objects.filter(pk=site.pk).update(dirty_at=None, computed_at=now)
        before = {p.key: (p.limit_a, p.waiting) for p in previous}
        changed = [
            limit.session_id
            for limit in limits
            if limit.session_id is not None
            and before.get(limit.key) != (limit.limit_a, limit.waiting)
        ]
        transaction.on_commit(lambda: _enforce(property_id, limits))
        if changed:
            transaction.on_commit(lambda: _announce(changed))
    return limits


def _announce(session_ids: list[int]) -> None:
    from .signals import allocation_changed

    # A receiver's failure is logged by Django (django.dispatch) and never stops the others.
    allocation_changed.send_robust(sender=None, session_ids=session_ids)


def _store(
    property_id: int,
    limits: Sequence[Limit],
    facts: dict[tuple[str, int], tuple[int, str, Decimal | None]],
) -> None:
    """Write the rows that changed (every few seconds per site: most rows stay as they were),
    create the new ones and remove those of sessions that ended."""
    existing = {
        (row.charger_id, row.connector_id): row
        for row in ConnectorAllocation.objects.filter(
            charger_id__in={charger_id for charger_id, _, _ in facts.values()}
        )
    }
    now = timezone.now()
    keep, new, changed = [], [], []
    for limit in limits:
        charger_id, kind, measured = facts[limit.key]
        values = {
            "property_id": property_id,
            "session_id": limit.session_id,
            "limit_a": limit.limit_a,
            "measured_a": None if measured is None else round(measured, 1),
            "waiting": limit.waiting,
            "reason": limit.reason,
            "priority_class": kind,
            "low_since": limit.low_since,
            "given_back": limit.given_back,
        }
        row = existing.get((charger_id, limit.connector_id))
        if row is None:
            new.append(
                ConnectorAllocation(
                    charger_id=charger_id, connector_id=limit.connector_id, **values
                )
            )
            continue
        keep.append(row.pk)
        if any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            changed.append(row)
    if changed:
        ConnectorAllocation.objects.bulk_update(changed, [*STORED_FIELDS, "updated_at"])
    ConnectorAllocation.objects.filter(property_id=property_id).exclude(pk__in=keep).delete()
    if new:
        ConnectorAllocation.objects.bulk_create(new)


STORED_FIELDS = (
    "property_id",
    "session_id",
    "limit_a",
    "measured_a",
    "waiting",
    "reason",
    "priority_class",
    "low_since",
    "given_back",
)


def main_phase_load(limits: Sequence[Limit], demands: Sequence[Demand], budget: Budget) -> Decimal:
    """Return the amperes on the most loaded phase of the main connection."""
    load = allocation.phase_load(limits, demands, budget)
    return max((a for (node, _), a in load.items() if node == allocation.MAIN), default=Decimal(0))


def _waiting_periods(property_id: int, limits: Sequence[Limit], now: datetime) -> None:
    """Open a WaitingPeriod when a session starts waiting, close it when it gets power or ends."""
    waiting = {limit.session_id for limit in limits if limit.waiting and limit.session_id}
    open_waits = WaitingPeriod.objects.filter(
        session__charger__property_id=property_id, ended_at=None
    )
    already = set(open_waits.values_list("session_id", flat=True))
    open_waits.exclude(session_id__in=waiting).update(ended_at=now)
    WaitingPeriod.objects.bulk_create(
        [WaitingPeriod(session_id=sid, started_at=now) for sid in sorted(waiting - already)]
    )


def _sample(
    site: SiteBudget,
    in_force: BudgetInForce,
    limits: Sequence[Limit],
    demands: Sequence[Demand],
    facts: dict[tuple[str, int], tuple[int, str, Decimal | None]],
    now: datetime,
) -> None:
    """Keep a point for the chart at most every SAMPLE_EVERY: the budget, and the limits and the
    measured draw on the most loaded phase of the main connection."""
    last = (
        AllocationSample.objects.filter(property_id=site.property_id)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    if last is not None and now - last < SAMPLE_EVERY:
        return
    drawn = [
        Limit(limit.station_id, limit.connector_id, m, False, "")
        for limit in limits
        if (m := facts[limit.key][2]) is not None
    ]
    # A refused charger is counted at its assumed draw in the limits, at its reading here.
    unfixed = [replace(d, fixed_a=None) for d in demands]
    AllocationSample.objects.create(
        property_id=site.property_id,
        at=now,
        budget_a=in_force.limit_a,
        allocated_a=round(main_phase_load(limits, demands, in_force.budget), 1),
        measured_a=round(main_phase_load(drawn, unfixed, in_force.budget), 1) if drawn else None,
        sessions=len(limits),
        waiting=sum(1 for limit in limits if limit.waiting),
    )


def _enforce(property_id: int, limits: list[Limit]) -> None:
    from . import enforcement

    try:
        enforcement.enforce(property_id, limits)
    except Exception:  # enforcement failing must not undo or block the allocation
        logger.exception("Enforcing the power allocation of property %s failed", property_id)


def mark_dirty(*, property_ids: Sequence[int] = (), session_ids: Sequence[int] = ()) -> int:
    """Ask for a recompute of these properties (or those of these sessions) soon (the sweep
    runs them within seconds)."""
    qs = SiteBudget.objects.filter(dirty_at=None)
    if session_ids:
        qs = qs.filter(property__chargers__sessions__in=list(session_ids))
    else:
        qs = qs.filter(property_id__in=list(property_ids))
    return qs.update(dirty_at=timezone.now())


# The newest MeterValue id the sweep has looked at (per process; None: not yet, start from now).
meter_mark: list[int | None] = [None]
# At most this many new meter rows are read per sweep (the rest on the next one, 2 s later).
METER_SCAN_LIMIT = 5000


def draw_changed(*, threshold: Decimal | None = None) -> set[int]:
    """Return the properties where a session's draw moved by `threshold` amperes or more
    (POWER_DRAW_CHANGE_A, 2) from what its last allocation measured: read from the meter values
    written since the last call, along the primary key, in four queries per call whatever the
    number of frames (nothing is added to the MeterValues write path). A row committed after a
    newer one was seen (concurrent writers) is missed here; the periodic refresh catches it."""
    if threshold is None:
        threshold = Decimal(str(getattr(settings, "POWER_DRAW_CHANGE_A", 2)))
    newest = MeterValue.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    mark = meter_mark[0]
    meter_mark[0] = newest  # moved back below when the scan stops at its limit
    if mark is None or newest <= mark:
        return set()
    rows = list(
        MeterValue.objects.filter(pk__gt=mark, pk__lte=newest, measurand__in=(CURRENT, POWER))
        .exclude(value=None)
        .exclude(session_id=None)
        .order_by("pk")
        .values_list("pk", "session_id", "timestamp", "measurand", "unit", "value")[
            :METER_SCAN_LIMIT
        ]
    )
    if not rows:
        return set()
    if len(rows) == METER_SCAN_LIMIT:
        meter_mark[0] = rows[-1][0]  # the rest on the next sweep
    latest: dict[int, list[tuple[datetime, str, str, Decimal]]] = {}
    for _, session_id, at, measurand, unit, value in rows:
        seen = latest.setdefault(session_id, [])
        if seen and seen[0][0] != at:
            if at < seen[0][0]:
                continue
            seen.clear()
        seen.append((at, measurand, unit, Decimal(str(value))))
    allocations = list(
        ConnectorAllocation.objects.filter(session_id__in=list(latest)).values_list(
            "session_id",
            "property_id",
            "measured_a",
            "charger_id",
            "connector_id",
            "property__power_budget__phases",
            "property__power_budget__voltage",
        )
    )
    phases_of = dict(
        ((charger_id, connector_id), phases)
        for charger_id, connector_id, phases in ConnectorPower.objects.filter(
            charger_id__in={a[3] for a in allocations}
        ).values_list("charger_id", "connector_id", "phases")
    )
    moved: set[int] = set()
    for (
        session_id,
        property_id,
        measured,
        charger_id,
        connector_id,
        site_phases,
        volts,
    ) in allocations:
        phases = phases_of.get((charger_id, connector_id), site_phases or 3)
        now_a = draw_of(latest[session_id], phases=phases, voltage=volts or 230)
        if now_a is not None and abs(now_a - (measured or Decimal(0))) >= threshold:
            moved.add(property_id)
    return moved


def draw_of(
    rows: Sequence[tuple[datetime, str, str, Decimal]], *, phases: int, voltage: int
) -> Decimal | None:
    """The current drawn (highest phase, A) from one moment's readings (`measured_current`). A
    value no charger can report (stored before readings were bounded at the door) is left out."""
    rows = [r for r in rows if plausible(r[1], r[2], r[3])]
    currents = [v for _, m, unit, v in rows if m == CURRENT and unit in ("A", "")]
    if currents:
        return max(Decimal(0), max(currents))
    watts = [v * (1000 if unit == "kW" else 1) for _, m, unit, v in rows if m == POWER]
    if watts:
        return max(Decimal(0), max(watts)) / Decimal(voltage * max(1, phases))
    return None


def recompute_due(*, now: datetime | None = None, refresh: timedelta) -> int:
    """Recompute every property marked dirty, every one where a session's draw moved materially
    since its last allocation (`draw_changed`), and every one with active sessions whose last
    allocation is older than `refresh` (the backstop: give-back, schedule, live expiry)."""
    now = now or timezone.now()
    try:
        moved = draw_changed()
    except Exception:  # the refresh below still reaches every site with sessions
        logger.exception("Reading the draw changes failed")
        moved = set()
    dirty = moved | set(
        SiteBudget.objects.exclude(dirty_at=None).values_list("property_id", flat=True)
    )
    stale = set(
        SiteBudget.objects.filter(
            property__chargers__sessions__status=ChargingSession.Status.ACTIVE
        )
        .exclude(computed_at__gt=now - refresh)
        .values_list("property_id", flat=True)
    )
    # Properties whose last sessions ended still have rows to clear.
    ended = set(
        ConnectorAllocation.objects.exclude(
            session__status=ChargingSession.Status.ACTIVE
        ).values_list("property_id", flat=True)
    )
    done = 0
    for property_id in sorted(dirty | stale | ended):
        try:
            recompute(property_id, now=now)
        except Exception:  # one site's failure never stops the others' allocation
            logger.exception("Recomputing the power allocation of property %s failed", property_id)
            continue
        done += 1
    return done


@dataclass(frozen=True)
class CircuitSpec:
    name: str
    limit_a: Decimal
    parent: str | None = None


@dataclass(frozen=True)
class ConnectorSpec:
    charger_id: int
    connector_id: int
    phases: int
    phase_rotation: str
    min_a: Decimal
    max_a: Decimal
    circuit: str | None = None


# The most circuits and connectors a budget takes in one request (docs/power.md).
MAX_CIRCUITS = 200
MAX_CONNECTORS = 2000
MAX_CIRCUIT_A = Decimal(10000)


def check_circuits(circuits: Sequence[CircuitSpec]) -> None:
    """Raise allocation.CircuitError unless the circuits form a tree under the main connection
    (linear in the number of circuits, `allocation.check_tree`)."""
    if len(circuits) > MAX_CIRCUITS:
        raise allocation.CircuitError(f"At most {MAX_CIRCUITS} circuits.")
    if any(not 0 <= c.limit_a <= MAX_CIRCUIT_A for c in circuits):
        raise allocation.CircuitError(f"A circuit's limit is 0 to {MAX_CIRCUIT_A} A.")
    names = [c.name for c in circuits]
    if len(set(names)) != len(names):
        raise allocation.CircuitError("Two circuits have the same name.")
    allocation.check_tree({c.name: c.parent or allocation.MAIN for c in circuits})


class BudgetChanged(Exception):
    """The budget was saved (or removed) by someone else after the form was opened (another
    tab, a colleague): `version` is the budget's version now, `saved_at` when it changed."""

    def __init__(self, current: SiteBudget | None) -> None:
        super().__init__("The budget changed after the form was opened.")
        self.version = budget_version(current)
        self.saved_at = current.updated_at if current is not None else timezone.now()


def budget_version(site: SiteBudget | None) -> str:
    """What a form keeps of the budget it shows, to tell a later save it changed meanwhile."""
    return site.updated_at.isoformat() if site is not None else ""


@transaction.atomic
def budget_save(
    *,
    property_id: int,
    limit_a: Decimal,
    phases: int,
    voltage: int,
    policy: str,
    schedule_entries: list[dict],
    circuits: Sequence[CircuitSpec] | None = None,
    connectors: Sequence[ConnectorSpec] | None = None,
    connectors_replace: bool = False,
    version: str | None = None,
) -> SiteBudget:
    """Create or replace the property's budget (and, when given, its circuits and connectors'
    electrical data; `connectors_replace`: the connectors not given lose theirs), then recompute
    its allocation. Input is validated by the caller
    (schedule.parse_schedule, check_circuits).

    `version` (`budget_version` of the budget the form showed, "" for none): raise
    BudgetChanged when the budget is no longer that one, so a stale tab does not silently undo
    what was saved since. Saves of one property take turns (its row is locked)."""
    from backoffice.models import Property

    # FOR NO KEY UPDATE: saves wait for each other, rows that merely reference the property
    # (allocations, samples written by a recompute) do not wait for a save.
    list(Property.objects.select_for_update(no_key=True).filter(pk=property_id).values_list("pk"))
    if version is not None:
        current = SiteBudget.objects.filter(property_id=property_id).first()
        if budget_version(current) != version:
            raise BudgetChanged(current)
    site, _ = SiteBudget.objects.update_or_create(
        property_id=property_id,
        defaults={
            "limit_a": limit_a,
            "phases": phases,
            "voltage": voltage,
            "policy": policy,
            "schedule": schedule_entries,
        },
    )
    if circuits is not None:
        _circuits_replace(property_id, circuits)
    if connectors is not None and connectors_replace:  # the portal's list is all of them
        listed = {(c.charger_id, c.connector_id) for c in connectors}
        for row in ConnectorPower.objects.filter(charger__property_id=property_id):
            if (row.charger_id, row.connector_id) not in listed:
                row.delete()
    if connectors is not None:
        by_name = dict(Circuit.objects.filter(property_id=property_id).values_list("name", "pk"))
        for spec in connectors:
            ConnectorPower.objects.update_or_create(
                charger_id=spec.charger_id,
                connector_id=spec.connector_id,
                defaults={
                    "phases": spec.phases,
                    "phase_rotation": spec.phase_rotation,
                    "min_a": spec.min_a,
                    "max_a": spec.max_a,
                    "circuit_id": by_name.get(spec.circuit) if spec.circuit else None,
                },
            )
    recompute(property_id)
    site.refresh_from_db()
    return site


def _circuits_replace(property_id: int, circuits: Sequence[CircuitSpec]) -> None:
    existing = {c.name: c for c in Circuit.objects.filter(property_id=property_id)}
    wanted = {c.name for c in circuits}
    Circuit.objects.filter(property_id=property_id).exclude(name__in=wanted).delete()
    rows: dict[str, Circuit] = {}
    for spec in circuits:
        row = existing.get(spec.name) or Circuit(property_id=property_id, name=spec.name)
        row.limit_a = spec.limit_a
        row.parent = None
        row.save()
        rows[spec.name] = row
    for spec in circuits:
        if spec.parent:
            rows[spec.name].parent = rows[spec.parent]
            rows[spec.name].save(update_fields=["parent"])


@transaction.atomic
def budget_delete(*, property_id: int) -> None:
    """Remove the property's budget and circuits: its sessions are no longer limited."""
    SiteBudget.objects.filter(property_id=property_id).delete()
    Circuit.objects.filter(property_id=property_id).delete()
    recompute(property_id)


def live_reading_record(
    *, property_id: int, limit_a: Decimal, valid_for: timedelta = LIVE_READING_TTL
) -> SiteBudget | None:
    """Store a live budget (a building meter's headroom) valid for `valid_for`, then recompute.
    None when the property has no budget."""
    now = timezone.now()
    with transaction.atomic():
        updated = SiteBudget.objects.filter(property_id=property_id).update(
            live_limit_a=limit_a.quantize(Decimal("0.1"), rounding="ROUND_DOWN"),
            live_at=now,
            live_expires_at=now + valid_for,
        )
        if not updated:
            return None
        recompute(property_id, now=now)
    return SiteBudget.objects.select_related("property").get(property_id=property_id)
