"""Enforcement of the allocation on the chargers over OCPP smart charging (docs/power.md,
"Enforcement"). 1.6 and 2.0.1 alike, through chargers.devices.commands (a CALL, its answer kept).

A pass over one site (`site_pass`) reads what should be in force and what the chargers accepted,
and sends only the differences:

1. charger by charger (connected and booted): its safe default (power.profiles.safe_default)
   when it changed or the charger (re)connected since we sent it, and its 0 A TxDefaultProfile
   lease when due for renewal (half its time gone) or lost with a reconnect;
2. the session limits that go **down** (TxProfile; after a reconnect every limit counts as one:
   nothing is known of what the charger holds);
3. the station-maximum lease that lifts the safe default (the **lift**), for a charger whose
   steps 1 and 2 were all accepted and that has no decrease left unsent: lifted earlier, a
   charger would draw a session limit from before its reconnect, or give a waiting session the
   full capacity while its 0 A lease is not (yet, or any more) in force;
4. the session limits that go **up**, if every decrease of the site was accepted: at no moment
   do the limits in force add up to more than the new allocation or the old one.

Rate limit and coalescing: a connector gets at most one profile per POWER_PROFILE_MIN_INTERVAL_S;
what is held back is not queued, the next pass (the `power.enforce` sweep, every few seconds)
sends the newest limit then. Chargers are sent to in parallel, each one's CALLs one at a time.

A charger that answers anything but Accepted, a CALLERROR or nothing in time has refused: its
allocation row is marked `refused` with the reason (power.services.recompute then assumes the
connector draws its maximum and shrinks the others), an alert of kind `power_refused` opens
(reliability), and it is asked again after POWER_REFUSED_RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from chargers.devices import commands, stale
from chargers.devices.smart_charging import rate_unit_learnt
from chargers.models import (
    Charger,
    ChargerNotice,
    ChargingProfile,
    ChargingSession,
    Command,
    Connector,
)
from chargers.ocpp import quirks as q
from chargers.state import quirks as quirks_state
from reliability.models import AlertRule
from reliability.services import problem_report, problem_resolved

from . import profiles
from .allocation import Circuit, Limit
from .models import ConnectorAllocation, ConnectorPower, SiteBudget, Uncontrollable

logger = logging.getLogger(__name__)

REFUSED = AlertRule.Kind.POWER_REFUSED
# Chargers that refused their safe default or leases on a connection (its connected_at): not
# asked again on it before then (per process). A reconnect is asked at once.
_refused_until: dict[int, tuple[datetime | None, datetime]] = {}


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def lease_seconds() -> float:
    return _setting("POWER_LEASE_SECONDS", 120)


# -- what should be in force ----------------------------------------------------------------------


@dataclass
class Send:
    """One profile for one charger, and what to record when it is answered."""

    charger: Charger
    profile: profiles.Profile
    allocation_id: int | None = None  # a session limit: its ConnectorAllocation row
    decrease: bool = False
    # The same limit in the other unit: sent once if this one is refused (docs/power.md, "Units").
    alternate: profiles.Profile | None = None
    port_status: str = ""  # a 1.6 session limit's connector status when sent (send_all)


@dataclass
class Plan:
    setup: list[Send] = field(default_factory=list)  # safe defaults and 0 A TxDefault leases
    down: list[Send] = field(default_factory=list)
    lift: list[Send] = field(default_factory=list)  # station-maximum leases
    up: list[Send] = field(default_factory=list)
    held_back: int = 0  # decreases waiting for the rate limit: the increases wait too
    # Chargers with a decrease this pass does not send: not lifted before it is in force.
    unsettled: set[int] = field(default_factory=set)
    # Waiting sessions (0 A) whose lease's TxDefaultProfile is their limit: (row, since).
    settled: list[tuple[int, datetime]] = field(default_factory=list)
    passes: int = 0  # the site's turns taken when this plan was read (SiteBudget.passes)


# A 1.6 charger whose socket dropped reconnects without a BootNotification: once it has been
# connected this long, it is not about to boot and may be sent profiles.
RECONNECT_GRACE = timedelta(seconds=3)


def _booted(charger: Charger, now: datetime) -> bool:
    """Connected and accepted, and booted on this connection or reconnected without booting:
    it may be sent profiles (not before its BootNotification, OCPP 1.6 §4.2, B02)."""
    if not (
        charger.is_online(now)
        and charger.registration_status == Charger.Registration.ACCEPTED
        and charger.connected_at
        and charger.last_boot_at
    ):
        return False
    return charger.last_boot_at >= charger.connected_at or (
        now - charger.connected_at >= RECONNECT_GRACE
    )


def _capacities(charger_ids: list[int]) -> dict[int, Decimal]:
    """Each charger's full capacity per phase: its connectors' maximum currents added up."""
    known = dict(
        ConnectorPower.objects.filter(charger_id__in=charger_ids)
        .values_list("charger_id")
        .annotate(total=Sum("max_a"))
    )
    ports = dict(
        Connector.objects.filter(charger_id__in=charger_ids, connector_id__gt=0)
        .values_list("charger_id")
        .annotate(n=Count("id"))
    )
    from .services import DEFAULT_MAX_A

    return {cid: known.get(cid) or DEFAULT_MAX_A * max(ports.get(cid, 1), 1) for cid in charger_ids}


def _circuits(
    read: Sequence[Circuit], chargers: list[Charger]
) -> tuple[dict[str, tuple[Decimal, str]], dict[str, list[str]]]:
    """The property's circuits (id: (limit, parent)), as the budget in force read them, and the
    circuits each charger's connectors hang on, for `profiles.safe_shares`."""
    circuits = {c.id: (c.limit_a, c.parent) for c in read}
    station = {c.pk: c.station_id for c in chargers}
    circuit_of: dict[str, list[str]] = {}
    for charger_id, circuit_id in ConnectorPower.objects.filter(
        charger_id__in=list(station), circuit__isnull=False
    ).values_list("charger_id", "circuit_id"):
        circuit_of.setdefault(station[charger_id], []).append(str(circuit_id))
    return circuits, circuit_of


