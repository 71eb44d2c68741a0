"""Pure tax computation. No Django imports."""

from __future__ import annotations

from decimal import Decimal

from .money import round_money


def tax_amount(subtotal: Decimal, tax_percent: Decimal, currency: str) -> Decimal:
    """Return the tax on the (already rounded) subtotal, rounded half-up once."""
    if not tax_percent or subtotal <= 0:
        return round_money(Decimal(0), currency)
    return round_money(subtotal * Decimal(tax_percent) / Decimal(100), currency)
