"""ISO 15118 charging needs on OCPP 2.0.1 (K15-K17), pure: the TxProfile that answers a car's
NotifyEVChargingNeeds within the site's allowance, and whether the schedule the car chose
(NotifyEVChargingSchedule) stays within the one we sent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from chargers.ocpp.protocol import format_datetime

# The power app's session limit has this id and stack level (power.profiles: 3810 + EVSE,
# stackLevel 1), so either replaces the other: both fit the same allowance.
PROFILE_ID_TX_BASE = 3810
TX_STACK_LEVEL = 1
VOLTAGE = Decimal(230)
# When neither the car (its needs name no maximum: every parameter is optional) nor the site (no
# shared budget) limits a session, the profile must not either: the most a connector can carry,
# AC at 63 A per phase (IEC 62196-2 Type 2), DC at 500 kW (CCS, 500 A at 1000 V). A limit of 0
# would stop a car nobody meant to stop.
NO_LIMIT_AC_A = Decimal(63)
NO_LIMIT_DC_W = Decimal(500_000)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number >= 0 else None


def schedule_limit(
    needs: dict[str, Any], allowance_a: Decimal | None, phases: int
) -> tuple[str, Decimal]:
    """(chargingRateUnit, limit) for the car's needs: the car's own maximum, lowered to the site's
    allowance per phase when the site shares a budget (`allowance_a`; None: it shares none).
    DC cars are given watts, AC cars amperes per phase."""
    dc = needs.get("dcChargingParameters")
    if isinstance(dc, dict):
        power = _number(dc.get("evMaxPower"))
        if power is None:
            current, voltage = _number(dc.get("evMaxCurrent")), _number(dc.get("evMaxVoltage"))
            power = current * voltage if current is not None and voltage is not None else None
        if allowance_a is not None:
            site_w = allowance_a * VOLTAGE * phases
            power = site_w if power is None else min(power, site_w)
        return "W", (NO_LIMIT_DC_W if power is None else power).quantize(Decimal("1"))
    ac = needs.get("acChargingParameters")
    current = _number(ac.get("evMaxCurrent")) if isinstance(ac, dict) else None
    if allowance_a is not None:
        current = allowance_a if current is None else min(current, allowance_a)
    return "A", (NO_LIMIT_AC_A if current is None else current).quantize(Decimal("0.1"))


def needs_profile(
    evse_id: int,
    transaction_id: str,
    unit: str,
    limit: Decimal,
    start: datetime | None = None,
) -> dict[str, Any]:
    """SetChargingProfileRequest: one schedule, one period, for the car's transaction (K15.FR.06:
    at most three schedules; the car fits its own within it). Relative, or Absolute from `start`
    for a charger that refuses Relative profiles (docs/quirks.md)."""
    payload: dict[str, Any] = {
        "evseId": evse_id,
        "chargingProfile": {
            "id": PROFILE_ID_TX_BASE + evse_id,
            "stackLevel": TX_STACK_LEVEL,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": transaction_id,
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": unit,
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(limit)}],
                }
            ],
        },
    }
    if start is not None:
        payload["chargingProfile"]["chargingProfileKind"] = "Absolute"
        payload["chargingProfile"]["chargingSchedule"][0]["startSchedule"] = format_datetime(start)
    return payload


def _ceiling(profile: dict[str, Any]) -> tuple[str, Decimal] | None:
    schedules = profile.get("chargingProfile", {}).get("chargingSchedule") or []
    found: tuple[str, Decimal] | None = None
    for schedule in schedules:
        for period in schedule.get("chargingSchedulePeriod") or []:
            limit = _number(period.get("limit"))
            if limit is not None and (found is None or limit > found[1]):
                found = (str(schedule.get("chargingRateUnit")), limit)
    return found


def within(ev_schedule: dict[str, Any], sent: dict[str, Any], phases: int) -> bool:
    """Whether every period of the car's schedule stays within the highest limit we sent
    (K15.FR.11/12), converting between amperes and watts at 230 V per phase."""
    ceiling = _ceiling(sent)
    if ceiling is None:
        return True
    unit, limit = ceiling
    ev_unit = str(ev_schedule.get("chargingRateUnit"))
    for period in ev_schedule.get("chargingSchedulePeriod") or []:
        value = _number(period.get("limit"))
        if value is None:
            return False
        if ev_unit != unit:
            value = value * VOLTAGE * phases if ev_unit == "A" else value / (VOLTAGE * phases)
        if value > limit:
            return False
    return True
