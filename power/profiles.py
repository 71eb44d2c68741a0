"""The OCPP charging profiles that enforce a site's power budget (docs/power.md). Pure: no Django.

Three kinds of profile per charger, built in amperes per phase (chargingRateUnit A, one period)
and sent in the unit the charger takes (`expressed`: W = A x voltage x numberPhases for a
watt-only charger; numberPhases always set):

- the **safe default**: ChargePointMaxProfile (1.6, connectorId 0) or ChargingStationMaxProfile
  (2.0.1, evseId 0) at stackLevel 0 with no end: the charger's share of the site's limit, what it
  falls back to when nothing else is valid (`safe_shares`);
- two **leases** at stackLevel 1, valid until `valid_to` and renewed while the charger is
  connected: a TxDefaultProfile at 0 A on connector / EVSE 0 (a new session draws nothing until
  its own limit arrives, so a start never pushes the site over its budget) and a station maximum
  at the charger's full capacity (it lifts the safe default; sent last, see power.enforcement). A charger that loses its
  connection stops getting renewals: once the leases end, the safe default caps it again (OCPP
  1.6 §3.13.2, 2.0.1 K01: the valid profile with the highest stackLevel prevails);
- the **session limit**: a TxProfile for the running transaction (Relative, stackLevel 1), the
  allocation itself. It ends with its transaction.

Profile ids are fixed per purpose (`PROFILE_ID_*`), so a new limit replaces the old one (1.6
§5.16.2, 2.0.1 K01.FR.05) instead of piling up. Stack levels 0 and 1 are the power budget's;
an operator's own profiles (the charger's page) should use 2 or more and then win.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from chargers.ocpp.protocol import format_datetime

V16 = "1.6"
V201 = "2.0.1"

SAFE_STACK_LEVEL = 0
LEASE_STACK_LEVEL = 1
TX_STACK_LEVEL = 1

# Fixed ids (1.6 chargingProfileId / 2.0.1 id): a resend replaces its predecessor.
PROFILE_ID_SAFE = 3800
PROFILE_ID_MAX_LEASE = 3801
PROFILE_ID_TX_DEFAULT_LEASE = 3802
PROFILE_ID_TX_BASE = 3810  # + connector / EVSE id

TX_PROFILE = "TxProfile"
TX_DEFAULT = "TxDefaultProfile"
MAX_16 = "ChargePointMaxProfile"
MAX_201 = "ChargingStationMaxProfile"

STEP = Decimal("0.1")


def amps(value: Decimal | float | int) -> float:
    """Return `value` rounded down to 0.1 A (the 1.6 schema's multipleOf), never negative."""
    return float(max(Decimal(str(value)).quantize(STEP, rounding=ROUND_DOWN), Decimal(0)))


def max_purpose(version: str) -> str:
    return MAX_201 if version == V201 else MAX_16


def tx_profile_id(connector_id: int) -> int:
    return PROFILE_ID_TX_BASE + connector_id


AMPS = "A"
WATTS = "W"


@dataclass(frozen=True)
class Profile:
    """One profile to set: where, what, and the SetChargingProfile payload for the version."""

    connector_id: int  # 0: the charger as a whole
    purpose: str  # "TxProfile", "TxDefaultProfile" or "max" (the station maximum)
    limit_a: float
    payload: dict[str, Any]
    action: str = "SetChargingProfile"
    unit: str = AMPS  # the payload's chargingRateUnit
    limit_w: float | None = None  # the payload's limit when in W
    number_phases: int | None = None

    @property
    def profile_id(self) -> int:
        body = self.payload.get("csChargingProfiles") or self.payload["chargingProfile"]
        return int(body["chargingProfileId"] if "chargingProfileId" in body else body["id"])

    @property
    def shown(self) -> str:
        """The limit as sent: "10.6 A", or "10.6 A (7314 W over 3 phases)" in watts."""
        if self.limit_w is None:
            return f"{self.limit_a} A"
        phases = self.number_phases or 3
        return f"{self.limit_a} A ({self.limit_w:.0f} W over {phases} phase{'s' if phases > 1 else ''})"

    @property
    def meaning(self) -> str:
        """What the profile means to a host, in words (the charger's Recent commands)."""
        if self.profile_id == PROFILE_ID_SAFE:
            return f"Safe default: the charger at most {self.shown} (its share of the site budget)"
        if self.profile_id == PROFILE_ID_MAX_LEASE:
            return f"Lease: the charger lifted to its capacity, {self.shown}, while connected"
        if self.profile_id == PROFILE_ID_TX_DEFAULT_LEASE:
            return "Lease: a new session waits at 0 A until its own limit arrives"
        return f"Connector {self.connector_id} limited to {self.shown} by the site budget"


# -- units (docs/power.md, "Units") -------------------------------------------------------------


def unit_for(rate_units: str, learnt: str = "", *, watt_only: bool = False) -> str:
    """The unit to send a charger its limits in: the one it was found to take (`learnt`), else
    watts where its quirk profile says it takes only watts (`watt_only`, docs/quirks.md), else
    amperes unless all it declares it takes (`rate_units`, "A", "W" or "A,W") is watts. A charger
    that takes both, or says nothing, gets amperes: no conversion to get wrong."""
    if learnt in (AMPS, WATTS):
        return learnt
    if watt_only:
        return WATTS
    units = {u.strip() for u in rate_units.split(",") if u.strip()}
    return WATTS if units == {WATTS} else AMPS


def other_unit(unit: str) -> str:
    return AMPS if unit == WATTS else WATTS


def watts(limit_a: Decimal | float, *, voltage: int, phases: int | None) -> float:
    """`limit_a` per phase as watts over `phases` (absent: 3, OCPP 1.6 §7.12, 2.0.1
    K01.FR.49-50) at the nominal `voltage`, rounded down to the watt: the charger converts them
    back per phase as W / (voltage x numberPhases), never above `limit_a`."""
    total = Decimal(str(limit_a)) * Decimal(voltage) * Decimal(phases or 3)
    return float(max(total.to_integral_value(rounding=ROUND_DOWN), Decimal(0)))


def _schedules(payload: dict[str, Any]) -> list[dict[str, Any]]:
    if "csChargingProfiles" in payload:
        return [payload["csChargingProfiles"]["chargingSchedule"]]
    return list(payload["chargingProfile"]["chargingSchedule"])


def expressed(profile: Profile, *, unit: str, voltage: int, phases: int | None) -> Profile:
    """`profile` (built in amperes) in `unit`, with numberPhases set to `phases` (the phases the
    car draws on; for a charger-wide profile, the charger's): a single-phase car under a limit
    without numberPhases is allowed three times its share on one phase."""
    payload = copy.deepcopy(profile.payload)
    limit_w = watts(profile.limit_a, voltage=voltage, phases=phases) if unit == WATTS else None
    for schedule in _schedules(payload):
        schedule["chargingRateUnit"] = unit
        for period in schedule["chargingSchedulePeriod"]:
            period["limit"] = limit_w if limit_w is not None else profile.limit_a
            if phases:
                period["numberPhases"] = phases
    return dataclasses.replace(
        profile, payload=payload, unit=unit, limit_w=limit_w, number_phases=phases
    )


def phases_drawn(currents: Mapping[str, Decimal], *, floor_a: Decimal = Decimal(1)) -> int | None:
    """The phases a car draws on from one moment's per-phase Current.Import readings (phase:
    amperes, "L1", "L2-N", ...): those above `floor_a`. None: no per-phase reading, or none above."""
    drawn = {
        phase[:2]
        for phase, amps in currents.items()
        if phase[:2] in ("L1", "L2", "L3") and amps > floor_a
    }
    return len(drawn) or None


def _schedule(
    version: str,
    profile_id: int,
    limit_a: float,
    start: datetime | None,
    number_phases: int | None,
) -> dict[str, Any]:
    period: dict[str, Any] = {"startPeriod": 0, "limit": limit_a}
    if number_phases:
        period["numberPhases"] = number_phases
    schedule: dict[str, Any] = {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
    if start is not None:
        schedule["startSchedule"] = format_datetime(start)
    if version == V201:
        schedule["id"] = profile_id
    return schedule


def _payload(
    version: str,
    *,
    connector_id: int,
    profile_id: int,
    purpose: str,
    stack_level: int,
    limit_a: float,
    start: datetime | None,
    valid_to: datetime | None = None,
    transaction_id: int | str | None = None,
    number_phases: int | None = None,
) -> dict[str, Any]:
    kind = "Absolute" if start is not None else "Relative"
    schedule = _schedule(version, profile_id, limit_a, start, number_phases)
    if version == V201:
        profile: dict[str, Any] = {
            "id": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind,
            "chargingSchedule": [schedule],
        }
        if transaction_id is not None:
            profile["transactionId"] = str(transaction_id)
        if valid_to is not None:
            profile["validTo"] = format_datetime(valid_to)
        return {"evseId": connector_id, "chargingProfile": profile}
    profile = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if transaction_id is not None:
        profile["transactionId"] = int(transaction_id)
    if valid_to is not None:
        profile["validTo"] = format_datetime(valid_to)
    return {"connectorId": connector_id, "csChargingProfiles": profile}


def safe_default(version: str, limit_a: Decimal | float, *, now: datetime) -> Profile:
    """Return the charger's safe default: its station maximum at stackLevel 0, with no end."""
    limit = amps(limit_a)
    payload = _payload(
        version,
        connector_id=0,
        profile_id=PROFILE_ID_SAFE,
        purpose=max_purpose(version),
        stack_level=SAFE_STACK_LEVEL,
        limit_a=limit,
        start=now,
    )
    return Profile(0, "max", limit, payload)


def leases(
    version: str, capacity_a: Decimal | float, *, now: datetime, valid_to: datetime
) -> list[Profile]:
    """Return the two profiles that hold while the charger is connected (until `valid_to`): the
    station maximum at its full `capacity_a` and a TxDefaultProfile at 0 A (stackLevel 1)."""
    capacity = amps(capacity_a)
    lifted = _payload(
        version,
        connector_id=0,
        profile_id=PROFILE_ID_MAX_LEASE,
        purpose=max_purpose(version),
        stack_level=LEASE_STACK_LEVEL,
        limit_a=capacity,
        start=now,
        valid_to=valid_to,
    )
    waiting = _payload(
        version,
        connector_id=0,
        profile_id=PROFILE_ID_TX_DEFAULT_LEASE,
        purpose=TX_DEFAULT,
        stack_level=LEASE_STACK_LEVEL,
        limit_a=0.0,
        start=now,
        valid_to=valid_to,
    )
    # The 0 A TxDefaultProfile first: the station maximum lifts the safe default, and a waiting
    # session must already be held at 0 A when it does (power.enforcement sends them so).
    return [Profile(0, TX_DEFAULT, 0.0, waiting), Profile(0, "max", capacity, lifted)]


def session_limit(
    version: str,
    *,
    connector_id: int,
    transaction_id: int | str,
    limit_a: Decimal | float,
    number_phases: int | None = None,
    start: datetime | None = None,
) -> Profile:
    """Return the TxProfile that limits the running transaction on `connector_id` (Relative: from
    the transaction's start, for as long as it runs; Absolute from `start` for a charger that
    refuses Relative profiles, docs/quirks.md: one period, so the same limit from now on)."""
    limit = amps(limit_a)
    payload = _payload(
        version,
        connector_id=connector_id,
        profile_id=tx_profile_id(connector_id),
        purpose=TX_PROFILE,
        stack_level=TX_STACK_LEVEL,
        limit_a=limit,
        start=start,
        transaction_id=transaction_id,
        number_phases=number_phases,
    )
    return Profile(connector_id, TX_PROFILE, limit, payload)


def safe_shares(
    limit_a: Decimal,
    chargers: Sequence[str],
    min_a: Decimal = Decimal(6),
    *,
    circuits: Mapping[str, tuple[Decimal, str]] | None = None,
    circuit_of: Mapping[str, Sequence[str]] | None = None,
    reserved: Mapping[str, Decimal] | None = None,
) -> dict[str, Decimal]:
    """Return each charger's safe default so that all of them together, every one drawing its
    safe default with nobody to tell them otherwise, stay within `limit_a` (per phase) at the
    main connection and within every circuit's limit below it.

    `circuits` maps a circuit id to (its limit per phase, its parent: "" = the main connection);
    `circuit_of` maps a charger to the circuits its connectors hang on (none or unknown: the main
    connection). A charger counts in full at every circuit on the way from each of its circuits
    to the main connection (its safe default caps the whole charger).

    Each charger gets the smallest equal share of the nodes it crosses (a node's limit divided by
    the chargers under it), rounded down to 0.1 A. A charger whose share is below `min_a` (it
    cannot charge below its minimum) gets `min_a` if every node it crosses still has room for
    it, in the order given (put the busiest first), and 0 A otherwise: it pauses while the site
    is unreachable.

    `reserved` maps a charger that refuses limits to what it may draw whatever it is told (its
    connectors' maximum): it is taken first at every node it crosses and the others share the
    rest; its own "share" is that reservation.
    """
    if not chargers:
        return {}
    reserved = reserved or {}
    nodes: dict[str, Decimal] = {"": max(Decimal(limit_a), Decimal(0))}
    parents: dict[str, str] = {}
    for cid, (climit, parent) in (circuits or {}).items():
        if cid:
            nodes[cid] = max(Decimal(climit), Decimal(0))
            parents[cid] = parent or ""
    crossed = {
        station: _crossed((circuit_of or {}).get(station, ()), parents) for station in chargers
    }
    for station, amps in reserved.items():
        for node in crossed.get(station, ()):
            nodes[node] = max(nodes[node] - amps, Decimal(0))
    under: dict[str, int] = dict.fromkeys(nodes, 0)
    for station, path in crossed.items():
        for node in path if station not in reserved else ():
            under[node] += 1
    shares: dict[str, Decimal] = {s: Decimal(reserved[s]) for s in chargers if s in reserved}
    for station in chargers:
        if station in reserved:
            continue
        share = min(
            (nodes[n] / under[n]).quantize(STEP, rounding=ROUND_DOWN) for n in crossed[station]
        )
        shares[station] = share if (share >= min_a or min_a <= 0) else Decimal(-1)
    room = dict(nodes)
    for station, share in shares.items():
        for node in crossed[station] if share >= 0 and station not in reserved else ():
            room[node] -= share
    for station in chargers:
        if shares[station] >= 0 or station in reserved:
            continue
        fits = all(room[n] >= min_a for n in crossed[station])
        shares[station] = Decimal(min_a) if fits else Decimal(0)
        for node in crossed[station] if fits else ():
            room[node] -= Decimal(min_a)
    return shares


def _crossed(circuits: Sequence[str], parents: Mapping[str, str]) -> frozenset[str]:
    """The nodes ("" = the main connection) on the way from `circuits` to the main connection.
    An unknown circuit or a loop ends the way at the main connection."""
    seen: set[str] = {""}
    for start in circuits:
        node = start
        while node and node in parents and node not in seen:
            seen.add(node)
            node = parents[node]
    return frozenset(seen)


def clear_session(version: str, connector_id: int) -> tuple[str, dict[str, Any]]:
    """Return the ClearChargingProfile of the session limit on `connector_id`."""
    profile_id = tx_profile_id(connector_id)
    if version == V201:
        return "ClearChargingProfile", {"chargingProfileId": profile_id}
    return "ClearChargingProfile", {"id": profile_id}


def answer_status(response: Any) -> str:
    """The status of a SetChargingProfile answer ("" if there is none)."""
    return str(response.get("status", "")) if isinstance(response, dict) else ""