@dataclass
class Electrical:
    """What converting a charger's limits to its unit needs (docs/power.md, "Units")."""

    voltage: int
    site_phases: int
    connector_phases: dict[tuple[int, int], int]

    @classmethod
    def of(cls, site: SiteBudget, charger_ids: list[int]) -> Electrical:
        return cls(
            site.voltage,
            site.phases,
            {
                (charger_id, connector_id): phases
                for charger_id, connector_id, phases in ConnectorPower.objects.filter(
                    charger_id__in=charger_ids
                ).values_list("charger_id", "connector_id", "phases")
            },
        )

    def charger_phases(self, charger_id: int) -> int:
        """A charger-wide profile's numberPhases: the most its connectors are wired for."""
        known = [n for (cid, _), n in self.connector_phases.items() if cid == charger_id]
        return min(max(known, default=self.site_phases), self.site_phases)

    def connector_phases_of(self, charger_id: int, connector_id: int) -> int:
        return min(
            self.connector_phases.get((charger_id, connector_id), self.site_phases),
            self.site_phases,
        )


def charger_unit(charger: Charger) -> str:
    """The unit this charger gets its limits in (profiles.unit_for), its quirk profile asked
    through the one resolver (chargers.state.quirks, cached: no query per call)."""
    return profiles.unit_for(
        charger.rate_units,
        charger.rate_unit_learnt,
        watt_only=quirks_state.quirks_of_row(charger).has(q.WATT_ONLY),
    )


def _send(
    charger: Charger,
    profile: profiles.Profile,
    electrical: Electrical,
    phases: int,
    **fields: object,
) -> Send:
    """`profile` (in amperes) as a Send in the unit this charger takes, with numberPhases
    `phases`, and the same limit in the other unit for one retry while its unit is not settled."""
    unit = charger_unit(charger)
    first = profiles.expressed(profile, unit=unit, voltage=electrical.voltage, phases=phases)
    alternate = None
    if not charger.rate_unit_learnt and not (
        # A 2.0.1 TxProfile may be rejected for want of the car's needs (K15.FR.17), no unit
        # question; the safe default sent first at every connection settles the unit anyway.
        charger.speaks_v2() and profile.purpose == profiles.TX_PROFILE
    ):
        alternate = profiles.expressed(
            profile,
            unit=profiles.other_unit(unit),
            voltage=electrical.voltage,
            phases=phases,
        )
    return Send(charger, first, alternate=alternate, **fields)  # type: ignore[arg-type]


def _held(charger_ids: list[int]) -> dict[tuple[int, int], ChargingProfile]:
    """The power profiles each charger accepted (chargers.devices.smart_charging keeps them)."""
    return {
        (p.charger_id, p.profile_id): p
        for p in ChargingProfile.objects.filter(
            charger_id__in=charger_ids,
            status=ChargingProfile.Status.INSTALLED,
            profile_id__in=(
                profiles.PROFILE_ID_SAFE,
                profiles.PROFILE_ID_MAX_LEASE,
                profiles.PROFILE_ID_TX_DEFAULT_LEASE,
            ),
        )
    }


def _held_limit(row: ChargingProfile | None) -> tuple[str, Decimal, object] | None:
    """The unit, limit and numberPhases of the profile the charger holds."""
    try:
        schedule = row.profile["chargingSchedule"][0]  # type: ignore[union-attr]
        period = schedule["chargingSchedulePeriod"][0]
        return (
            str(schedule.get("chargingRateUnit", "A")),
            Decimal(str(period["limit"])),
            period.get("numberPhases") or 3,  # absent means 3 (1.6 §7.12, K01.FR.49)
        )
    except (AttributeError, KeyError, IndexError, TypeError, ArithmeticError):
        return None


