"""A partner CPO's CDR checked against its tariff: the cost recomputed from the CDR's charging
periods and the Tariff as it stood when the session started, and whether the difference opens a
dispute instead of a charge.

Pure: no Django (import-linter). Text: mod_tariffs (TariffElement, PriceComponent, step_size,
TariffRestrictions) and mod_cdrs (ChargingPeriod, CdrDimension) of 2.2.1 and 2.3.0; amounts are
compared before tax (2.2.1 `excl_vat`, 2.3.0 `before_taxes`).

What is evaluated: FLAT (once a session, from the first element with one), ENERGY (kWh), TIME
and PARKING_TIME (hours) per charging period, priced by the first element whose restrictions
match; restrictions `day_of_week`, `start_time`/`end_time` (the period's start, in the
location's time zone), `min_kwh`/`max_kwh` (energy before the period) and
`min_duration`/`max_duration` (seconds since the session's start), then `min/max_power` and
`min/max_current` from the period's own MAX_POWER/POWER and MAX_CURRENT/CURRENT dimensions; an
element for reservations applies to reservation periods only. `step_size` rounds the
dimension's total up. An element the clock, energy or duration rules out is skipped whatever
else it restricts; one that would apply but asks for a speed the period does not state (or a
restriction this check does not know) is not recomputed: the CDR goes to a person (a dispute
says why), never charged on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from .ocpi import parse_datetime

CENT = Decimal("0.01")
# A local wall-clock time is compared as written: read in a zone with no offset.
UTC_ZONE = ZoneInfo("UTC")
_EVALUATED = frozenset(
    {
        "day_of_week",
        "start_time",
        "end_time",
        "min_kwh",
        "max_kwh",
        "min_duration",
        "max_duration",
        "start_date",
        "end_date",
    }
)
_SPEED = frozenset({"min_power", "max_power", "min_current", "max_current"})
# Read from the location's wall clock (mod_tariffs "TariffRestrictions": local time).
_CLOCK = frozenset({"day_of_week", "start_time", "end_time", "start_date", "end_date"})
# CdrDimensionType values that state a period's speed (kW, A).
_SPEED_DIMENSIONS = frozenset({"MAX_POWER", "POWER", "MAX_CURRENT", "CURRENT"})
_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# CdrDimensionType -> the PriceComponent type that prices it.
_PRICED = {"ENERGY": "ENERGY", "TIME": "TIME", "PARKING_TIME": "PARKING_TIME"}


class NotRecomputable(ValueError):
    """The CDR or its tariff says something this check does not evaluate (why, in words)."""


@dataclass(frozen=True)
class Check:
    """The recomputed cost before tax, the partner's, and whether it is a dispute."""

    recomputed: Decimal | None
    claimed: Decimal
    dispute: bool
    reason: str


# No amount, price or volume of a charging session comes near this: beyond it (or not finite,
# as 1e400 parses) a number is refused before it reaches arithmetic or a database column.
LARGEST = Decimal("1e8")


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NotRecomputable(f"{what} is not a number.")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise NotRecomputable(f"{what} is not a number.") from None
    if not number.is_finite() or abs(number) >= LARGEST:
        raise NotRecomputable(f"{what} is not a usable number.")
    return number


def _list(value: Any) -> list:
    """A partner's array, or none: a number or a string where the text has an array is not one."""
    return value if isinstance(value, list) else []


def price_before_tax(price: Any) -> Decimal:
    """Return a Price's amount before tax, in 2.2.1's class or 2.3.0's."""
    if isinstance(price, dict):
        for key in ("before_taxes", "excl_vat"):
            if key in price:
                return _decimal(price[key], "total_cost")
    raise NotRecomputable("total_cost is not a Price.")


@dataclass(frozen=True)
class _Moment:
    at: datetime  # the period's start
    kwh_before: Decimal
    seconds_since_start: Decimal
    # The period's charging speed from its own dimensions (MAX_POWER or POWER in kW,
    # MAX_CURRENT or CURRENT in A), None when it says none.
    power_kw: Decimal | None = None
    current_a: Decimal | None = None
    reservation: bool = False


def _clock(value: Any) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise NotRecomputable(f"start_time/end_time {value!r} is not HH:MM.") from None


def _in_time_window(restrictions: dict, local: datetime) -> bool:
    start, end = restrictions.get("start_time"), restrictions.get("end_time")
    if start is None and end is None:
        return True
    now = local.time().replace(second=0, microsecond=0)
    begin, finish = _clock(start or "00:00"), _clock(end or "00:00")
    if begin < finish or end is None:
        return begin <= now and (end is None or now < finish)
    return now >= begin or now < finish  # a window over midnight (mod_tariffs examples)


