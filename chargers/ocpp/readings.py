"""Readings bounded at the door. Pure: no I/O, no Django.

A charger that reports `Current.Import` 100000000 A reports something no charger can draw: such a
value is kept as sent (`MeterValue.raw_value`, and the frame in Logs) but stored without a
number (`MeterValue.value` None), so no power or energy computation reads it, and the charger is
told nothing unusual (a CALLERROR on a transaction message loses data). docs/power.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .energy import to_decimal

# The largest magnitude a charger can draw or see, in the measurand's base unit (A, W, V, %):
# well above any charger built (a 1 MW truck charger draws about 1,500 A DC), far below what
# overflows a column.
LIMITS: dict[str, Decimal] = {
    "Current": Decimal(5000),
    "Power": Decimal(5_000_000),
    "Voltage": Decimal(5000),
    "SoC": Decimal(100),
}
SCALE = {"k": Decimal(1000), "M": Decimal(1_000_000)}


def _base(measurand: str, unit: str, value: Decimal) -> tuple[Decimal, Decimal] | None:
    """(the value in the base unit, the bound) for a bounded measurand, else None."""
    kind = measurand.split(".", 1)[0] if measurand else ""
    limit = LIMITS.get(kind)
    if limit is None:
        return None
    factor = Decimal(1)
    if kind in ("Power", "Voltage") and len(unit) > 1 and unit[0] in SCALE:
        factor = SCALE[unit[0]]  # kW, kvar, kVA, kV
    return value * factor, limit


def plausible(measurand: str, unit: str, value: Decimal) -> bool:
    """True when a charger can report `value` for this measurand (unbounded measurands: always)."""
    based = _base(measurand, unit, value)
    if based is None:
        return True
    amount, limit = based
    return amount.is_finite() and abs(amount) <= limit


def reading_value(measurand: str, unit: str, raw: str) -> Decimal | None:
    """The number stored for a sampled value: None when it is not a number, beyond the column,
    or beyond what a charger can report (`plausible`)."""
    value = to_decimal(raw)
    if value is None or not plausible(measurand, unit, value):
        return None
    return value


def _samples(payload: dict) -> Iterator[dict]:
    for key in ("meterValue", "transactionData"):  # 1.6 and 2.0.1 alike
        entries = payload.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            values = entry.get("sampledValue") if isinstance(entry, dict) else None
            for sample in values if isinstance(values, list) else ():
                if isinstance(sample, dict):
                    yield sample


def implausible_in(payload: Any) -> list[str]:
    """The readings of a MeterValues, StopTransaction or TransactionEvent payload that no charger
    can report, as "Current.Import 100000000 A" (for the charger's page)."""
    if not isinstance(payload, dict):
        return []
    found = []
    for sample in _samples(payload):
        raw = sample.get("value")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            continue
        measurand = str(sample.get("measurand") or "Energy.Active.Import.Register")
        if measurand.split(".", 1)[0] not in LIMITS:
            continue  # unbounded (energy, the default): no number to judge, none parsed
        unit = sample.get("unit")
        if unit is None and isinstance(sample.get("unitOfMeasure"), dict):
            unit = sample["unitOfMeasure"].get("unit")
        unit = str(unit or "")
        text = repr(raw) if isinstance(raw, float) else str(raw)
        value = to_decimal(text)
        if value is not None and not plausible(measurand, unit, value):
            found.append(f"{measurand} {text[:30]} {unit}".strip())
    return found