def _limit_of(profile: profiles.Profile) -> tuple[str, Decimal, object]:
    """What `_held_limit` reads back once the charger holds `profile`."""
    value = profile.limit_w if profile.limit_w is not None else profile.limit_a
    return (profile.unit, Decimal(str(value)), profile.number_phases or 3)


def _lease_holds(row: ChargingProfile | None, since: datetime | None, now: datetime) -> bool:
    return bool(
        row is not None
        and since is not None
        and row.updated_at >= since
        and row.valid_to is not None
        and row.valid_to > now
    )


def exposed_safe_defaults(
    chargers: Sequence[Charger], *, until: datetime, voltage: int
) -> dict[int, Decimal]:
    """The chargers set up with a safe default whose 0 A waiting lease (accepted on their
    current or last connection) will not hold at `until`, with that safe default in amperes per
    phase (at most their capacity): what a session started there may draw."""
    ids = [c.pk for c in chargers]
    held = _held(ids)
    capacities = _capacities(ids)
    exposed: dict[int, Decimal] = {}
    for charger in chargers:
        safe = _held_limit(held.get((charger.pk, profiles.PROFILE_ID_SAFE)))
        if safe is None:
            continue  # never set up: nothing is known of what it may draw (docs/power.md)
        waiting = held.get((charger.pk, profiles.PROFILE_ID_TX_DEFAULT_LEASE))
        if _lease_holds(waiting, charger.connected_at, until):
            continue
        unit, limit, phases = safe
        amps = limit if unit == "A" else limit / (voltage * Decimal(str(phases or 3)))
        exposed[charger.pk] = min(amps, capacities[charger.pk])
    return exposed


def _charger_setup(
    charger: Charger,
    *,
    safe_a: Decimal,
    capacity_a: Decimal,
    held: dict[tuple[int, int], ChargingProfile],
    electrical: Electrical,
    now: datetime,
) -> tuple[list[Send], bool]:
    """The safe default and leases this charger needs now; and whether its leases hold now (a
    new session on it starts at 0 A)."""
    version = profiles.V201 if charger.speaks_v2() else profiles.V16
    since = charger.connected_at
    sends: list[Send] = []
    refused_on, until = _refused_until.get(charger.pk, (None, now))
    if refused_on == since and until > now:
        return sends, False  # it refused its safe default or leases lately: asked again later
    phases = electrical.charger_phases(charger.pk)
    safe = held.get((charger.pk, profiles.PROFILE_ID_SAFE))
    fresh = safe is not None and since is not None and safe.updated_at >= since
    wanted = _send(charger, profiles.safe_default(version, safe_a, now=now), electrical, phases)
    if not fresh or _held_limit(safe) != _limit_of(wanted.profile):
        sends.append(wanted)
    lifted = held.get((charger.pk, profiles.PROFILE_ID_MAX_LEASE))
    waiting = held.get((charger.pk, profiles.PROFILE_ID_TX_DEFAULT_LEASE))
    holds = _lease_holds(lifted, since, now) and _lease_holds(waiting, since, now)
    renew_before = now + timedelta(seconds=lease_seconds() / 2)
    valid_to = now + timedelta(seconds=lease_seconds())
    lease_sends = [
        _send(charger, p, electrical, phases)
        for p in profiles.leases(version, capacity_a, now=now, valid_to=valid_to)
    ]
    due = (
        not holds
        or any(row.valid_to < renew_before for row in (lifted, waiting) if row and row.valid_to)
        or _held_limit(lifted) != _limit_of(lease_sends[-1].profile)
    )
    if due:
        sends += lease_sends
    return sends, holds


def _is_lift(send: Send) -> bool:
    return send.profile.profile_id == profiles.PROFILE_ID_MAX_LEASE


def _applied(
    row: ConnectorAllocation, session: ChargingSession, charger: Charger
) -> Decimal | None:
    """The limit the charger accepted for this session on this connection (None: none yet)."""
    if row.applied_at is None or row.applied_limit_a is None:
        return None
    if row.applied_at < session.received_start_at:
        return None  # accepted for an earlier session on this connector
    if charger.connected_at and row.applied_at < charger.connected_at:
        return None  # before it (re)connected: sent again with its safe default
    return row.applied_limit_a


