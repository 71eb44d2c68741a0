"""Our domain as OCPI objects: the facts (frozen dataclasses) and the building blocks both
versions share. `roaming.versions.v221` and `v230` hold one function per module and version,
built from these blocks with what differs between the versions (the Price class, the fields
2.3.0 added); nothing here is said twice.

Pure: takes frozen facts, returns JSON-ready dicts (no Django, checked by import-linter). The
AFIR table in docs/ocpi.md says which of these fields carries which AFIR data item.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .location_data import format_coordinate
from .ocpi import format_datetime


def number(value: Decimal) -> float | int:
    """Return a Decimal as a JSON number (OCPI `number`), exact for prices of up to 4 decimals."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class Party:
    """The party that owns an object (our CPO party): country code and party id."""

    country_code: str
    party_id: str


# A Price (types "Price class") from an amount before tax, the tax on it (None: not known for
# this part) and the tax percent: {"excl_vat", "incl_vat"} in 2.2.1, {"before_taxes", "taxes"}
# in 2.3.0.
PriceFn = Callable[[Decimal, "Decimal | None", "Decimal | None"], dict[str, Any]]


@dataclass(frozen=True)
class ConnectorSpec:
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None


@dataclass(frozen=True)
class EvseParkingFacts:
    """A parking space an EVSE serves (2.3.0 mod_locations "EVSEParking")."""

    parking_id: str
    evse_position: str = ""  # LEFT, RIGHT, CENTER or unknown


@dataclass(frozen=True)
class EvseFacts:
    uid: str
    evse_id: str
    status: str
    spec: ConnectorSpec
    tariff_ids: tuple[str, ...]
    last_updated: datetime
    physical_reference: str = ""
    # mod_locations ParkingRestriction values (who may charge here, beyond vehicle types).
    parking_restrictions: tuple[str, ...] = ()
    parking: tuple[EvseParkingFacts, ...] = ()
    # Names of the eMSPs whose contracts are accepted here (2.3.0, for National Access Points).
    accepted_service_providers: tuple[str, ...] = ()
    # A payment terminal of a PTP partner is assigned to it (ad hoc card payment on the spot).
    terminal_payable: bool = False


@dataclass(frozen=True)
class ParkingFacts:
    """A parking space at a location (2.3.0 mod_locations "Parking object"); sizes in cm, weight
    in kg, time limit in minutes; None: not known (left out)."""

    id: str
    vehicle_types: tuple[str, ...]
    restricted_to_type: bool
    reservation_required: bool
    physical_reference: str = ""
    max_vehicle_weight: int | None = None
    max_vehicle_height: int | None = None
    max_vehicle_length: int | None = None
    max_vehicle_width: int | None = None
    parking_space_length: int | None = None
    parking_space_width: int | None = None
    dangerous_goods_allowed: bool | None = None
    direction: str = ""
    drive_through: bool | None = None
    time_limit: int | None = None
    roofed: bool | None = None
    lighting: bool | None = None
    refrigeration_outlet: bool | None = None
    standards: tuple[str, ...] = ()


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
    help_phone: str = ""
    parking: tuple[ParkingFacts, ...] = field(default=())
    # An OCPI EnergyMix (roaming.location_data.check_energy_mix), or None: not entered.
    energy_mix: dict[str, Any] | None = None


@dataclass(frozen=True)
class CredentialsFacts:
    """What our Credentials object says: the token for the partner, our versions URL, our CPO
    party and its business name, and (when the partner's operator has one) our eMSP party."""

    token: str
    url: str
    party: Party
    business_name: str
    emsp: Party | None = None
    emsp_business_name: str = ""


