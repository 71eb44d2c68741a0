"""Pure money helpers: currency minor units from CLDR/ISO 4217 data (babel) and half-up rounding.

No Django imports. The minor unit decides how an amount is rounded and how it is sent to a
payment processor (JPY, XPF and VUV have none: 500 JPY is sent as 500, never 50000).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.core import get_global
from babel.numbers import get_currency_precision


@lru_cache(maxsize=512)
def minor_unit(currency: str) -> int:
    """Return the number of decimals of the currency (JPY 0, EUR 2, BHD 3); 2 when unknown."""
    return int(get_currency_precision((currency or "").upper()))


def is_known_currency(currency: str) -> bool:
    """True when the code is an ISO 4217 currency that babel's CLDR data knows."""
    code = (currency or "").upper()
    return len(code) == 3 and code in get_global("all_currencies")


def round_money(amount: Decimal | int | float | str, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (0.005 EUR -> 0.01; 0.5 JPY -> 1)."""
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return Decimal(str(amount) if isinstance(amount, float) else amount).quantize(
        exponent, rounding=ROUND_HALF_UP
    )


def to_minor(amount: Decimal, currency: str) -> int:
    """Return the amount in minor units (cents), as payment processors expect."""
    return int(round_money(amount, currency).scaleb(minor_unit(currency)))


def from_minor(value: int, currency: str) -> Decimal:
    return round_money(Decimal(value).scaleb(-minor_unit(currency)), currency)


STORED = Decimal("0.0001")


def exact_sum(value: Decimal | int | float | None) -> Decimal:
    """Return a database SUM of 4-decimal amounts as an exact Decimal.

    SQLite sums DECIMAL columns in floating point (2.77e-17 instead of 0); every stored
    amount has at most 4 decimals, so quantizing back to 4 decimals restores the exact sum.
    """
    return Decimal(value or 0).quantize(STORED, rounding=ROUND_HALF_UP)