def plan(property_id: int, now: datetime) -> Plan:
    """Return what to send to the property's chargers now (reads only)."""
    result = Plan()
    site = SiteBudget.objects.select_related("property").filter(property_id=property_id).first()
    if site is None:
        return result
    from . import services

    result.passes = site.passes
    in_force = services.budget_in_force(site, now)
    limit_a = in_force.limit_a
    chargers = list(Charger.objects.filter(property_id=property_id).order_by("station_id"))
    ids = [c.pk for c in chargers]
    circuits, circuit_of = _circuits(in_force.budget.circuits, chargers)
    # A charger that refuses limits may draw its maximum whenever it could (power.services
    # .reservations): the others' safe defaults are shares of what it leaves.
    reserved: dict[str, Decimal] = {}
    for demand in services.reservations(property_id, site, set()):
        reserved[demand.station_id] = reserved.get(demand.station_id, Decimal(0)) + demand.max_a
    shares = profiles.safe_shares(
        limit_a,
        [c.station_id for c in chargers],
        circuits=circuits,
        circuit_of=circuit_of,
        reserved=reserved,
    )
    capacities = _capacities(ids)
    held = _held(ids)
    electrical = Electrical.of(site, ids)
    ready: dict[int, bool] = {}
    for charger in chargers:
        if not _booted(charger, now):
            continue
        safe_a = min(shares[charger.station_id], capacities[charger.pk])
        sends, leases_ok = _charger_setup(
            charger,
            safe_a=safe_a,
            capacity_a=capacities[charger.pk],
            held=held,
            electrical=electrical,
            now=now,
        )
        result.setup += [s for s in sends if not _is_lift(s)]
        result.lift += [s for s in sends if _is_lift(s)]
        ready[charger.pk] = leases_ok
    _plan_sessions(result, property_id, {c.pk: c for c in chargers}, ready, electrical, now)
    if _refusal_not_counted(site):
        result.held_back += 1  # the increases were computed counting on the refuser's obedience
    return result


def _refusal_not_counted(site: SiteBudget) -> bool:
    """Whether a charger of the site refused a limit after the allocation in the rows was
    computed: that allocation gave the others a share of what the refuser may now draw, so no
    increase is sent before the recompute the refusal asked for (record()) has counted it."""
    refusals = Uncontrollable.objects.filter(charger__property_id=site.property_id)
    if site.computed_at is not None:
        refusals = refusals.filter(since__gte=site.computed_at)
    return refusals.exists()


def _phases_moved(charger: Charger, session: ChargingSession, electrical: Electrical) -> bool:
    """Whether the car of a charger limited in watts now draws on other phases than its held
    limit's numberPhases (a limit sent before its first readings counted the connector's)."""
    if charger_unit(charger) != profiles.WATTS:
        return False
    held = ChargingProfile.objects.filter(
        charger_id=charger.pk,
        profile_id=profiles.tx_profile_id(session.connector_id),
        status=ChargingProfile.Status.INSTALLED,
    ).first()
    limit = _held_limit(held)
    return limit is not None and limit[2] != session_phases(session, electrical)


def session_phases(session: ChargingSession, electrical: Electrical) -> int:
    """The phases the car draws on: as the charger reported them (2.0.1 numberOfPhasesUsed),
    else from its per-phase Current.Import readings (1.6), else its connector's."""
    from . import services

    wired = electrical.connector_phases_of(session.charger_id, session.connector_id)
    drawn = session.phases_used or services.phases_drawn(session.pk)
    return min(drawn, wired) if drawn else wired


def _plan_sessions(
    result: Plan,
    property_id: int,
    chargers: dict[int, Charger],
    ready: dict[int, bool],
    electrical: Electrical,
    now: datetime,
) -> None:
    gap = timedelta(seconds=_setting("POWER_PROFILE_MIN_INTERVAL_S", 3))
    retry = timedelta(seconds=_setting("POWER_REFUSED_RETRY_SECONDS", 300))
    rows = ConnectorAllocation.objects.filter(
        property_id=property_id, session__status=ChargingSession.Status.ACTIVE
    ).select_related("session")
    for row in rows:
        charger, session = chargers.get(row.charger_id), row.session
        if charger is None or session is None or row.charger_id not in ready:
            continue  # offline or not booted: its safe default holds
        applied = _applied(row, session, charger)
        # A refusal counts for the session it was made in; asked again after `retry`.
        this_session = bool(row.applied_at and row.applied_at >= session.received_start_at)
        refused_now = row.refused and this_session
        not_running = this_session and row.refused_reason.startswith(NOT_RUNNING)
        if (refused_now or not_running) and row.applied_at and now - row.applied_at < retry:
            continue
        # Before its first limit a session draws the lease's TxDefaultProfile: 0 A.
        in_force = (
            applied if applied is not None else (Decimal(0) if ready[row.charger_id] else None)
        )
        target = Decimal(str(profiles.amps(row.limit_a)))
        phases_moved = applied is not None and _phases_moved(charger, session, electrical)
        if in_force is not None and target == in_force and not refused_now and not phases_moved:
            if applied is None:
                result.settled.append((row.pk, session.received_start_at))
            continue
        # A watt limit for more phases than the car now draws on is more than its share on each.
        decrease = in_force is None or target < in_force or phases_moved
        if row.applied_at and now - row.applied_at < gap:
            if decrease:
                result.held_back += 1
                result.unsettled.add(row.charger_id)
            continue
        version = profiles.V201 if charger.speaks_v2() else profiles.V16
        transaction_id: int | str | None = (
            session.ocpp_transaction_id if version == profiles.V201 else session.transaction_id
        )
        if transaction_id in (None, ""):
            if decrease:
                result.unsettled.add(row.charger_id)
            continue
        assert transaction_id is not None
        send = _send(
            charger,
            profiles.session_limit(
                version,
                connector_id=row.connector_id,
                transaction_id=transaction_id,
                limit_a=target,
                start=now if quirks_state.quirks_of_row(charger).has(q.REJECTS_RELATIVE) else None,
            ),
            electrical,
            session_phases(session, electrical),
            allocation_id=row.pk,
            decrease=decrease,
        )
        (result.down if decrease else result.up).append(send)


