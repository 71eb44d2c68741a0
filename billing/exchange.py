"""Pure: foreign-exchange reference rates and conversions of a bill (no Django imports).

The rates are the European Central Bank's euro foreign exchange reference rates
(eurofxref-daily.xml: one `Cube time=` day of `Cube currency= rate=` units per euro). A cross
rate between two other currencies goes through the euro, as the ECB's own note on them says.
A converted amount is rounded half-up to the target currency's minor unit once.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from defusedxml import ElementTree

from .money import is_known_currency, round_money

# Eight significant decimals are more than any published rate has (the ECB gives 4 to 6).
RATE_PLACES = Decimal("0.00000001")


class NotRates(ValueError):
    """The document is not the ECB's daily reference rates."""


RATE_MAX = Decimal(10) ** 10  # ExchangeRate.per_euro: 18 digits, 8 of them decimals


def parse_ecb_daily(text: str) -> tuple[date, dict[str, Decimal]]:
    """Return the day and the rates (units per euro) of an eurofxref-daily.xml document."""
    try:
        root = ElementTree.fromstring(text)
    except Exception as exc:  # defusedxml refuses entities; a truncated body does not parse
        raise NotRates("Not an XML document of reference rates.") from exc
    for cube in root.iter():
        day = cube.get("time")
        if not cube.tag.endswith("Cube") or day is None:
            continue
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise NotRates(f"Not a day: {day!r}.") from None
        rates: dict[str, Decimal] = {}
        for item in cube:
            currency, rate = item.get("currency", ""), item.get("rate", "")
            try:
                value = Decimal(rate)
            except InvalidOperation:
                continue
            # A rate the column holds (DECIMAL(18, 8)): "Infinity", "NaN" or 1e400 is no rate.
            if is_known_currency(currency) and value.is_finite() and 0 < value < RATE_MAX:
                rates[currency.upper()] = value
        if not rates:
            raise NotRates("The day lists no rates.")
        return when, rates
    raise NotRates("No day of rates in the document.")


def cross_rate(per_euro: dict[str, Decimal], source: str, target: str) -> Decimal | None:
    """Units of `target` for one unit of `source`, from rates per euro (the euro itself 1);
    None when either is not listed."""
    table = {**per_euro, "EUR": Decimal(1)}
    if source not in table or target not in table:
        return None
    return (table[target] / table[source]).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def convert(amount: Decimal, rate: Decimal, target: str) -> Decimal:
    """`amount` at `rate`, rounded half-up to the target currency's minor unit."""
    return round_money(amount * rate, target)
