"""The charger license plan (docs/billing.md, "Charger licenses"): what one activation costs,
how long it lasts, and when the host may activate or renew it themselves. Pure: no Django."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class LicensePlan:
    # Price of one term per currency (the location's currency); a currency without a price is
    # activated by support only.
    prices: dict[str, Decimal]
    term_months: int = 12
    # A license in force may be renewed this many days before it ends (the new term follows on).
    renew_within_days: int = 30

    def price_in(self, currency: str) -> Decimal | None:
        return self.prices.get(currency.upper())


@dataclass(frozen=True)
class LicenseOffer:
    """What activating now would do, or why the host cannot do it themselves."""

    allowed: bool
    valid_from: date | None = None
    valid_until: date | None = None
    price: Decimal | None = None
    currency: str = ""
    reason: str = ""  # plain words when not allowed


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has fewer days)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def license_offer(
    plan: LicensePlan, *, valid_until: date | None, today: date, currency: str
) -> LicenseOffer:
    """The term an activation today buys: from today for a charger without a license in force,
    or following on the current one within the renewal window; refused earlier than that."""
    price = plan.price_in(currency)
    if price is None:
        return LicenseOffer(
            allowed=False,
            currency=currency.upper(),
            reason=(
                f"Licenses in {currency.upper()} are activated by support: "
                "ask support and they will activate it for you."
            ),
        )
    if valid_until is not None and valid_until >= today:
        opens = valid_until - timedelta(days=plan.renew_within_days)
        if today < opens:
            return LicenseOffer(
                allowed=False,
                price=price,
                currency=currency.upper(),
                reason=(
                    f"The license is active until {valid_until:%d %b %Y}; it can be renewed "
                    f"from {opens:%d %b %Y}, {plan.renew_within_days} days before it ends."
                ),
            )
        start = valid_until + timedelta(days=1)
    else:
        start = today
    return LicenseOffer(
        allowed=True,
        valid_from=start,
        valid_until=add_months(start, plan.term_months) - timedelta(days=1),
        price=price,
        currency=currency.upper(),
    )
