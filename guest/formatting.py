"""Money for guests. An amount with its currency is shown in the currency's own decimals (ISO 4217
through billing.money: EUR 1.00, JPY 500, BHD 1.000); without one, at least two decimals, more only
where the host priced in fractions of a cent (a unit price)."""

from decimal import Decimal

from billing.money import minor_unit, round_money


def money(value: Decimal | int | float | str | None, currency: str = "") -> str:
    if value is None or value == "":
        return ""
    if currency:
        return str(round_money(Decimal(str(value)), currency))
    text = f"{Decimal(value).normalize():f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def unit_price(value: Decimal | int | float | str | None, currency: str) -> str:
    """A price per kWh, hour or minute: at least the currency's own decimals (EUR 0.40, JPY 40),
    more only where the host priced finer (EUR 0.345)."""
    if value is None or value == "":
        return ""
    text = f"{Decimal(str(value)).normalize():f}"
    whole, _, frac = text.partition(".")
    frac = frac.ljust(minor_unit(currency), "0")
    return f"{whole}.{frac}" if frac else whole