def credentials_object(facts: CredentialsFacts) -> dict[str, Any]:
    """Return our Credentials object (credentials "Credentials object"): the CPO role, and the
    EMSP role of the operator's eMSP identity when it has one (one platform, two roles)."""
    roles = [
        {
            "role": "CPO",
            "party_id": facts.party.party_id,
            "country_code": facts.party.country_code,
            "business_details": {"name": facts.business_name},
        }
    ]
    if facts.emsp is not None:
        roles.append(
            {
                "role": "EMSP",
                "party_id": facts.emsp.party_id,
                "country_code": facts.emsp.country_code,
                "business_details": {"name": facts.emsp_business_name or facts.business_name},
            }
        )
    return {"token": facts.token, "url": facts.url, "roles": roles}


@dataclass(frozen=True)
class IssuedTokenFacts:
    """One of our cards as we issue it to partner CPOs (we are its eMSP)."""

    party: Party
    uid: str
    type: str  # mod_tokens TokenType (roaming.emsp_rules.issued_type)
    contract_id: str
    issuer: str
    valid: bool
    last_updated: datetime
    visual_number: str = ""
    group_id: str = ""


def token_object(facts: IssuedTokenFacts) -> dict[str, Any]:
    """Return a Token object (mod_tokens "Token Object"). Whitelist ALLOWED: the CPO may accept
    the card from this object and is encouraged to ask us live (we answer from the decision
    made at home); a blocked card is pushed `valid: false` at once."""
    data: dict[str, Any] = {
        "country_code": facts.party.country_code,
        "party_id": facts.party.party_id,
        "uid": facts.uid,
        "type": facts.type,
        "contract_id": facts.contract_id,
    }
    if facts.visual_number:
        data["visual_number"] = facts.visual_number[:64]
    data["issuer"] = facts.issuer[:64]
    if facts.group_id:
        data["group_id"] = facts.group_id[:36]
    data["valid"] = facts.valid
    data["whitelist"] = "ALLOWED"
    data["last_updated"] = format_datetime(facts.last_updated)
    return data


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


# mod_locations "Capability": a payment terminal that takes credit and debit cards (AFIR's ad hoc
# payment); the terminal object does not say more (chip, contactless, PIN pad).
TERMINAL_CAPABILITIES = ("CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE")


def evse_object(evse: EvseFacts, *, restrictions: frozenset[str]) -> dict[str, Any]:
    """Return an OCPI EVSE (mod_locations "EVSE Object") with the ParkingRestriction values of
    `restrictions` (the version's enum)."""
    # What a partner may ask of it through the commands module (mod_locations "Capability").
    capabilities = ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE", "RFID_READER"]
    if evse.terminal_payable:
        capabilities.extend(TERMINAL_CAPABILITIES)
    data: dict[str, Any] = {
        "uid": evse.uid,
        "evse_id": evse.evse_id,
        "status": evse.status,
        "capabilities": capabilities,
        "connectors": [connector_object(evse)],
    }
    if evse.physical_reference:
        data["physical_reference"] = evse.physical_reference[:16]
    kept = [value for value in evse.parking_restrictions if value in restrictions]
    if kept:
        data["parking_restrictions"] = kept
    data["last_updated"] = format_datetime(evse.last_updated)
    return data


def location_object(
    location: LocationFacts, *, party: Party, restrictions: frozenset[str]
) -> dict[str, Any]:
    """Return an OCPI Location with its EVSEs (mod_locations "Location Object"): the fields
    both versions have."""
    data: dict[str, Any] = {
        "country_code": party.country_code,
        "party_id": party.party_id,
        "id": location.id,
        "publish": True,
        "name": location.name,
        # A property's address may be longer than the Location's string(255) (both versions).
        "address": location.address[:255],
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
            "evses": [evse_object(evse, restrictions=restrictions) for evse in location.evses],
            "operator": {"name": location.operator_name},
            "time_zone": location.time_zone,
        }
    )
    data["opening_times"] = location.opening_times
    if location.energy_mix is not None:
        data["energy_mix"] = location.energy_mix
    evse_times = [evse.last_updated for evse in location.evses]
    data["last_updated"] = format_datetime(max([location.last_updated, *evse_times]))
    return data


def evse_status_patch(evse: EvseFacts) -> dict[str, Any]:
    """Return the PATCH body of an EVSE status change (mod_locations, location_patch_example_status)."""
    return {"status": evse.status, "last_updated": format_datetime(evse.last_updated)}


