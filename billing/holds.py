"""Pure: how much to hold on a guest's card before a session (no Django imports).

The hold is the price of the largest session a guest can buy: the session ceiling (kWh and
hours plugged in, configurable) at the rate's prices, with the idle fee for the ceiling's
idle time (or its cap) and tax (when added on top of the prices), rounded up to the currency's minor unit. The guest is shown
this amount before paying; the capture at the end is the real cost, never more than the hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from .money import minor_unit
from .pricing import RateTerms


@dataclass(frozen=True)
class Ceiling:
    kwh: Decimal = Decimal("60")
    hours: Decimal = Decimal("4")
    idle_minutes: int = 30


def hold_amount(terms: RateTerms, ceiling: Ceiling) -> Decimal:
    """Return the hold for a session at `terms` up to `ceiling` (at least one minor unit)."""
    idle_minutes = max(ceiling.idle_minutes - terms.idle_grace_minutes, 0)
    idle = terms.idle_fee_per_minute * idle_minutes
    if terms.idle_fee_cap is not None:
        idle = min(idle, terms.idle_fee_cap)
    subtotal = (
        terms.connection_fee
        + ceiling.kwh * terms.energy_price_per_kwh
        + ceiling.hours * terms.time_price_per_hour
        + idle
    )
    # Prices that include tax are the total already; otherwise tax goes on top.
    total = subtotal if terms.prices_include_tax else subtotal * (1 + terms.tax_percent / 100)
    step = Decimal(1).scaleb(-minor_unit(terms.currency))
    return max(total.quantize(step, rounding=ROUND_CEILING), step)


def ceiling_reached(ceiling: Ceiling, *, kwh: Decimal, hours: Decimal) -> str:
    """What of the ceiling a running session has reached, in words ('' while under it).

    Charging past it would deliver what the hold (or a terminal's preauthorization, which is the
    same amount) cannot pay for: the capture never exceeds the hold.
    """
    if kwh >= ceiling.kwh:
        return f"{ceiling.kwh:g} kWh"
    if hours >= ceiling.hours:
        return f"{ceiling.hours:g} hours"
    return ""