# -- sending --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    send: Send
    accepted: bool
    reason: str = ""
    offline: bool = False
    answered: bool = False  # refused by an answer (a status or a CALLERROR), not by silence
    learnt_unit: str = ""  # the unit a retry in the other one settled (record() keeps it)
    # A refused session limit whose transaction the charger no longer runs: why ("" it runs it,
    # or it could not tell), and its GetTransactionStatus answer (2.0.1) for record() to act on.
    not_running: str = ""
    transaction_status: dict | None = None


def _refusal(command: Command) -> str:
    if command.status == Command.Status.ERROR:
        return f"CALLERROR: {command.error or 'no description'}"[:200]
    status = profiles.answer_status(command.response)
    return f"Answered {status or 'without a status'}"


async def _send_one(send: Send, timeout: float) -> Outcome:
    try:
        command = await commands.send_command(
            send.charger,
            send.profile.action,
            send.profile.payload,
            source="power",
            timeout=timeout,
            note=send.profile.meaning,
        )
    except commands.ChargerOffline:
        return Outcome(send, False, "offline", offline=True)
    except commands.CommandTimeout as exc:
        if exc.disconnected:  # gone before it could answer: not a refusal, set up on its return
            return Outcome(send, False, "offline", offline=True)
        if exc.not_sent:  # it still owed an earlier answer: it takes no limit now either
            return Outcome(send, False, exc.command.error[:200])
        return Outcome(send, False, f"No answer within {timeout:.0f} s")
    except commands.InvalidCommand as exc:
        logger.warning("Power profile for %s not sent: %s", send.charger.station_id, exc)
        return Outcome(send, False, "", offline=True)  # ours to fix; asked again next pass
    if command.status == Command.Status.ANSWERED and (
        profiles.answer_status(command.response) == "Accepted"
    ):
        return Outcome(send, True)
    outcome = Outcome(send, False, _refusal(command), answered=True)
    if send.allocation_id is not None and send.profile.purpose == profiles.TX_PROFILE:
        return await _transaction_over(outcome, timeout)
    return outcome


# The 1.6 statuses of a connector with no transaction on it (OCPP 1.6 §4.9).
NO_TRANSACTION_16 = ("Available", "Finishing")
# How a session limit's row says its charger runs no such transaction (_not_running); the limit
# is asked again after POWER_REFUSED_RETRY_SECONDS, as a refused one is.
NOT_RUNNING = "No transaction runs"


async def _transaction_over(outcome: Outcome, timeout: float) -> Outcome:
    """A charger rejects a TxProfile for a transaction it does not run, whatever it does with
    limits (1.6 §5.16.3, K01.FR.09): a session still open here after its charger ended it (a lost
    stop, a reboot, an event in flight) is not a refusal of limits. Ask before calling it one:
    2.0.1 by GetTransactionStatus (E14), 1.6 by the connector's status."""
    send = outcome.send
    if not send.charger.speaks_v2():
        if send.port_status in NO_TRANSACTION_16:
            reason = f"{NOT_RUNNING} on this port: the charger says {send.port_status}"
            return dataclasses.replace(outcome, not_running=reason)
        return outcome
    transaction_id = send.profile.payload["chargingProfile"].get("transactionId")
    try:
        command = await commands.send_command(
            send.charger,
            "GetTransactionStatus",
            {"transactionId": transaction_id},
            source="power",
            timeout=timeout,
        )
    except (commands.ChargerOffline, commands.CommandTimeout, commands.InvalidCommand):
        return outcome
    answer = command.response
    if command.status != Command.Status.ANSWERED or not isinstance(answer, dict):
        return outcome
    if answer.get("ongoingIndicator") is not False:  # running, or it cannot tell: refused
        return outcome
    reason = f"{NOT_RUNNING}: the charger says it ended" + (
        ", its events are still queued" if answer.get("messagesInQueue") else ""
    )
    return dataclasses.replace(outcome, not_running=reason, transaction_status=answer)


