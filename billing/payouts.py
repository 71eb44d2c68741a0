"""A payout's outcome: paid, or failed with its net back on the host's balance; and what the
payouts we made look like to a reconciliation (Stripe's payout webhooks, the processor's
payouts and an uploaded report all end here)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from . import ledger
from .models import BillingSettings, LedgerTransaction, Payout
from .reconciliation import ExpectedPayout


def payout_mark_paid(*, payout: Payout, paid_at: datetime | None = None) -> Payout:
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        if payout.status == Payout.Status.PENDING:
            payout.status = Payout.Status.PAID
            payout.paid_at = paid_at or timezone.now()
            payout.save(update_fields=["status", "paid_at"])
        return payout


def payout_mark_failed(*, payout: Payout, reason: str) -> Payout:
    """Mark the payout failed and return its net to the host balance (rolls into the next one)."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        if payout.status == Payout.Status.FAILED:
            return payout
        payout.status = Payout.Status.FAILED
        payout.failure_reason = (reason or "The bank returned the payout.")[:300]
        payout.paid_at = None
        payout.save(update_fields=["status", "failure_reason", "paid_at"])
        ledger.post(
            key=f"payout-failed:{payout.reference}",
            kind=LedgerTransaction.Kind.PAYOUT_FAILED,
            organization_id=payout.organization_id,
            currency=payout.currency,
            amount=payout.net,
            occurred_at=timezone.now(),
            for_payout=payout,
            memo=f"Payout {payout.reference} failed: {payout.failure_reason}",
        )
        return payout


def expected_payouts(payouts) -> dict[str, ExpectedPayout]:
    minimums = dict(BillingSettings.objects.values_list("organization_id", "minimum_payout"))
    return {
        p.reference: ExpectedPayout(
            reference=p.reference,
            net=p.net,
            status=p.status,
            period_end=p.period_end.astimezone(UTC).date(),
            gross=p.gross,
            processing_fees=p.processing_fees,
            platform_fees=p.platform_fees,
            refunds=p.refunds,
            carried_over=p.carried_over,
            license_fees=p.license_fees,
            minimum_payout=minimums.get(p.organization_id, 0),
        )
        for p in payouts
    }
