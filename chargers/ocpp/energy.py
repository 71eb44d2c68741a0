"""Energy readings as exact decimals. Pure: no I/O, no Django.

A meter register is a decimal (2.0.1 sends 1234.56 Wh, or kWh with decimals, "12.3456"); 1.6
registers in MeterValues may be fractional too. Every path keeps them as `Decimal`, converted
between kWh and Wh by Decimal arithmetic (never float, never `int()`), so a session's energy is
its meter stop minus its meter start to the last reported decimal.

Stored with WH_PLACES decimals (a tenth of a milliwatt-hour, far below any meter's resolution)
in columns of METER_DIGITS digits, as the meter value column (MeterValue.value).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

METER_DIGITS = 20
WH_PLACES = 4
_QUANTUM = Decimal(1).scaleb(-WH_PLACES)
# Largest magnitude the columns hold (DECIMAL(20, 4)): 16 integer digits.
WH_MAX = Decimal(10) ** (METER_DIGITS - WH_PLACES) - _QUANTUM
KWH = "kwh"


def exact_wh(value: Decimal) -> Decimal | None:
    """`value` (Wh) as stored: WH_PLACES decimals; None when not finite or beyond the column."""
    if not value.is_finite() or abs(value) > WH_MAX:
        return None
    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def number(value: Any) -> Decimal | None:
    """A JSON number or numeric string as an exact Decimal (a float by its shortest repr, so
    1234.56 is 1234.56, not its binary approximation); None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return None
    if isinstance(value, Decimal):
        return value
    return None


def register_wh(value: Any, unit: str = "") -> Decimal | None:
    """A register reading in Wh, exact: `value` in `unit` (Wh unless it says kWh)."""
    reading = number(value)
    if reading is None or not reading.is_finite():
        return None
    if unit.lower() == KWH:
        reading = reading.scaleb(3)  # exact: a shift of the decimal point, no rounding
    return exact_wh(reading)


def kwh(wh: Decimal | int | None, places: int = 3) -> Decimal | None:
    """Wh as kWh with `places` decimals (display, CDRs); None stays None."""
    if wh is None:
        return None
    return (Decimal(wh).scaleb(-3)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def wh_text(wh: Decimal | int | None) -> str:
    """Wh as plain text without trailing zeros or an exponent (CSV, API): 1234.56, 1000."""
    if wh is None:
        return ""
    value = Decimal(wh)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


METER_VALUE_LIMIT = Decimal("1e15")  # MeterValue.value is DECIMAL(20, 4)


def to_decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and abs(value) < METER_VALUE_LIMIT else None
