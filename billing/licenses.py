"""Charger licenses (docs/billing.md, "Charger licenses"): the one place that activates or renews
a charger's license, by its host within the plan or by support on the host's request. The term
is written on the charger and its price booked on the host's ledger in one transaction: it
appears on the host's next payout and statement as "Charger license"."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chargers.models import Charger

from . import ledger
from .license_plan import LicenseOffer, LicensePlan, license_offer
from .models import LedgerTransaction


class LicenseRefused(Exception):
    """The plan does not allow this activation now; the message says why in plain words."""


def license_plan() -> LicensePlan:
    return LicensePlan(
        prices={code: Decimal(price) for code, price in settings.CHARGER_LICENSE_PRICES.items()},
        term_months=settings.CHARGER_LICENSE_TERM_MONTHS,
        renew_within_days=settings.CHARGER_LICENSE_RENEW_WITHIN_DAYS,
    )


def offer_for(
    charger: Charger, *, today: date | None = None, by_support: bool = False
) -> LicenseOffer:
    """What activating this charger's license today would do (for the page and the service).
    Support also activates in a currency the plan has no price for (invoiced outside the
    platform, so nothing is booked)."""
    place = charger.property
    if place is None:  # the bill goes to the location's organization: none yet
        return LicenseOffer(
            allowed=False, reason="The charger belongs to no location yet: support assigns it."
        )
    plan = license_plan()
    currency = place.currency.upper()
    if by_support and plan.price_in(currency) is None:
        plan = replace(plan, prices={**plan.prices, currency: Decimal(0)})
    return license_offer(
        plan,
        valid_until=charger.license_valid_until,
        today=today or charger.license_today(),  # the location's day, as the decision's
        currency=currency,
    )


def license_activate(
    *, charger_id: int, by_support: bool = False, today: date | None = None
) -> LicenseOffer:
    """Activate (or renew) the charger's license for one term of the plan and book its price on
    the host's ledger (the host pays either way; support may also activate where the plan has
    no price).
    Raises LicenseRefused when the plan does not allow it now; changes nothing then."""
    with transaction.atomic():
        charger = (
            Charger.objects.select_for_update(of=("self",))
            .select_related("property")
            .get(pk=charger_id)
        )
        offer = offer_for(charger, today=today, by_support=by_support)
        if not offer.allowed:
            raise LicenseRefused(offer.reason)
        assert offer.valid_from and offer.valid_until and offer.price is not None
        assert charger.property is not None  # offer_for refuses a charger without a location
        charger.license_valid_until = offer.valid_until
        charger.save(update_fields=["license_valid_until"])
        if offer.price > 0:
            ledger.post(
                key=f"license:{charger.pk}:{offer.valid_from.isoformat()}",
                kind=LedgerTransaction.Kind.LICENSE_FEE,
                organization_id=charger.property.organization_id,
                currency=offer.currency,
                amount=offer.price,
                occurred_at=timezone.now(),
                memo=(
                    f"{charger.station_id}: {offer.valid_from:%d %b %Y} – "
                    f"{offer.valid_until:%d %b %Y}"
                    + (" (activated by support)" if by_support else "")
                ),
            )
        return offer
