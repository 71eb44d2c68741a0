"""OCPI 2.2.1: one pure function per module, from the domain facts (roaming.mapping).

Text: ../shared/reference/ocpi/. Prices exclude VAT, each price component names its `vat`,
and a Price is {"excl_vat", "incl_vat"} (types "Price class").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.taxes import split_unit_price

from .. import mapping
from ..ocpi import V221

VERSION = V221

ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("credentials", "SENDER"),
    ("credentials", "RECEIVER"),
    ("locations", "SENDER"),
    ("tariffs", "SENDER"),
    ("tokens", "RECEIVER"),
    ("commands", "RECEIVER"),
    ("sessions", "SENDER"),
    ("cdrs", "SENDER"),
    # Our eMSP role (docs/ocpi.md "eMSP"): partner CPOs read our drivers' cards and ask us live.
    ("tokens", "SENDER"),
    ("locations", "RECEIVER"),
    ("tariffs", "RECEIVER"),
    ("sessions", "RECEIVER"),
    ("cdrs", "RECEIVER"),
    # Hubs push the status of the parties they connect (mod_hub_client_info).
    ("hubclientinfo", "RECEIVER"),
)

# mod_locations "ParkingRestriction enum" of 2.2.1 (2.3.0 adds EMPLOYEES, TAXIS, TENANTS).
PARKING_RESTRICTIONS = frozenset({"EV_ONLY", "PLUGGED", "DISABLED", "CUSTOMERS", "MOTORCYCLES"})


def price(before_tax: Decimal, tax: Decimal | None, percent: Decimal | None) -> dict[str, Any]:
    """Return a 2.2.1 Price: excl_vat, and incl_vat when the tax on it is known."""
    data: dict[str, Any] = {"excl_vat": mapping.number(before_tax)}
    if tax is not None:
        data["incl_vat"] = mapping.number(before_tax + tax)
    return data


def credentials(facts: mapping.CredentialsFacts) -> dict[str, Any]:
    """Return our 2.2.1 Credentials object (credentials "Credentials object")."""
    return mapping.credentials_object(facts)


def token(facts: mapping.IssuedTokenFacts) -> dict[str, Any]:
    """Return one of our cards as a Token object (the same in 2.2.1 and 2.3.0)."""
    return mapping.token_object(facts)


def location(facts: mapping.LocationFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.2.1 Location with its EVSEs and Connectors."""
    return mapping.location_object(facts, party=party, restrictions=PARKING_RESTRICTIONS)


def evse_status(evse: mapping.EvseFacts) -> dict[str, Any]:
    """Return the PATCH body of an EVSE's status (the same in both versions)."""
    return mapping.evse_status_patch(evse)


def tariff(rate: mapping.RateFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.2.1 Tariff: every price excluding VAT (mod_tariffs PriceComponent.price)."""
    return mapping.tariff_object(rate, party=party, amount=mapping.excl_tax, tax_included=False)


def _cdr_token_221(data: dict[str, Any]) -> dict[str, Any]:
    """2.2.1's TokenType has no EMAID (2.3.0 added it): a contract's token is OTHER there."""
    token = data.get("cdr_token")
    if isinstance(token, dict) and token.get("type") == "EMAID":
        data["cdr_token"] = {**token, "type": "OTHER"}
    return data


def session(facts: mapping.SessionFacts, *, party: mapping.Party) -> dict[str, Any]:
    """Return a 2.2.1 Session."""
    return _cdr_token_221(mapping.session_object(facts, party=party, price=price))


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
    """Return a 2.2.1 CDR, its tariff as a 2.2.1 Tariff."""
    data = mapping.cdr_object(
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
    return _cdr_token_221(data)


# -- objects sealed in 2.3.0, read in 2.2.1 ----------------------------------------------------------

PRICE_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _price_from_230(value: Any) -> Any:
    """A 2.3.0 Price {before_taxes, taxes} as a 2.2.1 Price: the same amounts, incl_vat the sum
    of the taxes on top (absent when no tax was given, as 2.2.1 writes an unknown tax)."""
    if not isinstance(value, dict) or "before_taxes" not in value:
        return value
    before = _decimal(value["before_taxes"])
    taxes = [t for t in value.get("taxes") or [] if isinstance(t, dict) and "amount" in t]
    tax = sum((_decimal(t["amount"]) for t in taxes), Decimal(0)) if taxes else None
    return price(before, tax, None)


def _limit_from_230(value: Any) -> Any:
    if not isinstance(value, dict) or "before_taxes" not in value:
        return value
    data = {"excl_vat": value["before_taxes"]}
    if value.get("after_taxes") is not None:
        data["incl_vat"] = value["after_taxes"]
    return data


def _component_from_230(component: Any, *, tax_included: bool) -> Any:
    # 2.2.1 prices exclude VAT: a stated price including it is split by billing's one rule.
    if not isinstance(component, dict) or not tax_included or not component.get("vat"):
        return component
    net = split_unit_price(_decimal(component["price"]), _decimal(component["vat"]), included=True)
    return {**component, "price": mapping.number(net.net)}


def _tariff_from_230(tariff: Any) -> Any:
    if not isinstance(tariff, dict) or "tax_included" not in tariff:
        return tariff
    included = tariff["tax_included"] == "YES"
    data = {k: v for k, v in tariff.items() if k not in ("tax_included", "preauthorize_amount")}
    for name in ("min_price", "max_price"):
        if name in data:
            data[name] = _limit_from_230(data[name])
    data["elements"] = [
        {
            **element,
            "price_components": [
                _component_from_230(c, tax_included=included)
                for c in element.get("price_components") or []
            ],
        }
        if isinstance(element, dict)
        else element
        for element in tariff.get("elements") or []
    ]
    return data


def from_230(module: str, body: Any) -> Any:
    """Return a Session or CDR we sealed in 2.3.0 as the same object in 2.2.1 (read at a 2.2.1
    URL, or for a partner that went back to 2.2.1): its Prices in the 2.2.1 class with the same
    amounts, its tariffs without 2.3.0's fields and with prices excluding VAT. Other modules'
    objects are the same in both versions."""
    if module not in ("sessions", "cdrs") or not isinstance(body, dict):
        return body
    converted = dict(body)
    for name in PRICE_FIELDS:
        if name in converted:
            converted[name] = _price_from_230(converted[name])
    if isinstance(body.get("tariffs"), list):
        converted["tariffs"] = [_tariff_from_230(t) for t in body["tariffs"]]
    return _cdr_token_221(converted)
