"""Pure tax computation: the one split of an amount into net, tax and gross. No Django imports.

The rounding rule (docs/billing.md, "Tax"): the amount as the host states it (net where tax is
added on top, gross where prices include tax) is kept as it is, rounded half-up to the
precision; the other side is computed from it once and rounded half-up to the same precision;
the tax is gross - net. So net + tax = gross exactly, and every surface that shows the split
(receipt, statement, CDR) shows the same cents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .money import minor_unit

HUNDRED = Decimal(100)
# Precision of a unit price (per kWh, per hour, per minute) split for display or for OCPI:
# the precision rates are stored with.
UNIT_PRICE = Decimal("0.0001")


@dataclass(frozen=True)
class TaxSplit:
    """An amount split by tax: net (excl. tax) + tax = gross (incl. tax)."""

    net: Decimal
    tax: Decimal
    gross: Decimal


def split(amount: Decimal, tax_percent: Decimal, *, included: bool, places: Decimal) -> TaxSplit:
    """Return the net, tax and gross of `amount` at `tax_percent`, rounded to `places`.

    `included`: the amount is gross (the price includes tax); else it is net and tax is added
    on top. The stated amount is kept; the other side is rounded half-up once.
    """
    stated = Decimal(amount).quantize(places, rounding=ROUND_HALF_UP)
    percent = Decimal(tax_percent or 0)
    if percent <= 0:
        return TaxSplit(net=stated, tax=stated - stated, gross=stated)
    if included:
        net = (stated * HUNDRED / (HUNDRED + percent)).quantize(places, rounding=ROUND_HALF_UP)
        return TaxSplit(net=net, tax=stated - net, gross=stated)
    tax = (stated * percent / HUNDRED).quantize(places, rounding=ROUND_HALF_UP)
    return TaxSplit(net=stated, tax=tax, gross=stated + tax)


def split_money(
    amount: Decimal, tax_percent: Decimal, currency: str, *, included: bool
) -> TaxSplit:
    """Return the split of a money amount, rounded to the currency's minor unit."""
    return split(
        amount, tax_percent, included=included, places=Decimal(1).scaleb(-minor_unit(currency))
    )


def split_unit_price(price: Decimal, tax_percent: Decimal, *, included: bool) -> TaxSplit:
    """Return the split of a unit price (per kWh, hour, minute), to 4 decimals."""
    return split(price, tax_percent, included=included, places=UNIT_PRICE)


_VAT_ID = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,12}$")
VAT_ID_RULE = (
    "A VAT number starts with the country's two letters, then 2 to 12 letters or digits, "
    "e.g. NL123456789B01."
)


def vat_id_normalized(value: str) -> str | None:
    """A VAT identification number as printed on invoices (NL123456789B01): spaces, dots and
    hyphens dropped, upper case; "" for none given; None when it cannot be one (VAT_ID_RULE)."""
    text = re.sub(r"[\s.\-]", "", value or "").upper()
    if not text:
        return ""
    return text if _VAT_ID.match(text) else None
