"""Payouts: a host's balance paid out (the totals, one payout per organization and currency,
the scheduled run), and a payout's outcome: paid, or failed with its net back on the host's
balance; and what the payouts we made look like to a reconciliation (Stripe's payout webhooks,
the processor's payouts and an uploaded report all end here)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from .. import ledger
from ..models import BillingSettings, LedgerTransaction, Payout
from ..money import exact_sum
from ..payout_schedule import period_end_for
from ..reconciliation import ExpectedPayout
from ..selectors import organization_zone, organization_zones

ZERO = Decimal("0")


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


def expected_payouts(payouts: Iterable[Payout]) -> dict[str, ExpectedPayout]:
    minimums = dict(BillingSettings.objects.values_list("organization_id", "minimum_payout"))
    payouts = list(payouts)
    # The day the period closed where the host is (its boundary is that zone's midnight).
    zones = organization_zones(p.organization_id for p in payouts)
    return {
        p.reference: ExpectedPayout(
            reference=p.reference,
            net=p.net,
            status=p.status,
            period_end=p.period_end.astimezone(zones[p.organization_id]).date(),
            gross=p.gross,
            processing_fees=p.processing_fees,
            platform_fees=p.platform_fees,
            refunds=p.refunds,
            carried_over=p.carried_over,
            license_fees=p.license_fees,
            minimum_payout=minimums.get(p.organization_id, ZERO),
        )
        for p in payouts
    }


PAYABLE_KINDS = (
    LedgerTransaction.Kind.GUEST_CHARGE,
    LedgerTransaction.Kind.PROCESSING_FEE,
    LedgerTransaction.Kind.PLATFORM_FEE,
    LedgerTransaction.Kind.REFUND,
    LedgerTransaction.Kind.PAYOUT_FAILED,
    LedgerTransaction.Kind.SUBSCRIPTION_FEE,
    LedgerTransaction.Kind.LICENSE_FEE,
)


def payout_totals(items: QuerySet[LedgerTransaction]) -> dict[str, Decimal]:
    sums = {
        row["kind"]: exact_sum(row["total"])
        for row in items.values("kind").annotate(total=Sum("amount")).order_by()
    }
    K = LedgerTransaction.Kind
    totals = {
        # Subscription fees are the host's revenue like session charges.
        "gross": sums.get(K.GUEST_CHARGE, ZERO) + sums.get(K.SUBSCRIPTION_FEE, ZERO),
        "processing_fees": sums.get(K.PROCESSING_FEE, ZERO),
        "platform_fees": sums.get(K.PLATFORM_FEE, ZERO),
        "refunds": sums.get(K.REFUND, ZERO),
        "license_fees": sums.get(K.LICENSE_FEE, ZERO),
        "carried_over": sums.get(K.PAYOUT_FAILED, ZERO),
    }
    totals["net"] = (
        totals["gross"]
        - totals["processing_fees"]
        - totals["platform_fees"]
        - totals["refunds"]
        - totals["license_fees"]
        + totals["carried_over"]
    )
    return totals


def payout_create(*, organization_id: int, currency: str, period_end: datetime) -> Payout | None:
    """Pay out everything booked before `period_end` that no payout holds yet. Idempotent.

    Returns None when there is nothing to pay, or the net is below the organization's
    minimum (the balance then rolls into the next period).
    """
    currency = currency.upper()
    with transaction.atomic():
        existing = Payout.objects.filter(
            organization_id=organization_id, currency=currency, period_end=period_end
        ).first()
        if existing is not None:
            return existing
        # Lock the unpaid movements first (FOR UPDATE cannot be combined with GROUP BY).
        ids = list(
            LedgerTransaction.objects.select_for_update()
            .filter(
                organization_id=organization_id,
                currency=currency,
                payout__isnull=True,
                kind__in=PAYABLE_KINDS,
                occurred_at__lt=period_end,
            )
            .values_list("pk", flat=True)
        )
        if not ids:
            return None
        items = LedgerTransaction.objects.filter(pk__in=ids)
        totals = payout_totals(items)
        settings_row = BillingSettings.objects.filter(organization_id=organization_id).first()
        minimum = settings_row.minimum_payout if settings_row else ZERO
        if totals["net"] <= 0 or totals["net"] < minimum:
            return None
        previous = (
            Payout.objects.filter(organization_id=organization_id, currency=currency)
            .order_by("-period_end")
            .first()
        )
        first_item = items.order_by("occurred_at").values_list("occurred_at", flat=True).first()
        assert first_item is not None  # `ids` is not empty
        period_start = previous.period_end if previous else first_item
        reference = f"PO-{organization_id}-{currency}-{period_end:%Y%m%d}"
        if Payout.objects.filter(reference=reference).exists():
            # Another period of it ended on that day too: its zone changed (a location in another
            # zone made it UTC), so the midnights moved. The boundary's UTC time tells them apart.
            reference += f"-{period_end.astimezone(UTC):%H%M}"
        payout = Payout.objects.create(
            organization_id=organization_id,
            currency=currency,
            period_start=min(period_start, first_item),
            period_end=period_end,
            reference=reference,
            **totals,
        )
        items.update(payout=payout)
        Payout.objects.filter(
            rolled_into__isnull=True,
            status=Payout.Status.FAILED,
            organization_id=organization_id,
            currency=currency,
        ).exclude(pk=payout.pk).update(rolled_into=payout)
        ledger.post(
            key=f"payout:{payout.reference}",
            kind=LedgerTransaction.Kind.PAYOUT,
            organization_id=organization_id,
            currency=currency,
            amount=payout.net,
            occurred_at=period_end,
            for_payout=payout,
            memo=f"Payout {payout.reference}",
        )
        return payout


def payouts_run(*, now: datetime | None = None) -> list[Payout]:
    """Create the due payout of every organization and currency with unpaid movements."""
    now = now or timezone.now()
    created = []
    pairs = (
        LedgerTransaction.objects.filter(payout__isnull=True, kind__in=PAYABLE_KINDS)
        .values_list("organization_id", "currency")
        .distinct()
        .order_by()
    )
    for organization_id, currency in list(pairs):
        settings_row = BillingSettings.objects.filter(organization_id=organization_id).first()
        period = settings_row.payout_period if settings_row else BillingSettings.Period.MONTHLY
        payout = payout_create(
            organization_id=organization_id,
            currency=currency,
            period_end=period_end_for(period, now, organization_zone(organization_id)),
        )
        if payout is not None:
            created.append(payout)
    return created
