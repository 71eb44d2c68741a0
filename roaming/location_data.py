"""A location's roaming data as OCPI 2.2.1 publishes it: country, coordinates, opening hours.

Pure checks and formats (no Django): the API and the portal form accept a value only in the
shape mod_locations gives it, so what partners receive is always valid OCPI.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pycountry

from .ocpi import format_datetime, parse_datetime

# mod_locations "GeoLocation": decimal degrees as strings, 5 to 7 decimals (WGS 84).
_LATITUDE = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}")
_LONGITUDE = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")
# mod_locations "RegularHours": 24 h clock with leading zeros.
_CLOCK = re.compile(r"([0-1][0-9]|2[0-3]):[0-5][0-9]")
_HOURS_KEYS = {"twentyfourseven", "regular_hours", "exceptional_openings", "exceptional_closings"}
POSTAL_CODE_MAX = 10  # mod_locations "Location Object": postal_code string(10)
CITY_MAX = 45  # city string(45)
OPERATOR_NAME_MAX = 100  # BusinessDetails.name string(100)


class InvalidLocationData(ValueError):
    """A value partners could not be given; `field` names it for the error answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_country(value: Any) -> str:
    """Return the ISO 3166-1 alpha-3 code of `value` (any case), or raise."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 3 or not code.isalpha() or pycountry.countries.get(alpha_3=code) is None:
        raise InvalidLocationData(
            "country", "Use an ISO 3166-1 alpha-3 country code, e.g. NLD, DEU, FRA."
        )
    return code


def parse_coordinate(value: Any, *, field: str) -> Decimal:
    """Return a latitude or longitude (`field`) given as an OCPI GeoLocation string, or raise."""
    latitude = field == "latitude"
    pattern, bound = (_LATITUDE, 90) if latitude else (_LONGITUDE, 180)
    example = "52.0907374" if latitude else "5.1214201"
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidLocationData(
            field,
            f'A string of decimal degrees with 5 to 7 decimals, e.g. "{example}" '
            "(OCPI GeoLocation).",
        )
    number = Decimal(value)
    if not -bound <= number <= bound:
        raise InvalidLocationData(field, f"Between -{bound} and {bound}.")
    return number


def format_coordinate(value: Decimal) -> str:
    """Return a stored coordinate as OCPI's string: at least 6 decimals, 7 when it has them."""
    text = f"{value:.7f}"
    return text[:-1] if text.endswith("0") else text


