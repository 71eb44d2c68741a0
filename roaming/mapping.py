"""Our locations, chargers and rates as OCPI 2.2.1 Location / EVSE / Connector / Tariff objects.

Pure: takes frozen facts, returns JSON-ready dicts (no Django, checked by import-linter). The
AFIR table in docs/ocpi.md says which of these fields carries which AFIR data item.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .location_data import format_coordinate
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
    # An OCPI Hours object (mod_locations "Hours"), already checked (roaming.location_data).
    opening_times: dict[str, Any]
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
        "capabilities": [
            "REMOTE_START_STOP_CAPABLE",
            "RESERVABLE",
            "UNLOCK_CAPABLE",
            "RFID_READER",
        ],
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
    data.update(
        {
            "country": location.country,
            # GeoLocation: decimal degrees as strings, up to 6 decimals (mod_locations "GeoLocation").
            "coordinates": {
                "latitude": format_coordinate(location.latitude),
                "longitude": format_coordinate(location.longitude),
            },
            "evses": [evse_object(evse) for evse in location.evses],
            "operator": {"name": location.operator_name},
            "time_zone": location.time_zone,
        }
    )
    data["opening_times"] = location.opening_times
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


# -- sessions and CDRs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CdrTokenFacts:
    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type,
            "contract_id": self.contract_id,
        }


@dataclass(frozen=True)
class CostFacts:
    """Our priced session (billing.pricing.Cost) in the terms OCPI needs; amounts are Decimal."""

    currency: str
    subtotal: Decimal  # excl. VAT
    total: Decimal  # incl. VAT
    fixed: Decimal | None
    energy: Decimal | None
    time: Decimal | None
    parking: Decimal | None
    energy_wh: Decimal  # exact Wh
    charging_seconds: int
    idle_seconds: int
    remark: str = ""


@dataclass(frozen=True)
class SessionFacts:
    id: str
    started_at: datetime
    stopped_at: datetime | None
    token: CdrTokenFacts
    auth_method: str
    location_id: str
    evse_uid: str
    cost: CostFacts
    active: bool
    last_updated: datetime
    tariff_id: str = ""
    authorization_reference: str = ""


def _price(amount: Decimal) -> dict[str, Any]:
    return {"excl_vat": number(amount)}


def _kwh(wh: Decimal | int) -> float | int:
    return number((Decimal(wh) / 1000).quantize(Decimal("0.001")))


def _hours(seconds: int) -> float | int:
    return number((Decimal(seconds) / 3600).quantize(Decimal("0.0001")))


def session_object(session: SessionFacts, *, country_code: str, party_id: str) -> dict[str, Any]:
    """Return an OCPI Session (mod_sessions "Session Object")."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": session.id,
        "start_date_time": format_datetime(session.started_at),
    }
    if session.stopped_at is not None:
        data["end_date_time"] = format_datetime(session.stopped_at)
    data.update(
        {
            "kwh": _kwh(session.cost.energy_wh),
            "cdr_token": session.token.as_dict(),
            "auth_method": session.auth_method,
        }
    )
    if session.authorization_reference:
        data["authorization_reference"] = session.authorization_reference
    data.update(
        {
            "location_id": session.location_id,
            "evse_uid": session.evse_uid,
            "connector_id": "1",
            "currency": session.cost.currency,
            "total_cost": {
                "excl_vat": number(session.cost.subtotal),
                "incl_vat": number(session.cost.total),
            },
            "status": "ACTIVE" if session.active else "COMPLETED",
            "last_updated": format_datetime(session.last_updated),
        }
    )
    return data


@dataclass(frozen=True)
class SignedValueFacts:
    nature: str
    plain_data: str
    signed_data: str


@dataclass(frozen=True)
class SignedDataFacts:
    """A session's signed meter values as the CDR carries them (mod_cdrs "SignedData")."""

    encoding_method: str
    values: tuple[SignedValueFacts, ...]
    encoding_method_version: int | None = None
    public_key: str = ""  # base64, as OCPI wants it
    url: str = ""


OCMF_NATURE = {"Transaction.Begin": "Start", "Transaction.End": "End"}


def ocmf_signed_data(
    records: list[tuple[str, str]], *, public_key_der: bytes | None, url: str = ""
) -> SignedDataFacts:
    """Return the SignedData of OCMF records [(OCPP context, "OCMF|...|...")]: plain_data is
    the record as the meter wrote it, signed_data the same bytes base64 encoded (the spec's
    "blob of signed data, base64 encoded"), public_key the meter's DER key in base64, and
    encoding_method_version the OCMF format's major version (FV) when the record names it."""
    version = None
    values = []
    for context, record in records:
        values.append(
            SignedValueFacts(
                nature=OCMF_NATURE.get(context, "Intermediate"),
                plain_data=record,
                signed_data=base64.b64encode(record.encode()).decode(),
            )
        )
        if version is None:
            version = _ocmf_major_version(record)
    return SignedDataFacts(
        encoding_method="OCMF",
        encoding_method_version=version,
        values=tuple(values),
        public_key=base64.b64encode(public_key_der).decode() if public_key_der else "",
        url=url,
    )


