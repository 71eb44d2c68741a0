"""Hosts' payout accounts (Stripe Connect, Express accounts with hosted onboarding).

The processor's onboarding page collects the bank account and identity: this product never
sees them. We keep the account id and whether payouts are enabled, read from the processor
on return and kept true by the `account.updated` webhook. Gateway calls run outside any
database transaction (call, then record).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .gateways import get_gateway
from .models import BillingSettings


def payout_account_onboarding(*, organization_id: int, email: str, country: str, return_url: str,
                              refresh_url: str) -> str:
    """Return the processor's onboarding link for the organization, creating its account once."""
    settings_row, _ = BillingSettings.objects.get_or_create(organization_id=organization_id)
    account = settings_row.payout_account_id
    gateway = get_gateway()
    if not account:
        # The key is the organization: a double click creates one account, not two.
        account = gateway.connect_account_create(email=email, country=country,
                                                 idempotency_key=f"payout-account-{organization_id}")
        with transaction.atomic():
            row = BillingSettings.objects.select_for_update().get(pk=settings_row.pk)
            if not row.payout_account_id:
                row.payout_account_id = account
                row.save(update_fields=["payout_account_id"])
            account = row.payout_account_id
    return gateway.connect_onboarding_link(account=account, refresh_url=refresh_url, return_url=return_url)


def payout_account_refresh(*, organization_id: int) -> BillingSettings | None:
    """Read from the processor whether the account can receive payouts, and record it."""
    row = BillingSettings.objects.filter(organization_id=organization_id).first()
    if row is None or not row.payout_account_id:
        return row
    ready = get_gateway().connect_account_ready(row.payout_account_id)
    BillingSettings.objects.filter(pk=row.pk).update(payout_account_ready=ready, payout_account_checked_at=timezone.now())
    row.refresh_from_db()
    return row
