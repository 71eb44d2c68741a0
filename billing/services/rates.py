"""Rates (with their tax mode checked), an organization's billing settings and its seller
details on receipts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import (
    BillingSettings,
    Rate,
)
from ..selectors import (
    location_tax_mode,
)

if TYPE_CHECKING:
    pass


@transaction.atomic
def rate_tax_mode_check(rate: Rate) -> None:
    """Refuse a change of tax mode of a price already in force (ValidationError): sessions
    started under it keep its tax mode, as they keep its prices. Every way of saving a price asks
    this (the API, the portal, the admin)."""
    if rate.pk is None:
        return
    stored = Rate.objects.filter(pk=rate.pk).values("prices_include_tax", "valid_from").first()
    if (
        stored is not None
        and stored["prices_include_tax"] != rate.prices_include_tax
        and stored["valid_from"] <= timezone.now()
    ):
        raise ValidationError(
            {
                "prices_include_tax": "This price is already in force: a change of tax mode "
                "applies to sessions that start after it. Set a new price from now instead "
                "(Prices › Set a new price starts from this one)."
            }
        )


def rate_save(*, rate: Rate, **fields: Any) -> Rate:
    """Create or change a price. A new price that does not say its tax mode keeps the mode of
    its location's latest price (a location's tax mode changes only when the host says so)."""
    for name, value in fields.items():
        setattr(rate, name, value)
    rate_tax_mode_check(rate)
    if rate.pk is None and "prices_include_tax" not in fields and rate.property_id:
        latest = location_tax_mode(rate.property_id)
        if latest is not None:
            rate.prices_include_tax = latest
    rate.full_clean()
    rate.save()
    return rate


def billing_settings_for(organization_id: int) -> BillingSettings:
    row, _ = BillingSettings.objects.get_or_create(organization_id=organization_id)
    return row


@transaction.atomic
def seller_details_set(*, organization_id: int, seller_name: str, vat_number: str) -> None:
    """The organization's name and VAT number as the seller on the receipts it issues from now on
    (issued receipts keep the details they were issued with)."""
    row, _ = BillingSettings.objects.get_or_create(organization_id=organization_id)
    BillingSettings.objects.filter(pk=row.pk).update(seller_name=seller_name, vat_number=vat_number)
