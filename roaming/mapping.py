"""Our locations, chargers and rates as OCPI 2.2.1 Location / EVSE / Connector / Tariff objects.

Pure: takes frozen facts, returns JSON-ready dicts (no Django, checked by import-linter). The
AFIR table in docs/ocpi.md says which of these fields carries which AFIR data item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .ocpi import format_datetime


def number(value: Decimal) -> float | int:
    """Return a Decimal as a JSON number (OCPI `number`), exact for prices of up to 4 decimals."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class ConnectorSpec:
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None


@dataclass(frozen=True)
class EvseFacts:
    uid: str
    evse_id: str
    status: str
    spec: ConnectorSpec
    tariff_ids: tuple[str, ...]
    last_updated: datetime
    physical_reference: str = ""


@dataclass(frozen=True)
class LocationFacts:
    id: str
    name: str
    address: str
    city: str
    postal_code: str
    country: str
    latitude: Decimal
    longitude: Decimal
    time_zone: str
    open_24_7: bool
    regular_hours: tuple[dict[str, Any], ...]
    operator_name: str
    evses: tuple[EvseFacts, ...]
    last_updated: datetime


def connector_object(evse: EvseFacts) -> dict[str, Any]:
    """Return the one OCPI Connector of an EVSE (mod_locations "Connector Object")."""
    spec = evse.spec
    data: dict[str, Any] = {
        "id": "1",
        "standard": spec.standard,
        "format": spec.format,
        "power_type": spec.power_type,
        "max_voltage": spec.max_voltage,
        "max_amperage": spec.max_amperage,
    }
    if spec.max_electric_power:
        data["max_electric_power"] = spec.max_electric_power
    if evse.tariff_ids:
        data["tariff_ids"] = list(evse.tariff_ids)
    data["last_updated"] = format_datetime(evse.last_updated)
    return data


def evse_object(evse: EvseFacts) -> dict[str, Any]:
    """Return an OCPI EVSE (mod_locations "EVSE Object")."""
    data: dict[str, Any] = {
        "uid": evse.uid,
        "evse_id": evse.evse_id,
        "status": evse.status,
        # What a partner may ask of it through the commands module (mod_locations "Capability").
        "capabilities": ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE", "RFID_READER"],
        "connectors": [connector_object(evse)],
    }
    if evse.physical_reference:
        data["physical_reference"] = evse.physical_reference[:16]
    data["last_updated"] = format_datetime(evse.last_updated)
    return data


def location_object(location: LocationFacts, *, country_code: str, party_id: str) -> dict[str, Any]:
    """Return an OCPI Location with its EVSEs (mod_locations "Location Object")."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": location.id,
        "publish": True,
        "name": location.name,
        "address": location.address,
        "city": location.city,
    }
    if location.postal_code:
        data["postal_code"] = location.postal_code
    data.update({
        "country": location.country,
        # GeoLocation: decimal degrees as strings, up to 6 decimals (mod_locations "GeoLocation").
        "coordinates": {"latitude": f"{location.latitude:.6f}", "longitude": f"{location.longitude:.6f}"},
        "evses": [evse_object(evse) for evse in location.evses],
        "operator": {"name": location.operator_name},
        "time_zone": location.time_zone,
    })
    if location.open_24_7:
        data["opening_times"] = {"twentyfourseven": True}
    else:
        data["opening_times"] = {"twentyfourseven": False, "regular_hours": list(location.regular_hours)}
    evse_times = [evse.last_updated for evse in location.evses]
    data["last_updated"] = format_datetime(max([location.last_updated, *evse_times]))
    return data


def evse_status_patch(evse: EvseFacts) -> dict[str, Any]:
    """Return the PATCH body of an EVSE status change (mod_locations, location_patch_example_status)."""
    return {"status": evse.status, "last_updated": format_datetime(evse.last_updated)}


# -- tariffs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateFacts:
    id: str
    currency: str
    connection_fee: Decimal
    energy_price_per_kwh: Decimal
    time_price_per_hour: Decimal
    idle_fee_per_minute: Decimal
    idle_grace_minutes: int
    idle_fee_cap: Decimal | None
    tax_percent: Decimal
    valid_from: datetime
    valid_until: datetime | None
    last_updated: datetime


def _component(kind: str, price: Decimal, vat: Decimal, step_size: int) -> dict[str, Any]:
    return {"type": kind, "price": number(price), "vat": number(vat), "step_size": step_size}


def tariff_alt_text(rate: RateFacts) -> str:
    """Return the tariff in words (for drivers, and for what OCPI elements cannot say)."""
    currency = rate.currency
    parts = []
    if rate.connection_fee > 0:
        parts.append(f"{rate.connection_fee.normalize():f} {currency} per session")
    parts.append(f"{rate.energy_price_per_kwh.normalize():f} {currency}/kWh")
    if rate.time_price_per_hour > 0:
        parts.append(f"{rate.time_price_per_hour.normalize():f} {currency}/h while charging")
    if rate.idle_fee_per_minute > 0:
        idle = f"{rate.idle_fee_per_minute.normalize():f} {currency}/min when plugged in after charging"
        if rate.idle_grace_minutes:
            idle += f", the first {rate.idle_grace_minutes} min free"
        if rate.idle_fee_cap is not None:
            idle += f", at most {rate.idle_fee_cap.normalize():f} {currency}"
        parts.append(idle)
    text = "; ".join(parts)
    if rate.tax_percent > 0:
        text += f"; prices excl. {rate.tax_percent.normalize():f}% VAT"
    return text[:512]


def tariff_object(rate: RateFacts, *, country_code: str, party_id: str) -> dict[str, Any]:
    """Return an OCPI Tariff for one of our rates (mod_tariffs "Tariff Object").

    Dimensions: connection fee = FLAT, energy = ENERGY (per kWh, billed per Wh), charging
    time = TIME (per hour, billed per second), idle fee = PARKING_TIME (per hour, step 60 s: we
    bill whole minutes and never a started one, where OCPI rounds a started step up, so a
    partner's estimate may be one minute's fee above ours). The idle grace and cap have no
    OCPI 2.2.1 element: they are in the alt text.
    Prices exclude VAT; `vat` is the rate's tax percent.
    """
    vat = rate.tax_percent
    components = []
    if rate.connection_fee > 0:
        components.append(_component("FLAT", rate.connection_fee, vat, 1))
    components.append(_component("ENERGY", rate.energy_price_per_kwh, vat, 1))
    if rate.time_price_per_hour > 0:
        components.append(_component("TIME", rate.time_price_per_hour, vat, 1))
    if rate.idle_fee_per_minute > 0:
        components.append(_component("PARKING_TIME", rate.idle_fee_per_minute * 60, vat, 60))
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": rate.id,
        "currency": rate.currency,
        "tariff_alt_text": [{"language": "en", "text": tariff_alt_text(rate)}],
        "elements": [{"price_components": components}],
        "start_date_time": format_datetime(rate.valid_from),
    }
    if rate.valid_until is not None:
        data["end_date_time"] = format_datetime(rate.valid_until)
    data["last_updated"] = format_datetime(rate.last_updated)
    return data
