"""OCPI 2.3.0: one pure function per module, from the same domain facts as 2.2.1.

Text: ../shared/reference/ocpi-2.3.0/ (changelog.asciidoc lists what changed). What differs
from 2.2.1 and is written here: a Price is {"before_taxes", "taxes": [TaxAmount]} (types
"Price class"); a Tariff says `tax_included` and may give the `preauthorize_amount` a payment
terminal holds; a Location may list its `parking_places` and a `help_phone`, an EVSE the
parking it serves and the `accepted_service_providers`; the Payments module's Terminal.
Everything else is built by the same blocks as 2.2.1 (roaming.mapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .. import mapping
from ..location_data import InvalidLocationData, format_coordinate, parse_coordinate
from ..ocpi import V230, format_datetime, parse_datetime
from . import v221

VERSION = V230

ENDPOINTS: tuple[tuple[str, str], ...] = (*v221.ENDPOINTS, ("payments", "RECEIVER"))

# mod_locations "ParkingRestriction" (an OpenEnum in 2.3.0).
PARKING_RESTRICTIONS = v221.PARKING_RESTRICTIONS | {"EMPLOYEES", "TAXIS", "TENANTS"}
TAX_NAME = "VAT"


def price(before_tax: Decimal, tax: Decimal | None, percent: Decimal | None) -> dict[str, Any]:
    """Return a 2.3.0 Price: before_taxes, and the tax on it when known (one TaxAmount, VAT)."""
    data: dict[str, Any] = {"before_taxes": mapping.number(before_tax)}
    if tax is not None and (tax != 0 or (percent or 0) > 0):
        amount: dict[str, Any] = {"name": TAX_NAME}
        if percent is not None:
            amount["percentage"] = mapping.number(percent)
        amount["amount"] = mapping.number(tax)
        data["taxes"] = [amount]
    return data


def credentials(facts: mapping.CredentialsFacts) -> dict[str, Any]:
    """Return our 2.3.0 Credentials object: as in 2.2.1 (we route for no one, so no
    `hub_party_id`)."""
    return mapping.credentials_object(facts)


def parking(place: mapping.ParkingFacts) -> dict[str, Any]:
    """Return a Parking object (mod_locations "Parking object"); unknown values left out."""
    data: dict[str, Any] = {"id": place.id}
    if place.physical_reference:
        data["physical_reference"] = place.physical_reference[:12]
    data["vehicle_types"] = list(place.vehicle_types)
    for name in (
        "max_vehicle_weight",
        "max_vehicle_height",
        "max_vehicle_length",
        "max_vehicle_width",
        "parking_space_length",
        "parking_space_width",
        "dangerous_goods_allowed",
    ):
        value = getattr(place, name)
        if value is not None:
            data[name] = value
    if place.direction:
        data["direction"] = place.direction
    if place.drive_through is not None:
        data["drive_through"] = place.drive_through
    data["restricted_to_type"] = place.restricted_to_type
    data["reservation_required"] = place.reservation_required
    for name in ("time_limit", "roofed", "lighting", "refrigeration_outlet"):
        value = getattr(place, name)
        if value is not None:
            data[name] = value
    if place.standards:
        data["standards"] = list(place.standards)
    return data


def token(facts: mapping.IssuedTokenFacts) -> dict[str, Any]:
    """Return one of our cards as a Token object (the same in 2.2.1 and 2.3.0)."""
    return mapping.token_object(facts)


def location(facts: mapping.LocationFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.3.0 Location: the 2.2.1 fields, its parking places and help phone, and per
    EVSE the parking it serves and the eMSPs whose contracts it accepts."""
    data = mapping.location_object(facts, party=party, restrictions=PARKING_RESTRICTIONS)
    for evse, facts_of_evse in zip(data["evses"], facts.evses, strict=True):
        if facts_of_evse.parking:
            evse["parking"] = [
                {"parking_id": link.parking_id}
                | ({"evse_position": link.evse_position} if link.evse_position else {})
                for link in facts_of_evse.parking
            ]
        if facts_of_evse.accepted_service_providers:
            evse["accepted_service_providers"] = [
                name[:50] for name in facts_of_evse.accepted_service_providers
            ]
    if facts.parking:
        data["parking_places"] = [parking(place) for place in facts.parking]
    if facts.help_phone:
        data["help_phone"] = facts.help_phone[:25]
    return data