async def _send_in_unit(send: Send, learnt: str, timeout: float) -> tuple[Outcome, str]:
    """Send `send`; refused by an answer while the charger's unit is not settled, once more in
    the other unit. Return the outcome (of the profile it holds, if any) and the unit settled
    by the retry ("" none): the one accepted, or the first one if both were refused."""
    if learnt and send.alternate is not None:
        # Settled earlier in this pass: the unit it takes, and no retry.
        if learnt == send.alternate.unit:
            send = dataclasses.replace(send, profile=send.alternate)
        send = dataclasses.replace(send, alternate=None)
    outcome = await _send_one(send, timeout)
    if outcome.accepted or not outcome.answered or send.alternate is None or outcome.not_running:
        # Refused for a transaction it does not run: says nothing of the units it takes.
        return outcome, learnt
    retried = dataclasses.replace(send, profile=send.alternate, alternate=None)
    again = await _send_one(retried, timeout)
    if again.offline:
        return again, learnt
    unit = retried.profile.unit if again.accepted else send.profile.unit
    logger.info(
        "%s refused a power limit in %s; in %s it %s: remembered",
        send.charger.station_id,
        send.profile.unit,
        retried.profile.unit,
        "accepted" if again.accepted else "refused it too",
    )
    return dataclasses.replace(again if again.accepted else outcome, learnt_unit=unit), unit


async def _send_charger(sends: list[Send], timeout: float) -> list[Outcome]:
    outcomes = []
    learnt = sends[0].charger.rate_unit_learnt if sends else ""
    for send in sends:  # one CALL at a time per charger (OCPP-J §4.1.1)
        outcome, learnt = await _send_in_unit(send, learnt, timeout)
        send.charger.rate_unit_learnt = learnt  # the next groups of this pass (stored by record)
        outcomes.append(outcome)
        if outcome.offline:
            break
    return outcomes


async def _send_all(sends: Sequence[Send]) -> list[Outcome]:
    timeout = _setting("POWER_COMMAND_TIMEOUT", 10)
    by_charger: dict[int, list[Send]] = {}
    for send in sends:
        by_charger.setdefault(send.charger.pk, []).append(send)
    results = await asyncio.gather(*(_send_charger(s, timeout) for s in by_charger.values()))
    return [outcome for outcomes in results for outcome in outcomes]


def send_all(sends: Sequence[Send]) -> list[Outcome]:
    """Send the profiles, chargers in parallel; return each one's outcome."""
    if not sends:
        return []
    _port_statuses(sends)
    # From a request or a beat task (backoffice.beat._submit) this runs on the server's loop,
    # where the charger connections are; from a Celery worker, on a loop of its own.
    return async_to_sync(_send_all)(sends)


def _port_statuses(sends: Sequence[Send]) -> None:
    """Note on each 1.6 session limit its connector's status now (_transaction_over reads it)."""
    ports = {
        (send.charger.pk, send.profile.connector_id): send
        for send in sends
        if send.allocation_id is not None and not send.charger.speaks_v2()
    }
    if not ports:
        return
    rows = Connector.objects.filter(charger_id__in={charger for charger, _ in ports}).values_list(
        "charger_id", "connector_id", "status"
    )
    for charger_id, connector_id, status in rows:
        if (send := ports.get((charger_id, connector_id))) is not None:
            send.port_status = status


# -- what the answers change ----------------------------------------------------------------------


def _watt_only_met(outcome: Outcome, now: datetime) -> None:
    """A charger found to take only watts (amperes refused, the same limit in W accepted) that no
    quirk profile says so of: recorded on it for support (docs/quirks.md)."""
    charger = outcome.send.charger
    if outcome.learnt_unit != profiles.WATTS:
        return
    found: list[tuple[str, str]] = []
    q.met(
        found,
        quirks_state.quirks_of_row(charger),
        q.WATT_ONLY,
        f"a limit in A refused, the same in W accepted ({outcome.send.profile.purpose})",
    )
    if found:
        quirks_state.observed(
            charger_id=charger.pk,
            found=found,
            example=quirks_state.example_frame(
                "SetChargingProfile", "", outcome.send.profile.payload
            ),
            at=now,
        )