# -- tariffs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatedPrice:
    """One price of a rate: excluding tax, and as stated to drivers (equal while tax is added on
    top; including tax where the location's prices include it)."""

    excl_tax: Decimal
    stated: Decimal

    @classmethod
    def tax_on_top(cls, amount: Decimal) -> StatedPrice:
        return cls(excl_tax=amount, stated=amount)


@dataclass(frozen=True)
class TariffPrices:
    """The one input of both versions' tariff mapping: a rate's prices, each excluding tax and
    as stated, and whether the stated prices include tax.

    2.2.1 Tariffs carry prices excluding VAT with each component's `vat`; 2.3.0 carries the
    stated prices and says in `tax_included` whether tax is in them. Today every rate's prices
    exclude tax, added on top (`tax_on_top`); a location whose prices include tax is built by
    the function that splits a price into its excl./incl. amounts with one rounding rule, and
    both versions follow from it unchanged.
    """

    tax_included: bool
    tax_percent: Decimal
    connection_fee: StatedPrice
    energy_per_kwh: StatedPrice
    time_per_hour: StatedPrice
    idle_per_minute: StatedPrice
    idle_fee_cap: StatedPrice | None = None

    @classmethod
    def tax_on_top(
        cls,
        *,
        tax_percent: Decimal,
        connection_fee: Decimal,
        energy_per_kwh: Decimal,
        time_per_hour: Decimal,
        idle_per_minute: Decimal,
        idle_fee_cap: Decimal | None = None,
    ) -> TariffPrices:
        """Return prices that exclude tax, added on top (tax_included NO)."""
        on_top = StatedPrice.tax_on_top
        return cls(
            tax_included=False,
            tax_percent=tax_percent,
            connection_fee=on_top(connection_fee),
            energy_per_kwh=on_top(energy_per_kwh),
            time_per_hour=on_top(time_per_hour),
            idle_per_minute=on_top(idle_per_minute),
            idle_fee_cap=on_top(idle_fee_cap) if idle_fee_cap is not None else None,
        )


@dataclass(frozen=True)
class RateFacts:
    id: str
    currency: str
    prices: TariffPrices
    idle_grace_minutes: int
    valid_from: datetime
    valid_until: datetime | None
    last_updated: datetime
    # What a payment terminal should hold on the card for a session at this rate (2.3.0
    # `preauthorize_amount`, the Payments module's pre-authorization); None: not offered.
    preauthorize_amount: Decimal | None = None


# Which amount of a StatedPrice a version's Tariff carries.
PriceChoice = Callable[[StatedPrice], Decimal]


def excl_tax(price: StatedPrice) -> Decimal:
    return price.excl_tax


def stated(price: StatedPrice) -> Decimal:
    return price.stated


def _component(kind: str, price: Decimal, vat: Decimal, step_size: int) -> dict[str, Any]:
    return {"type": kind, "price": number(price), "vat": number(vat), "step_size": step_size}


def tariff_alt_text(rate: RateFacts, *, amount: PriceChoice, tax_included: bool) -> str:
    """Return the tariff in words (for drivers, and for what OCPI elements cannot say), with the
    amounts `amount` picks and a closing word on tax."""
    currency = rate.currency
    prices = rate.prices
    parts = []

    def say(price: StatedPrice) -> str:
        return f"{amount(price).normalize():f}"

    if prices.connection_fee.excl_tax > 0:
        parts.append(f"{say(prices.connection_fee)} {currency} per session")
    parts.append(f"{say(prices.energy_per_kwh)} {currency}/kWh")
    if prices.time_per_hour.excl_tax > 0:
        parts.append(f"{say(prices.time_per_hour)} {currency}/h while charging")
    if prices.idle_per_minute.excl_tax > 0:
        idle = f"{say(prices.idle_per_minute)} {currency}/min when plugged in after charging"
        if rate.idle_grace_minutes:
            idle += f", the first {rate.idle_grace_minutes} min free"
        if prices.idle_fee_cap is not None:
            idle += f", at most {say(prices.idle_fee_cap)} {currency}"
        parts.append(idle)
    text = "; ".join(parts)
    if prices.tax_percent > 0:
        word = "incl." if tax_included else "excl."
        text += f"; prices {word} {prices.tax_percent.normalize():f}% VAT"
    return text[:512]