def evse_status(evse: mapping.EvseFacts) -> dict[str, Any]:
    return mapping.evse_status_patch(evse)


def tax_included(prices: mapping.TariffPrices) -> str:
    """Return the Tariff's TaxIncluded value: YES, NO (added on top) or N/A (no tax)."""
    if prices.tax_included:
        return "YES"
    return "NO" if prices.tax_percent > 0 else "N/A"


def tariff(rate: mapping.RateFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.3.0 Tariff: the prices as stated, `tax_included` saying whether tax is in
    them, and the amount a payment terminal should pre-authorize."""
    prices = rate.prices
    data = mapping.tariff_object(
        rate, party=party, amount=mapping.stated, tax_included=prices.tax_included
    )
    if rate.preauthorize_amount is not None:
        data["preauthorize_amount"] = mapping.number(rate.preauthorize_amount)
    data["tax_included"] = tax_included(prices)
    return data


def session(facts: mapping.SessionFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.3.0 Session (costs as 2.3.0 Prices)."""
    return mapping.session_object(facts, party=party, price=price)


def cdr(
    facts: mapping.SessionFacts,
    *,
    cdr_id: str,
    location: dict[str, Any],
    rate: mapping.RateFacts | None,
    signed: mapping.SignedDataFacts | None,
    party: mapping.Party,
    created: datetime,
    invoice_reference_id: str = "",
) -> dict[str, Any]:
    """Return a 2.3.0 CDR, its tariff as a 2.3.0 Tariff."""
    return mapping.cdr_object(
        facts,
        cdr_id=cdr_id,
        location=location,
        tariffs=[tariff(rate, party=party)] if rate is not None else [],
        signed=signed,
        party=party,
        price=price,
        created=created,
        invoice_reference_id=invoice_reference_id,
    )


# -- Payments (mod_payments): the PTP's terminals ---------------------------------------------------


def terminal(facts: mapping.TerminalFacts) -> dict[str, Any]:
    """Return a Terminal object (mod_payments "Terminal Object"): what the PTP told us, with
    the locations and EVSEs we assigned to it."""
    data: dict[str, Any] = {"terminal_id": facts.terminal_id}
    for name, value in facts.details:
        data[name] = value
    data["location_ids"] = list(facts.location_ids)
    data["evse_uids"] = list(facts.evse_uids)
    data["last_updated"] = format_datetime(facts.last_updated)
    return data


class InvalidObject(ValueError):
    """An object a partner pushed that we cannot take (OCPI 2001), in words for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Terminal fields the PTP owns, with their CiString lengths (None: an enum or an object).
TERMINAL_DETAILS: dict[str, int | None] = {
    "customer_reference": 36,
    "party_id": 3,
    "country_code": 2,
    "address": 45,
    "city": 45,
    "postal_code": 10,
    "state": 20,
    "country": 3,
    "coordinates": None,
    "invoice_base_url": 255,
    "invoice_creator": None,
    "reference": 36,
}
INVOICE_CREATORS = ("CPO", "PTP")
CAPTURE_STATUSES = ("SUCCESS", "PARTIAL_SUCCESS", "FAILED")


def _text(body: dict[str, Any], name: str, max_length: int, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise InvalidObject(f"{name}: a string of 1 to {max_length} characters.")
    if not value.isprintable():
        raise InvalidObject(f"{name}: printable characters only.")
    return value


def _datetime(body: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = body.get(name)
    if value is None and not required:
        return None
    message = f"{name}: an RFC 3339 DateTime, e.g. 2026-01-01T12:00:00Z."
    if not isinstance(value, str):
        raise InvalidObject(message)
    try:
        return parse_datetime(value)
    except ValueError:
        raise InvalidObject(message) from None


@dataclass(frozen=True)
class TerminalPush:
    """A Terminal object a PTP pushed (mod_payments POST Terminal)."""

    terminal_id: str
    details: tuple[tuple[str, Any], ...]
    last_updated: datetime | None


def read_terminal(body: Any) -> TerminalPush:
    """Read a Terminal the PTP pushed; raise InvalidObject. Its `location_ids` and `evse_uids`
    are not read: the assignment is the CPO's (mod_payments "POST Terminal Method")."""
    if not isinstance(body, dict):
        raise InvalidObject("A Terminal object is required.")
    terminal_id = _text(body, "terminal_id", 36, required=True)
    details: list[tuple[str, Any]] = []
    for name, max_length in TERMINAL_DETAILS.items():
        if body.get(name) is None:
            continue
        if name == "invoice_creator":
            if body[name] not in INVOICE_CREATORS:
                raise InvalidObject("invoice_creator: CPO or PTP.")
            details.append((name, body[name]))
        elif name == "coordinates":
            details.append((name, _coordinates(body[name])))
        else:
            assert max_length is not None
            details.append((name, _text(body, name, max_length)))
    return TerminalPush(
        terminal_id=terminal_id,
        details=tuple(details),
        last_updated=_datetime(body, "last_updated", required=False),
    )


def _coordinates(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidObject("coordinates: a GeoLocation object.")
    try:
        latitude = parse_coordinate(value.get("latitude"), field="latitude")
        longitude = parse_coordinate(value.get("longitude"), field="longitude")
    except InvalidLocationData as exc:
        raise InvalidObject(f"coordinates.{exc.field}: {exc.message}") from None
    return {"latitude": format_coordinate(latitude), "longitude": format_coordinate(longitude)}


@dataclass(frozen=True)
class FinancialAdvice:
    """A Financial Advice Confirmation (mod_payments): what the PTP captured for a session."""

    id: str
    authorization_reference: str
    currency: str
    total_excl_tax: Decimal
    total_incl_tax: Decimal
    eft_data: tuple[str, ...]
    capture_status_code: str
    capture_status_message: str
    last_updated: datetime


# No payment comes near it; beyond, an amount would not fit its column (12 digits, 4 decimals).
_LARGEST = Decimal("1e8")


def _number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidObject(f"{name}: a number.")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise InvalidObject(f"{name}: a number.") from None
    if not number.is_finite() or not 0 <= number < _LARGEST:
        raise InvalidObject(f"{name}: a number of at least 0 and below 100000000.")
    return number


def read_price(value: Any, name: str) -> tuple[Decimal, Decimal]:
    """Return (before tax, after tax) of a Price: the 2.3.0 class ({"before_taxes", "taxes"},
    types "Price class"), or {"excl_vat", "incl_vat"} as the Payments module's own examples
    write it."""
    if not isinstance(value, dict):
        raise InvalidObject(f"{name}: a Price object.")
    if "before_taxes" in value:
        before = _number(value["before_taxes"], f"{name}.before_taxes")
        taxes = value.get("taxes") or []
        if not isinstance(taxes, list) or not all(isinstance(t, dict) for t in taxes):
            raise InvalidObject(f"{name}.taxes: a list of TaxAmount objects.")
        tax = sum((_number(t.get("amount"), f"{name}.taxes[].amount") for t in taxes), Decimal(0))
        if before + tax >= _LARGEST:
            raise InvalidObject(f"{name}: below 100000000 with its taxes.")
        return before, before + tax
    if "excl_vat" in value:
        before = _number(value["excl_vat"], f"{name}.excl_vat")
        after = value.get("incl_vat")
        return before, _number(after, f"{name}.incl_vat") if after is not None else before
    raise InvalidObject(f"{name}: before_taxes (or excl_vat) is required.")


def read_financial_advice(body: Any) -> FinancialAdvice:
    """Read a Financial Advice Confirmation the PTP posted; raise InvalidObject."""
    if not isinstance(body, dict):
        raise InvalidObject("A FinancialAdviceConfirmation object is required.")
    eft = body.get("eft_data")
    if eft is None:
        eft = []
    if not isinstance(eft, list) or not all(
        isinstance(line, str) and 1 <= len(line) <= 255 for line in eft
    ):
        raise InvalidObject("eft_data: a list of strings of 1 to 255 characters.")
    status = body.get("capture_status_code")
    if status not in CAPTURE_STATUSES:
        raise InvalidObject("capture_status_code: SUCCESS, PARTIAL_SUCCESS or FAILED.")
    if status != "FAILED" and not eft:
        # The invoice needs the payment's EFT data (mod_payments: eft_data is required, "+").
        raise InvalidObject("eft_data: at least one line for a capture that succeeded.")
    currency = _text(body, "currency", 3, required=True).upper()
    before, after = read_price(body.get("total_costs"), "total_costs")
    last_updated = _datetime(body, "last_updated", required=True)
    assert last_updated is not None
    return FinancialAdvice(
        id=_text(body, "id", 36, required=True),
        authorization_reference=_text(body, "authorization_reference", 36, required=True),
        currency=currency,
        total_excl_tax=before,
        total_incl_tax=after,
        eft_data=tuple(eft),
        capture_status_code=str(status),
        capture_status_message=_text(body, "capture_status_message", 255),
        last_updated=last_updated,
    )


def financial_advice_object(stored: dict[str, Any]) -> dict[str, Any]:
    """Return a Financial Advice Confirmation as we answer it (mod_payments GET): what the PTP
    sent, its `total_costs` in 2.3.0's Price class. The module's own examples write it as
    {excl_vat, incl_vat}, which we take (read_price); the answer is the same amounts in the
    class the object's table names (types "Price class")."""
    return {**stored, "total_costs": _price_from_221(stored.get("total_costs"))}


# -- objects made in 2.2.1 for a partner that moved to 2.3.0 ----------------------------------------


def _price_from_221(value: Any, percent: Any = None) -> Any:
    # A Price that has before_taxes is 2.3.0's already (read_price read that, whatever else
    # a PTP's object carries beside it).
    if not isinstance(value, dict) or "excl_vat" not in value or "before_taxes" in value:
        return value
    before = Decimal(str(value["excl_vat"]))
    incl = value.get("incl_vat")
    tax = Decimal(str(incl)) - before if incl is not None else None
    pct = Decimal(str(percent)) if isinstance(percent, int | float) else None
    return price(before, tax, pct)


def _tariff_from_221(tariff: Any) -> Any:
    if not isinstance(tariff, dict) or "tax_included" in tariff:
        return tariff
    vats = [
        component.get("vat") or 0
        for element in tariff.get("elements") or []
        for component in element.get("price_components") or []
    ]
    return {**tariff, "tax_included": "NO" if any(vats) else "N/A"}


PRICE_FIELDS = v221.PRICE_FIELDS


def from_221(module: str, body: Any) -> Any:
    """Return a Session or CDR we wrote in 2.2.1 as the same object in 2.3.0 (its Prices in the
    2.3.0 class, its tariffs saying tax_included), for a partner that moved to 2.3.0 while it
    waited or asks for it again: the amounts stay exactly those sent (a CDR never changes).
    Other modules' objects are the same in both versions."""
    if module not in ("sessions", "cdrs") or not isinstance(body, dict):
        return body
    listed = body.get("tariffs")
    tariffs: list[Any] = listed if isinstance(listed, list) else []
    components = [
        component
        for tariff in tariffs
        if isinstance(tariff, dict)
        for element in tariff.get("elements") or []
        for component in element.get("price_components") or []
    ]
    percent = next((c.get("vat") for c in components if c.get("vat") is not None), None)
    converted = dict(body)
    for name in PRICE_FIELDS:
        if name in converted:
            converted[name] = _price_from_221(
                converted[name], percent if name == "total_cost" else None
            )
    if tariffs:
        converted["tariffs"] = [_tariff_from_221(t) for t in tariffs]
    return converted