def record(outcomes: Sequence[Outcome], now: datetime) -> bool:
    """Keep what the chargers accepted or refused; raise or clear alerts. Return whether the
    allocation must be computed again (a connector refused, or accepts again)."""
    again = False
    for outcome in outcomes:
        if outcome.learnt_unit:
            rate_unit_learnt(charger_id=outcome.send.charger.pk, unit=outcome.learnt_unit)
            outcome.send.charger.rate_unit_learnt = outcome.learnt_unit  # this pass's next sends
            _watt_only_met(outcome, now)
        if outcome.offline:
            continue
        send = outcome.send
        connector_id = send.profile.connector_id
        if send.allocation_id is not None:
            row = (
                ConnectorAllocation.objects.filter(pk=send.allocation_id)
                .select_related("session")
                .first()
            )
            if row is None:
                continue
            was_refused = row.refused
            if not outcome.accepted and outcome.not_running:
                again = _not_running(outcome, row, now) or again
                continue
            if not outcome.accepted and _before_ev_needs(send, row):
                # K15.FR.17: an ISO 15118 charger rejects a TxProfile until the car told its
                # needs. Not a refusal of limits: sent again (the waiting default holds meanwhile).
                ConnectorAllocation.objects.filter(pk=row.pk).update(
                    applied_at=now,
                    refused_reason="Waiting for the car's charging needs (ISO 15118)",
                )
                continue
            again = (
                _uncontrollable(
                    send, connector_id, accepted=outcome.accepted, reason=outcome.reason, now=now
                )
                or again
            )
            if outcome.accepted:
                ConnectorAllocation.objects.filter(pk=row.pk).update(
                    applied_limit_a=Decimal(str(send.profile.limit_a)),
                    applied_at=now,
                    refused=False,
                    refused_reason="",
                )
            else:
                ConnectorAllocation.objects.filter(pk=row.pk).update(
                    applied_at=now, refused=True, refused_reason=outcome.reason[:200]
                )
            again = again or was_refused != (not outcome.accepted)
        else:
            again = (
                _uncontrollable(send, 0, accepted=outcome.accepted, reason=outcome.reason, now=now)
                or again
            )
        if send.allocation_id is None and not outcome.accepted:
            retry = _setting("POWER_REFUSED_RETRY_SECONDS", 300)
            _refused_until[send.charger.pk] = (
                send.charger.connected_at,
                now + timedelta(seconds=retry),
            )
        if outcome.accepted:
            problem_resolved(
                kind=REFUSED, charger_id=send.charger.pk, connector_id=connector_id, now=now
            )
        else:
            logger.warning(
                "%s refused its power limit (%s): %s",
                send.charger.station_id,
                send.profile.purpose,
                outcome.reason,
            )
            problem_report(
                kind=REFUSED,
                charger_id=send.charger.pk,
                connector_id=connector_id,
                details=f"{send.profile.purpose} {send.profile.shown}: {outcome.reason}",
                now=now,
            )
    return again


def _not_running(outcome: Outcome, row: ConnectorAllocation, now: datetime) -> bool:
    """A session limit refused because the charger runs no such transaction: no refusal of
    limits (no alert, the connector stays controllable). A 2.0.1 session the charger says is over
    is closed as the stale check would close it (chargers.devices.stale); a 1.6 one is left to
    the 1.6 sweep, which waits for its StopTransaction a while. Return whether the allocation
    changes (a session closed frees its share)."""
    closed = False
    if outcome.transaction_status is not None and row.session_id is not None:
        verdict = stale.transaction_status_apply(
            session_id=row.session_id, response=outcome.transaction_status
        )
        closed = verdict.closed
    ConnectorAllocation.objects.filter(pk=row.pk).update(
        applied_at=now, refused_reason=outcome.not_running[:200]
    )
    logger.info(
        "%s refused a session limit on %s: %s",
        outcome.send.charger.station_id,
        outcome.send.profile.connector_id,
        outcome.not_running,
    )
    return closed


def _uncontrollable(
    send: Send, connector_id: int, *, accepted: bool, reason: str, now: datetime
) -> bool:
    """Remember per connector (0: the charger's own profiles) that it refuses limits, across
    sessions and connections, until it accepts one again (power.services.reservations). Return
    whether that changed (the allocation is computed again)."""
    rows = Uncontrollable.objects.filter(charger_id=send.charger.pk, connector_id=connector_id)
    if accepted:
        return rows.delete()[0] > 0
    _, created = Uncontrollable.objects.get_or_create(
        charger_id=send.charger.pk,
        connector_id=connector_id,
        defaults={"since": now, "reason": reason[:200]},
    )
    return created


def _before_ev_needs(send: Send, row: ConnectorAllocation) -> bool:
    """A 2.0.1 session limit answered Rejected on an ISO 15118 session (the charger has told
    its cars' needs before) before the car's NotifyEVChargingNeeds of this session."""
    session = row.session
    if not send.charger.speaks_v2() or session is None:
        return False
    notices = ChargerNotice.objects.filter(
        charger_id=send.charger.pk, action="NotifyEVChargingNeeds"
    )
    iso15118 = notices.exists()
    told = notices.filter(
        evse_id=row.connector_id, received_at__gte=session.received_start_at
    ).exists()
    return iso15118 and not told


# A pass's turn, before each group of sends is extended to what that group may take: every CALL
# of its busiest charger unanswered (each may be asked again in the other unit, and a session
# limit's refusal followed by a GetTransactionStatus), plus this for the database work.
PASS_TURN = timedelta(seconds=30)


def _turn_take(
    property_id: int, owner: str, length: timedelta, *, passes: int | None = None
) -> bool:
    """Take the site's turn for `owner` (or extend it) for `length`: whether it has it. The
    turn is a row of the database, so passes of every process and thread take turns, and one
    whose process died holds the site no longer than its turn. `passes`: only if no other pass
    took a turn since the site's count was read (its plan is still what the last pass left)."""
    now = timezone.now()
    free = Q(pass_owner=owner) | Q(pass_until=None) | Q(pass_until__lt=now)
    rows = SiteBudget.objects.filter(free, property_id=property_id)
    if passes is not None:
        rows = rows.filter(passes=passes)
    return bool(rows.update(pass_owner=owner, pass_until=now + length, passes=F("passes") + 1))