def _ocmf_major_version(record: str) -> int | None:
    marker = '"FV":'
    at = record.find(marker)
    if at < 0:
        return None
    text = record[at + len(marker) :].lstrip(" ").lstrip('"').split(".", 1)[0]
    return int(text) if text.isdigit() else None


def signed_data_object(signed: SignedDataFacts) -> dict[str, Any]:
    """Return a mod_cdrs SignedData object (string lengths as the spec's table allows)."""
    data: dict[str, Any] = {"encoding_method": signed.encoding_method[:36]}
    if signed.encoding_method_version is not None:
        data["encoding_method_version"] = signed.encoding_method_version
    if signed.public_key and len(signed.public_key) <= 512:
        data["public_key"] = signed.public_key
    data["signed_values"] = [
        {
            "nature": v.nature[:32],
            "plain_data": v.plain_data[:5000],
            "signed_data": v.signed_data[:5000],
        }
        for v in signed.values
    ]
    if signed.url and len(signed.url) <= 512:
        data["url"] = signed.url
    return data


def charging_periods(session: SessionFacts) -> list[dict[str, Any]]:
    """Return the CDR's charging periods: charging (ENERGY, TIME), then not charging (PARKING_TIME)."""
    cost = session.cost
    charging: dict[str, Any] = {
        "start_date_time": format_datetime(session.started_at),
        "dimensions": [
            {"type": "ENERGY", "volume": _kwh(cost.energy_wh)},
            {"type": "TIME", "volume": _hours(cost.charging_seconds)},
        ],
    }
    if session.tariff_id:
        charging["tariff_id"] = session.tariff_id
    periods = [charging]
    if cost.idle_seconds > 0 and session.stopped_at is not None:
        parking_from = session.stopped_at.timestamp() - cost.idle_seconds
        parking: dict[str, Any] = {
            "start_date_time": format_datetime(
                datetime.fromtimestamp(parking_from, tz=session.stopped_at.tzinfo)
            ),
            "dimensions": [{"type": "PARKING_TIME", "volume": _hours(cost.idle_seconds)}],
        }
        if session.tariff_id:
            parking["tariff_id"] = session.tariff_id
        periods.append(parking)
    return periods


def cdr_object(
    session: SessionFacts,
    *,
    cdr_id: str,
    location: dict[str, Any],
    tariffs: list[dict[str, Any]],
    signed: SignedDataFacts | None,
    country_code: str,
    party_id: str,
    created: datetime,
) -> dict[str, Any]:
    """Return an OCPI CDR (mod_cdrs "CDR Object") whose costs are our billing's for the session.

    total_cost = our subtotal (excl. VAT) and total (incl. VAT); total_fixed_cost, total_energy_cost,
    total_time_cost and total_parking_cost are our connection fee, energy, charging time and idle
    fee lines (excl. VAT).
    """
    assert session.stopped_at is not None, "a CDR is for a finished session"
    cost = session.cost
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": cdr_id,
        "start_date_time": format_datetime(session.started_at),
        "end_date_time": format_datetime(session.stopped_at),
        "session_id": session.id,
        "cdr_token": session.token.as_dict(),
        "auth_method": session.auth_method,
    }
    if session.authorization_reference:
        data["authorization_reference"] = session.authorization_reference
    data["cdr_location"] = location
    data["currency"] = cost.currency
    if tariffs:
        data["tariffs"] = tariffs
    data["charging_periods"] = charging_periods(session)
    if signed is not None and signed.values:
        data["signed_data"] = signed_data_object(signed)
    data["total_cost"] = {"excl_vat": number(cost.subtotal), "incl_vat": number(cost.total)}
    if cost.fixed is not None:
        data["total_fixed_cost"] = _price(cost.fixed)
    data["total_energy"] = _kwh(cost.energy_wh)
    if cost.energy is not None:
        data["total_energy_cost"] = _price(cost.energy)
    total_seconds = max(int((session.stopped_at - session.started_at).total_seconds()), 0)
    data["total_time"] = _hours(total_seconds)
    if cost.time is not None:
        data["total_time_cost"] = _price(cost.time)
    data["total_parking_time"] = _hours(cost.idle_seconds)
    if cost.parking is not None:
        data["total_parking_cost"] = _price(cost.parking)
    if cost.remark:
        data["remark"] = cost.remark[:255]
    data["last_updated"] = format_datetime(created)
    return data
