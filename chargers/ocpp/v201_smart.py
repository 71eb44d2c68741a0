"""OCPP 2.0.1 smart charging rules the CSMS must keep (part 2 K01, K05, K10). Pure: no Django.

The schema check (protocol201.check_outgoing) sees only shapes; these are the rules between
fields and against what the charger already has installed, checked before a SetChargingProfile
(or a RequestStartTransaction with a profile) is sent, so a profile the charger must reject, or
one the CSMS may not send, is refused with a clear reason instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chargers.ocpp.protocol import OcppError, parse_datetime
from chargers.ocpp.protocol201 import OCCURRENCE_CONSTRAINT_VIOLATION, PROPERTY_CONSTRAINT_VIOLATION

TX_PROFILE = "TxProfile"
TX_DEFAULT = "TxDefaultProfile"
STATION_MAX = "ChargingStationMaxProfile"
EXTERNAL = "ChargingStationExternalConstraints"


@dataclass(frozen=True)
class Installed:
    """A profile the charger holds (as we know it): what K01.FR.06/.39/.52/.53 compare with."""

    profile_id: int
    evse_id: int
    stack_level: int
    purpose: str
    transaction_id: str = ""
    valid_from: datetime | None = None
    valid_to: datetime | None = None


def _refuse(description: str, code: str = PROPERTY_CONSTRAINT_VIOLATION) -> OcppError:
    return OcppError(code, description)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        raise _refuse(f"{value!r} is not a date-time") from None


def _overlap(
    a_from: datetime | None, a_to: datetime | None, b_from: datetime | None, b_to: datetime | None
) -> bool:
    # K01.FR.10/.36/.37: valid from validFrom (inclusive) until validTo (exclusive); unset: unbounded.
    return (a_to is None or b_from is None or b_from < a_to) and (
        b_to is None or a_from is None or a_from < b_to
    )


def check_schedule(schedule: dict[str, Any], kind: str, purpose: str) -> None:
    """Raise OcppError if a chargingSchedule breaks K01.FR.31/.35/.40/.41/.19."""
    periods = schedule.get("chargingSchedulePeriod") or []
    if periods and periods[0].get("startPeriod") != 0:
        raise _refuse("The first chargingSchedulePeriod must start at 0 (K01.FR.31)")
    starts = [p.get("startPeriod", 0) for p in periods]
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        raise _refuse("chargingSchedulePeriod must be in increasing startPeriod order (K01.FR.35)")
    for period in periods:
        if "phaseToUse" in period and period.get("numberPhases") != 1:
            raise _refuse("phaseToUse needs numberPhases 1 (K01.FR.19)")
        if period.get("limit", 0) < 0:
            raise _refuse("A limit cannot be negative")
    has_start = "startSchedule" in schedule
    if kind in ("Absolute", "Recurring") and not has_start:
        raise _refuse(f"A {kind} profile needs startSchedule (K01.FR.40)")
    if kind == "Relative" and has_start:
        raise _refuse("A Relative profile has no startSchedule (K01.FR.41)")
    _time(schedule.get("startSchedule"))


def check_profile(
    evse_id: int,
    profile: dict[str, Any],
    *,
    evse_ids: Iterable[int],
    active_transactions: dict[str, int],
    installed: Iterable[Installed],
    ev_charging_needs: bool = False,
) -> None:
    """Raise OcppError unless the CSMS may send SetChargingProfile(evse_id, profile).

    `evse_ids`: the EVSEs the charger has (0 is the station); `active_transactions`: the charger's
    transactionId -> EVSE of its running transactions; `installed`: the profiles it holds;
    `ev_charging_needs`: the EV sent NotifyEVChargingNeeds (ISO 15118: up to 3 schedules, K01.FR.34).
    """
    purpose, kind = profile.get("chargingProfilePurpose"), profile.get("chargingProfileKind")
    _check_place(evse_id, purpose, kind, evse_ids)
    transaction_id = profile.get("transactionId")
    _check_transaction(evse_id, purpose, transaction_id, active_transactions)
    schedules = profile.get("chargingSchedule") or []
    if len(schedules) > (3 if ev_charging_needs else 1):
        raise _refuse(
            "One chargingSchedule per profile unless the EV negotiates over ISO 15118 (K01.FR.34)"
        )
    for schedule in schedules:
        check_schedule(schedule, str(kind), str(purpose))
    valid_from, valid_to = _time(profile.get("validFrom")), _time(profile.get("validTo"))
    if valid_from and valid_to and valid_to <= valid_from:
        raise _refuse("validTo must be after validFrom")
    for other in installed:
        _check_against(evse_id, profile, other, valid_from, valid_to)


def _check_place(evse_id: int, purpose: Any, kind: Any, evse_ids: Iterable[int]) -> None:
    if purpose == EXTERNAL:
        raise _refuse(
            "The CSMS may not set a ChargingStationExternalConstraints profile (K01.FR.22)"
        )
    if evse_id != 0 and evse_id not in set(evse_ids):
        raise _refuse(f"The charger has no EVSE {evse_id} (K01.FR.28)")
    if purpose == STATION_MAX and evse_id != 0:
        raise _refuse("A ChargingStationMaxProfile is set on evseId 0, the station (K01)")
    if purpose == STATION_MAX and kind == "Relative":
        raise _refuse("A ChargingStationMaxProfile cannot be Relative (K01.FR.38)")


def _check_transaction(
    evse_id: int, purpose: Any, transaction_id: Any, active_transactions: dict[str, int]
) -> None:
    if purpose != TX_PROFILE:
        if transaction_id:
            raise _refuse("Only a TxProfile names a transaction")
        return
    if evse_id <= 0:
        raise _refuse("A TxProfile is set on an EVSE (evseId > 0, K01.FR.16)")
    if not transaction_id:
        raise _refuse(
            "A TxProfile names its transaction (transactionId, K01.FR.03)",
            OCCURRENCE_CONSTRAINT_VIOLATION,
        )
    if active_transactions.get(transaction_id) != evse_id:
        raise _refuse(
            f"No running transaction {transaction_id!r} on EVSE {evse_id} (K01.FR.09/.33)"
        )


def _check_against(
    evse_id: int,
    profile: dict[str, Any],
    other: Installed,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> None:
    """Raise OcppError if `profile` collides with the installed `other` (K01.FR.06/.39/.52/.53)."""
    purpose, stack_level = profile.get("chargingProfilePurpose"), profile.get("stackLevel")
    if other.profile_id == profile.get("id"):
        return  # K01.FR.05: the same id replaces it
    if purpose == TX_PROFILE:
        if (
            other.purpose == TX_PROFILE
            and other.transaction_id == profile.get("transactionId")
            and other.stack_level == stack_level
        ):
            raise _refuse(
                f"Profile {other.profile_id} already has stackLevel {stack_level} for this transaction (K01.FR.39)"
            )
        return
    if other.purpose != purpose or other.stack_level != stack_level:
        return
    same_place = other.evse_id == evse_id or (
        purpose == TX_DEFAULT and 0 in (other.evse_id, evse_id)
    )
    if same_place and _overlap(valid_from, valid_to, other.valid_from, other.valid_to):
        raise _refuse(
            f"Profile {other.profile_id} already has {purpose} stackLevel {stack_level} on EVSE {other.evse_id} "
            "for an overlapping period (K01.FR.06/.52/.53)"
        )


def clear_matches(criteria: dict[str, Any], profile_id: int | None, installed: Installed) -> bool:
    """Whether a ClearChargingProfile (by `profile_id`, or by criteria) clears `installed` (K10)."""
    if profile_id is not None:
        return installed.profile_id == profile_id
    if installed.purpose == EXTERNAL:
        return False  # set by an external system; the CSMS cannot clear it
    return all(
        (
            criteria.get("evseId") in (None, installed.evse_id),
            criteria.get("chargingProfilePurpose") in (None, installed.purpose),
            criteria.get("stackLevel") in (None, installed.stack_level),
        )
    )


def simple_limit_profile(
    *,
    profile_id: int,
    purpose: str,
    stack_level: int,
    unit: str,
    limit: float,
    start: datetime,
    transaction_id: str = "",
    duration_s: int | None = None,
) -> dict[str, Any]:
    """Return an Absolute profile with one period: `limit` (A or W) from `start` (the portal's form)."""
    from chargers.ocpp.protocol import format_datetime

    schedule: dict[str, Any] = {
        "id": profile_id,
        "chargingRateUnit": unit,
        "startSchedule": format_datetime(start),
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    profile: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "validFrom": format_datetime(start),
        "chargingSchedule": [schedule],
    }
    if duration_s:
        # A limit for a while: the schedule ends then, and so does the profile (K01.FR.37), so it
        # no longer blocks its stack level (K01.FR.06).
        schedule["duration"] = duration_s
        profile["validTo"] = format_datetime(start + timedelta(seconds=duration_s))
    if transaction_id:
        profile["transactionId"] = transaction_id
    return profile