def _turn_keep(property_id: int, owner: str, *groups: Sequence[Send]) -> bool:
    """Extend the turn over the groups of sends coming (sent one group after the other): False
    when another pass has taken it (ours ran out), and this one must send nothing more."""
    if not any(groups):
        return True  # nothing to send: nothing to guard
    calls = 0
    for sends in groups:
        per_charger: dict[int, int] = {}
        for send in sends:
            per_charger[send.charger.pk] = per_charger.get(send.charger.pk, 0) + 1
        calls += 3 * max(per_charger.values(), default=0)
    timeout = timedelta(seconds=_setting("POWER_COMMAND_TIMEOUT", 10))
    if SiteBudget.objects.filter(property_id=property_id, pass_owner=owner).update(
        pass_until=timezone.now() + PASS_TURN + calls * timeout
    ):
        return True
    logger.warning("The power pass of property %s lost its turn: stopped", property_id)
    return False


def _turn_end(property_id: int, owner: str) -> None:
    SiteBudget.objects.filter(property_id=property_id, pass_owner=owner).update(
        pass_owner="", pass_until=None
    )


def site_pass(property_id: int, now: datetime | None = None) -> int:
    """Bring the property's chargers to the allocation in force (see the module's docstring);
    return how many profiles were sent. One pass per site at a time, in any process (a sweep
    on one node, a recompute's pass on another): a pass that finds the site's turn taken does
    nothing (the `power.enforce` sweep catches up), so a pass that read an older allocation
    never sends it after a newer one, nor records it as what the charger holds."""
    now = now or timezone.now()
    work = plan(property_id, now)
    if _idle(work):
        return 0  # nothing to send: no turn taken (most sites, most sweeps)
    owner = uuid.uuid4().hex
    if not _turn_take(property_id, owner, PASS_TURN, passes=work.passes):
        # Another pass took a turn since the plan was read (or holds it): read it again in
        # ours, so what that pass left is known.
        if not _turn_take(property_id, owner, PASS_TURN):
            return 0
        work = plan(property_id, now)
    try:
        return _site_pass(property_id, work, owner)
    finally:
        _turn_end(property_id, owner)


def _idle(work: Plan) -> bool:
    return not (work.setup or work.down or work.lift or work.up or work.settled)


def _site_pass(property_id: int, work: Plan, owner: str) -> int:
    for row_id, since in work.settled:
        # A waiting session under a valid lease: the lease's 0 A has been its limit since it began.
        ConnectorAllocation.objects.filter(pk=row_id).update(
            applied_limit_a=Decimal(0), applied_at=since, refused=False, refused_reason=""
        )
    if not _turn_keep(property_id, owner, work.setup, work.down):
        return 0
    setup = send_all(work.setup)
    down = send_all(work.down)
    again = record(setup + down, timezone.now())
    sent = len(setup) + len(down)
    # Lifted only where what the charger holds now is the allocation (or below it); its safe
    # default is below the lift either way, so a refused one holds nothing back.
    failed = work.unsettled | {
        o.send.charger.pk
        for o in setup + down
        if not o.accepted and o.send.profile.profile_id != profiles.PROFILE_ID_SAFE
    }
    lifts = [s for s in work.lift if s.charger.pk not in failed]
    if _turn_keep(property_id, owner, lifts):
        lift = send_all(lifts)
        again = record(lift, timezone.now()) or again
        sent += len(lift)
        # A refusal in this pass (again) changes the allocation the increases were computed from.
        if (
            work.up
            and not work.held_back
            and not again
            and all(o.accepted for o in down)
            and _turn_keep(property_id, owner, work.up)
        ):
            up = send_all(work.up)
            again = record(up, timezone.now()) or again
            sent += len(up)
    if again:
        from .services import mark_dirty

        mark_dirty(property_ids=[property_id])
    return sent


def enforce(property_id: int, limits: Sequence[Limit]) -> None:
    """Send the property's new allocation to its chargers (called once the allocation is
    committed; the rows, not `limits`, are read, so the newest allocation always wins)."""
    site_pass(property_id)


def enforce_all(now: datetime | None = None) -> int:
    """One pass over every site with a budget (the `power.enforce` sweep): leases renewed,
    reconnected chargers set up, limits held back by the rate limit sent. One site's failure
    is logged and never stops the others."""
    sent = 0
    for property_id in SiteBudget.objects.values_list("property_id", flat=True):
        try:
            sent += site_pass(property_id, now)
        except Exception:
            logger.exception("Enforcing the power allocation of property %s failed", property_id)
    return sent