def _in_ranges(restrictions: dict, moment: _Moment, local: datetime) -> bool:
    checks = (
        ("min_kwh", moment.kwh_before, True),
        ("max_kwh", moment.kwh_before, False),
        ("min_duration", moment.seconds_since_start, True),
        ("max_duration", moment.seconds_since_start, False),
    )
    for key, value, at_least in checks:
        if key in restrictions:
            bound = _decimal(restrictions[key], key)
            if (value < bound) if at_least else (value >= bound):
                return False
    day = local.date().isoformat()
    if "start_date" in restrictions and day < str(restrictions["start_date"]):
        return False
    return not ("end_date" in restrictions and day >= str(restrictions["end_date"]))


def _in_speed(restrictions: dict, moment: _Moment) -> bool:
    """min/max_power (kW) and min/max_current (A), from the period's own speed; raise
    NotRecomputable when the element asks for a speed the period does not state."""
    for unit, value in (("power", moment.power_kw), ("current", moment.current_a)):
        keys = [k for k in (f"min_{unit}", f"max_{unit}") if k in restrictions]
        if not keys:
            continue
        if value is None:
            raise NotRecomputable(
                f"The tariff has {unit} restrictions ({', '.join(keys)}) and the CDR's "
                f"period does not state its {unit}."
            )
        if f"min_{unit}" in restrictions and value < _decimal(restrictions[f"min_{unit}"], unit):
            return False
        if f"max_{unit}" in restrictions and value >= _decimal(restrictions[f"max_{unit}"], unit):
            return False
    return True


def _applies(element: dict, moment: _Moment, zone: ZoneInfo | None) -> bool:
    """Whether the element's restrictions hold at the moment. Those read from the clock, the
    energy and the duration first: an element they rule out never needs the rest. Zone None:
    the location's time zone is not known, and a restriction of the clock cannot be read."""
    restrictions = element.get("restrictions") or {}
    if not isinstance(restrictions, dict):
        raise NotRecomputable("A tariff element's restrictions are not an object.")
    if zone is None:
        if _CLOCK & set(restrictions):
            raise NotRecomputable(
                "The tariff's times and days are the location's local time, and the CDR's "
                "location is not one we hold: its time zone is not known."
            )
        zone = UTC_ZONE
    try:
        local = moment.at.astimezone(zone)
    except OverflowError:  # a period in year 1 or 9999, beyond the calendar in that zone
        raise NotRecomputable("A charging period's start is out of range.") from None
    days = restrictions.get("day_of_week")
    if days and _WEEKDAYS[local.weekday()] not in _list(days):
        return False
    if not (_in_time_window(restrictions, local) and _in_ranges(restrictions, moment, local)):
        return False
    if "reservation" in restrictions and not moment.reservation:
        return False  # an element for reservations only
    unknown = set(restrictions) - _EVALUATED - _SPEED - {"reservation"}
    if unknown:
        raise NotRecomputable(
            "The tariff has restrictions this check does not evaluate: "
            + ", ".join(sorted(unknown))
        )
    return _in_speed(restrictions, moment)


def _component(
    elements: list,
    kind: str,
    moment: _Moment,
    zone: ZoneInfo | None,
    *,
    untold_skips: bool = False,
) -> dict | None:
    """The price component of `kind` of the first element that applies (mod_tariffs
    "TariffElement": the first matching element with that dimension is used). An element that
    asks what the moment cannot tell (a speed not known) raises NotRecomputable, or with
    `untold_skips` is passed over (the price shown before a session)."""
    for element in elements:
        if not isinstance(element, dict):
            continue
        components = [
            c
            for c in _list(element.get("price_components"))
            if isinstance(c, dict) and c.get("type") == kind
        ]
        if not components:
            continue
        try:
            if _applies(element, moment, zone):
                return components[0]
        except NotRecomputable:
            if not untold_skips:
                raise
    return None


@dataclass
class _Dimension:
    volume: Decimal = Decimal(0)  # kWh, or hours
    cost: Decimal = Decimal(0)
    price: Decimal = Decimal(0)  # of the last period priced: what a step's rounding costs
    step: int = 1


def _periods(cdr: dict) -> list[dict]:
    periods = cdr.get("charging_periods")
    if not isinstance(periods, list) or not periods:
        raise NotRecomputable("The CDR has no charging periods.")
    return sorted(
        (p for p in periods if isinstance(p, dict)), key=lambda p: str(p.get("start_date_time"))
    )


