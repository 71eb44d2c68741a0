"""Pure money helpers: ISO 4217 minor units and half-up rounding. No Django imports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units; every currency not listed here uses 2.
MINOR_UNITS = {
    "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "XAF": 0, "XOF": 0, "UGX": 0, "PYG": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3, "IQD": 3,
}


def minor_unit(currency: str) -> int:
    """Return the number of decimals of the currency (ISO 4217), 2 when unknown."""
    return MINOR_UNITS.get((currency or "").upper(), 2)


def round_money(amount: Decimal | int | float | str, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (0.005 EUR -> 0.01; 0.5 JPY -> 1)."""
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return Decimal(amount).quantize(exponent, rounding=ROUND_HALF_UP)


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