def tariff_object(
    rate: RateFacts, *, party: Party, amount: PriceChoice, tax_included: bool
) -> dict[str, Any]:
    """Return an OCPI Tariff for one of our rates (mod_tariffs "Tariff Object"), with the
    amounts `amount` picks of each price: the fields both versions have.

    Dimensions: connection fee = FLAT, energy = ENERGY (per kWh, billed per Wh), charging
    time = TIME (per hour, billed per second), idle fee = PARKING_TIME (per hour, step 60 s: we
    bill whole minutes and never a started one, where OCPI rounds a started step up, so a
    partner's estimate may be one minute's fee above ours). The idle grace and cap have no
    OCPI element: they are in the alt text. `vat` is the rate's tax percent.
    """
    prices = rate.prices
    vat = prices.tax_percent
    components = []
    if prices.connection_fee.excl_tax > 0:
        components.append(_component("FLAT", amount(prices.connection_fee), vat, 1))
    components.append(_component("ENERGY", amount(prices.energy_per_kwh), vat, 1))
    if prices.time_per_hour.excl_tax > 0:
        components.append(_component("TIME", amount(prices.time_per_hour), vat, 1))
    if prices.idle_per_minute.excl_tax > 0:
        per_hour = amount(prices.idle_per_minute) * 60
        components.append(_component("PARKING_TIME", per_hour, vat, 60))
    text = tariff_alt_text(rate, amount=amount, tax_included=tax_included)
    data: dict[str, Any] = {
        "country_code": party.country_code,
        "party_id": party.party_id,
        "id": rate.id,
        "currency": rate.currency,
        "tariff_alt_text": [{"language": "en", "text": text}],
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
    tax_percent: Decimal | None = None  # the rate's; None: no rate

    @property
    def tax(self) -> Decimal:
        """The tax on the session: total - subtotal, so a Price always sums to the receipt."""
        return self.total - self.subtotal


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


def _kwh(wh: Decimal | int) -> float | int:
    return number((Decimal(wh) / 1000).quantize(Decimal("0.001")))


def _hours(seconds: int) -> float | int:
    return number((Decimal(seconds) / 3600).quantize(Decimal("0.0001")))


def total_price(cost: CostFacts, price: PriceFn) -> dict[str, Any]:
    """Return the session's total as the version's Price: before tax, and its tax."""
    return price(cost.subtotal, cost.tax, cost.tax_percent)


def session_object(session: SessionFacts, *, party: Party, price: PriceFn) -> dict[str, Any]:
    """Return an OCPI Session (mod_sessions "Session Object"), costs as `price` writes them."""
    data: dict[str, Any] = {
        "country_code": party.country_code,
        "party_id": party.party_id,
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
            "total_cost": total_price(session.cost, price),
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
    party: Party,
    price: PriceFn,
    created: datetime,
    invoice_reference_id: str = "",
) -> dict[str, Any]:
    """Return an OCPI CDR (mod_cdrs "CDR Object") whose costs are our billing's for the session,
    written by the version's `price`.

    total_cost = our subtotal (excl. VAT) and its tax (the total incl. VAT); total_fixed_cost,
    total_energy_cost, total_time_cost and total_parking_cost are our connection fee, energy,
    charging time and idle fee lines (excl. VAT; their tax is only known for the whole).
    `invoice_reference_id`: the invoice we issued for it (a session paid at a terminal).
    """
    assert session.stopped_at is not None, "a CDR is for a finished session"
    cost = session.cost

    def part(amount: Decimal) -> dict[str, Any]:
        return price(amount, None, None)

    data: dict[str, Any] = {
        "country_code": party.country_code,
        "party_id": party.party_id,
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
    data["total_cost"] = total_price(cost, price)
    if cost.fixed is not None:
        data["total_fixed_cost"] = part(cost.fixed)
    data["total_energy"] = _kwh(cost.energy_wh)
    if cost.energy is not None:
        data["total_energy_cost"] = part(cost.energy)
    total_seconds = max(int((session.stopped_at - session.started_at).total_seconds()), 0)
    data["total_time"] = _hours(total_seconds)
    if cost.time is not None:
        data["total_time_cost"] = part(cost.time)
    data["total_parking_time"] = _hours(cost.idle_seconds)
    if cost.parking is not None:
        data["total_parking_cost"] = part(cost.parking)
    if invoice_reference_id:
        data["invoice_reference_id"] = invoice_reference_id[:39]
    if cost.remark:
        data["remark"] = cost.remark[:255]
    data["last_updated"] = format_datetime(created)
    return data


def credit_cdr(cdr: dict[str, Any], *, credit_id: str, created: datetime) -> dict[str, Any]:
    """Return the Credit CDR of a CDR we sent (mod_cdrs "Credit CDRs"): all of its data under a
    new id, `credit` and `credit_reference_id` set, and only `total_cost`'s amounts negated
    (2.2.1's excl_vat and incl_vat, 2.3.0's before_taxes and each tax's amount)."""
    data = {**cdr, "id": credit_id, "credit": True, "credit_reference_id": cdr["id"]}
    total = dict(cdr["total_cost"])
    for key in ("excl_vat", "incl_vat", "before_taxes"):
        if key in total:
            total[key] = _negated(total[key])
    if "taxes" in total:
        total["taxes"] = [{**tax, "amount": _negated(tax["amount"])} for tax in total["taxes"]]
    data["total_cost"] = total
    data["last_updated"] = format_datetime(created)
    return data


def _negated(amount: float | int) -> float | int:
    return number(-Decimal(str(amount)))  # -0.1, not -0.1000000000000000055...


# The CDR fields a correction is about: what the eMSP bills its driver for.
CDR_BILLED_FIELDS = (
    "end_date_time",
    "total_cost",
    "total_energy",
    "total_time",
    "total_parking_time",
)


# -- payment terminals (2.3.0 mod_payments) ---------------------------------------------------------


@dataclass(frozen=True)
class TerminalFacts:
    """A PTP's payment terminal as we hold it: what the PTP said about it (`details`, the
    optional Terminal fields in the order received) and the locations and EVSEs we assigned."""

    terminal_id: str
    details: tuple[tuple[str, Any], ...]
    location_ids: tuple[str, ...]
    evse_uids: tuple[str, ...]
    last_updated: datetime


# -- AFIR: what national access points make mandatory ----------------------------------------------


def connector_max_power(connector: dict[str, Any]) -> int:
    """Return a Connector's maximum power in W: `max_electric_power`, else voltage x amperage
    (x 3 for three phases, mod_locations "Connector Object")."""
    given = connector.get("max_electric_power")
    if given:
        return int(given)
    phases = 3 if connector.get("power_type") == "AC_3_PHASE" else 1
    return int(connector["max_voltage"]) * int(connector["max_amperage"]) * phases


def afir_location(location: dict[str, Any]) -> dict[str, Any]:
    """Return an OCPI Location as a national access point takes it: the fields its profile makes
    mandatory always present (NDW DOT-NL: EVSE.parking_restrictions, an empty list meaning
    anyone may park; Connector.max_electric_power), the rest as every partner gets it."""
    evses = []
    for evse in location.get("evses") or []:
        connectors = [
            {**c, "max_electric_power": connector_max_power(c)} for c in evse.get("connectors", [])
        ]
        evses.append(
            {
                **evse,
                "parking_restrictions": list(evse.get("parking_restrictions") or []),
                "connectors": connectors,
            }
        )
    return {**location, "evses": evses}