def _speed(period: dict) -> tuple[Decimal | None, Decimal | None, bool]:
    """(power kW, current A, a reservation) a charging period states in its dimensions."""
    found: dict[str, Decimal] = {}
    dimensions = [d for d in _list(period.get("dimensions")) if isinstance(d, dict)]
    for dimension in dimensions:
        if str(dimension.get("type")) in _SPEED_DIMENSIONS:
            found[str(dimension["type"])] = _decimal(dimension.get("volume"), "speed")
    power = found.get("MAX_POWER", found.get("POWER"))
    current = found.get("MAX_CURRENT", found.get("CURRENT"))
    reserved = "RESERVATION_TIME" in {str(d.get("type")) for d in dimensions}
    return power, current, reserved


def recompute(cdr: dict, tariff: dict, *, time_zone: str | None = "UTC") -> Decimal:
    """Return the cost before tax of `cdr` at `tariff`, rounded half-up to the cent; raise
    NotRecomputable when the CDR or tariff cannot be evaluated here. `time_zone` is the
    location's (None: not known; a tariff restricted by the clock then is not recomputed)."""
    elements = tariff.get("elements")
    if not isinstance(elements, list) or not elements:
        raise NotRecomputable("The tariff has no elements.")
    try:
        zone = ZoneInfo(time_zone) if time_zone is not None else None
        started = parse_datetime(str(cdr.get("start_date_time")))
    except (ValueError, KeyError):
        raise NotRecomputable(
            "The CDR's start or the location's time zone is not readable."
        ) from None
    dimensions: dict[str, _Dimension] = {}
    kwh = Decimal(0)
    for period in _periods(cdr):
        try:
            at = parse_datetime(str(period.get("start_date_time")))
        except ValueError:
            raise NotRecomputable("A charging period's start is not a DateTime.") from None
        moment = _Moment(at, kwh, Decimal((at - started).total_seconds()), *_speed(period))
        for dimension in _list(period.get("dimensions")):
            kind = _PRICED.get(str(dimension.get("type"))) if isinstance(dimension, dict) else None
            if kind is None:
                continue  # MAX_CURRENT, STATE_OF_CHARGE, ...: informative, not priced
            volume = _decimal(dimension.get("volume"), f"{kind} volume")
            component = _component(elements, kind, moment, zone)
            if kind == "ENERGY":
                kwh += volume
            if component is None:
                continue  # no element prices it at that moment: free
            total = dimensions.setdefault(kind, _Dimension())
            total.price = _decimal(component.get("price"), f"{kind} price")
            total.step = int(_decimal(component.get("step_size") or 1, f"{kind} step_size"))
            total.volume += volume
            total.cost += volume * total.price
    cost = sum((_stepped(kind, d) for kind, d in dimensions.items()), Decimal(0))
    flat = _component(elements, "FLAT", _Moment(started, Decimal(0), Decimal(0)), zone)
    if flat is not None:
        cost += _decimal(flat.get("price"), "FLAT price")
    cost = _bounded(cost, tariff)
    if abs(cost) >= LARGEST:  # volumes times prices each below it: the sum may not be
        raise NotRecomputable("The recomputed cost is not a usable number.")
    return cost.quantize(CENT, rounding=ROUND_HALF_UP)


def _bounded(cost: Decimal, tariff: dict) -> Decimal:
    """mod_tariffs `min_price` / `max_price` (before tax): a session costing less is billed the
    minimum, one costing more the maximum."""
    low, high = tariff.get("min_price"), tariff.get("max_price")
    if low is not None:
        cost = max(cost, price_before_tax(low))
    if high is not None:
        cost = min(cost, price_before_tax(high))
    return cost


def _stepped(kind: str, dimension: _Dimension) -> Decimal:
    """The dimension's cost with its total volume rounded up to the step (mod_tariffs
    "step_size": Wh for ENERGY, seconds for TIME and PARKING_TIME), the extra at the last
    period's price."""
    unit = Decimal(1000) if kind == "ENERGY" else Decimal(3600)
    base = dimension.volume * unit
    step = Decimal(max(dimension.step, 1))
    rounded = (base / step).to_integral_value(rounding=ROUND_CEILING) * step
    return dimension.cost + (rounded - base) / unit * dimension.price