def _clock(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _CLOCK.fullmatch(value):
        raise InvalidLocationData(
            "opening_hours", f'{field}: a time "HH:MM" on the 24 h clock, e.g. "08:00".'
        )
    return value


def _regular(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise InvalidLocationData("opening_hours", "regular_hours: a list.")
    found = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"weekday", "period_begin", "period_end"}:
            raise InvalidLocationData(
                "opening_hours",
                "regular_hours: each is {weekday, period_begin, period_end}.",
            )
        weekday = item["weekday"]
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 1 <= weekday <= 7:
            raise InvalidLocationData(
                "opening_hours", "regular_hours: weekday 1 (Monday) to 7 (Sunday)."
            )
        begin = _clock(item["period_begin"], "period_begin")
        end = _clock(item["period_end"], "period_end")
        if end <= begin:
            raise InvalidLocationData(
                "opening_hours", "regular_hours: period_end must be later than period_begin."
            )
        found.append({"weekday": weekday, "period_begin": begin, "period_end": end})
    return found


def _periods(items: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(items, list):
        raise InvalidLocationData("opening_hours", f"{name}: a list.")
    found = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"period_begin", "period_end"}:
            raise InvalidLocationData(
                "opening_hours", f"{name}: each is {{period_begin, period_end}}."
            )
        try:
            begin = parse_datetime(str(item["period_begin"]))
            end = parse_datetime(str(item["period_end"]))
        except ValueError:
            raise InvalidLocationData(
                "opening_hours", f'{name}: DateTimes, e.g. "2026-12-25T00:00:00Z".'
            ) from None
        if end <= begin:
            raise InvalidLocationData(
                "opening_hours", f"{name}: period_end must be later than period_begin."
            )
        found.append({"period_begin": format_datetime(begin), "period_end": format_datetime(end)})
    return found


def check_hours(value: Any) -> dict[str, Any]:
    """Return an OCPI Hours object (mod_locations "Hours"), normalized, or raise.

    twentyfourseven is required; regular hours only, and at least one, when it is false.
    """
    if not isinstance(value, dict) or not set(value) <= _HOURS_KEYS:
        raise InvalidLocationData(
            "opening_hours",
            "An OCPI Hours object: {twentyfourseven, regular_hours, exceptional_openings, "
            "exceptional_closings}.",
        )
    always = value.get("twentyfourseven")
    if not isinstance(always, bool):
        raise InvalidLocationData("opening_hours", "twentyfourseven (true or false) is required.")
    regular = _regular(value.get("regular_hours", []))
    if always and regular:
        raise InvalidLocationData(
            "opening_hours", "regular_hours only when twentyfourseven is false."
        )
    if not always and not regular:
        raise InvalidLocationData(
            "opening_hours", "Give at least one regular_hours period when not open 24/7."
        )
    hours: dict[str, Any] = {"twentyfourseven": always}
    if regular:
        hours["regular_hours"] = regular
    for name in ("exceptional_openings", "exceptional_closings"):
        periods = _periods(value.get(name, []), name)
        if periods:
            hours[name] = periods
    return hours


def check_text(value: Any, *, field: str, max_length: int, required: bool) -> str:
    """Return a trimmed text of at most `max_length` characters (required: not empty), or raise."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or (required and not text):
        raise InvalidLocationData(field, "This field is required.")
    if len(text) > max_length:
        raise InvalidLocationData(field, f"At most {max_length} characters (OCPI).")
    return text


# -- AFIR: what a National Access Point must be given (docs/afir.md) -------------------------------


def check_energy_mix(value: Any) -> dict[str, Any] | None:
    """Return an OCPI EnergyMix of what we hold ({is_green_energy, supplier_name?,
    energy_product_name?}), None for "not entered", or raise."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("is_green_energy"), bool):
        raise InvalidLocationData(
            "energy_mix", "Say whether the energy is green (is_green_energy: true or false)."
        )
    mix: dict[str, Any] = {"is_green_energy": value["is_green_energy"]}
    for name in ("supplier_name", "energy_product_name"):
        text = value.get(name)
        if text in (None, ""):
            continue
        if not isinstance(text, str) or len(text) > 64:
            raise InvalidLocationData("energy_mix", f"{name}: text of at most 64 characters.")
        mix[name] = text.strip()
    unknown = set(value) - {"is_green_energy", "supplier_name", "energy_product_name"}
    if unknown:
        raise InvalidLocationData("energy_mix", f"Unknown fields: {', '.join(sorted(unknown))}.")
    return mix


def afir_missing(
    *,
    has_opening_times: bool,
    has_energy_mix: bool,
    chargers_without_connector_data: list[str],
    chargers_without_price: list[str],
) -> list[str]:
    """Return, in words, what a publicly accessible location lacks of the fields access points
    make mandatory (NDW's five: opening_times, energy_mix, parking_restrictions,
    max_electric_power, tariff_ids); empty: it can be delivered.

    An empty list of parking restrictions is an answer (anyone may charge), so connector data
    entered is enough for parking_restrictions and max_electric_power."""
    missing = []
    if not has_opening_times:
        missing.append("its opening hours (open 24/7, or the hours of at least one weekday)")
    if not has_energy_mix:
        missing.append("its energy mix (whether the energy is green, and from which supplier)")
    if chargers_without_connector_data:
        names = ", ".join(chargers_without_connector_data)
        missing.append(f"the connector data (maximum power, who may charge) of {names}")
    if chargers_without_price:
        names = ", ".join(chargers_without_price)
        missing.append(f"a price for guests (the ad hoc price) at {names}")
    return missing
