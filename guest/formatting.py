"""Money for guests: at least two decimals, more only where the host priced in fractions of a cent."""

from decimal import Decimal


def money(value: Decimal | int | float | str | None) -> str:
    if value is None or value == "":
        return ""
    text = f"{Decimal(value).normalize():f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