def check(
    cdr: dict, tariff: dict | None, *, threshold: Decimal, time_zone: str | None = "UTC"
) -> Check:
    """Return whether `cdr` (its total cost before tax) agrees with `tariff` within `threshold`:
    a larger difference, a tariff that cannot be recomputed or a missing tariff is a dispute."""
    claimed = price_before_tax(cdr.get("total_cost"))
    if tariff is None:
        return Check(None, claimed, True, "The CDR names no tariff we have.")
    try:
        recomputed = recompute(cdr, tariff, time_zone=time_zone)
    except NotRecomputable as exc:
        return Check(None, claimed, True, str(exc))
    difference = abs(claimed - recomputed)
    if difference > threshold:
        return Check(
            recomputed,
            claimed,
            True,
            f"The CDR says {claimed} before tax; its tariff gives {recomputed} "
            f"(a difference of {difference}, above {threshold}).",
        )
    return Check(recomputed, claimed, False, "")


@dataclass(frozen=True)
class DriverPrice:
    excl: Decimal
    vat: Decimal
    total: Decimal


def driver_price(
    partner_cost: Decimal, *, margin_percent: Decimal, fee: Decimal, vat_percent: Decimal
) -> DriverPrice:
    """Return our price to the driver for a partner's cost before tax: the cost plus our margin
    and our fee, our VAT on top (we resell the charge); each rounded half-up to the cent once."""
    excl = (partner_cost * (1 + margin_percent / 100) + fee).quantize(CENT, rounding=ROUND_HALF_UP)
    vat = (excl * vat_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return DriverPrice(excl, vat, excl + vat)


@dataclass(frozen=True)
class DriverTariff:
    """A partner's tariff as our price to the driver, before starting (tax included): the
    prices of its first element, and whether other elements (times, days, energy bands) may
    apply instead. None where the tariff has no such component."""

    currency: str
    per_kwh: Decimal | None
    per_hour: Decimal | None
    per_parking_hour: Decimal | None
    per_session: Decimal | None
    varies: bool
    minimum: Decimal | None = None  # the tariff's min_price, at our price to the driver


def _to_driver(value: Decimal, *, margin_percent: Decimal, vat_percent: Decimal) -> Decimal:
    excl = value * (1 + margin_percent / 100)
    return (excl * (1 + vat_percent / 100)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def driver_tariff(
    tariff: dict,
    *,
    margin_percent: Decimal,
    fee: Decimal,
    vat_percent: Decimal,
    at: datetime | None = None,
    power_kw: Decimal | None = None,
) -> DriverTariff:
    """Return the partner's tariff at our price to the driver (driver_price's rule per unit: the
    partner's price before tax plus our margin, our fee per session, our VAT on top), as a
    session starting `at` (the location's local time, as a naive or zoned datetime) at a
    connector of `power_kw` would pay it: each component from the first element that holds then
    (mod_tariffs "TariffElement"); without `at`, the first element's. `varies` when any element
    is restricted (another time, day, energy, duration or speed may pay another price). Raise
    NotRecomputable for a tariff that is not one."""
    elements = tariff.get("elements")
    currency = tariff.get("currency")
    if not isinstance(elements, list) or not elements or not isinstance(elements[0], dict):
        raise NotRecomputable("The tariff has no elements.")
    if not isinstance(currency, str) or len(currency) != 3:
        raise NotRecomputable("The tariff has no currency.")
    varies = len(elements) > 1 or any(
        isinstance(e, dict) and e.get("restrictions") for e in elements
    )
    chosen = elements if at is not None else elements[:1]
    moment = _Moment(
        (at or datetime(2000, 1, 1, tzinfo=UTC_ZONE)).replace(tzinfo=UTC_ZONE),
        Decimal(0),
        Decimal(0),
        power_kw,
    )

    def priced(kind: str) -> Decimal | None:
        component = _component(chosen, kind, moment, UTC_ZONE, untold_skips=True)
        if component is None:
            return None
        value = _decimal(component.get("price"), "price")
        return _to_driver(value, margin_percent=margin_percent, vat_percent=vat_percent)

    flat_component = _component(chosen, "FLAT", moment, UTC_ZONE, untold_skips=True)
    flat_price = _decimal(flat_component.get("price"), "price") if flat_component else None
    per_session = None
    if flat_price is not None or fee:
        flat = (flat_price or Decimal(0)) * (1 + margin_percent / 100) + fee
        per_session = (flat * (1 + vat_percent / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
    minimum = None
    if tariff.get("min_price") is not None:
        low = price_before_tax(tariff["min_price"]) * (1 + margin_percent / 100) + fee
        minimum = (low * (1 + vat_percent / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
    return DriverTariff(
        currency=currency.upper(),
        minimum=minimum,
        per_kwh=priced("ENERGY"),
        per_hour=priced("TIME"),
        per_parking_hour=priced("PARKING_TIME"),
        per_session=per_session,
        varies=varies,
    )
