"""`{{ amount|money_in:currency }}`: an amount with its currency's own decimals (EUR 1.00, JPY 100,
BHD 1.000), never a database field's four (a refund mail said "1.0000 EUR")."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from billing.money import round_money

register = template.Library()


@register.filter
def money_in(amount: Any, currency: str) -> str:
    if amount is None or amount == "":
        return "–"
    try:
        return str(round_money(Decimal(str(amount)), str(currency or "")))
    except (InvalidOperation, ValueError, TypeError):
        return str(amount)


@register.filter
def rate_text(value: Any) -> str:
    """An exchange rate as published: its digits without trailing zeros (11.4608, 10)."""
    if value is None or value == "":
        return "–"
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(value)
