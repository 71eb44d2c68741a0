"""Hosts' payout accounts (Stripe Connect, Express accounts with hosted onboarding).

The processor's onboarding page collects the bank account and identity: this product never
sees them. We keep the account id and whether payouts are enabled, read from the processor
on return and kept true by the `account.updated` webhook. Gateway calls run outside any
database transaction (call, then record).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from .gateways import get_gateway
from .models import (
    BillingSettings,
    LedgerTransaction,
    Payment,
    Payout,
    ReconciliationImport,
    ReconciliationIssue,
)
from .reconciliation import (
    ProcessorPayout,
    compare_processor_payout,
    match_processor_payouts,
    processor_payout,
)
from .services.payouts import expected_payouts, payout_mark_failed, payout_mark_paid


def payout_account_onboarding(
    *, organization_id: int, email: str, country: str, return_url: str, refresh_url: str
) -> str:
    """Return the processor's onboarding link for the organization, creating its account once."""
    settings_row, _ = BillingSettings.objects.get_or_create(organization_id=organization_id)
    account = settings_row.payout_account_id
    gateway = get_gateway()
    if not account:
        # The key is the organization: a double click creates one account, not two.
        account = gateway.connect_account_create(
            email=email, country=country, idempotency_key=f"payout-account-{organization_id}"
        )
        with transaction.atomic():
            row = BillingSettings.objects.select_for_update().get(pk=settings_row.pk)
            if not row.payout_account_id:
                row.payout_account_id = account
                row.save(update_fields=["payout_account_id"])
            account = row.payout_account_id
    return gateway.connect_onboarding_link(
        account=account, refresh_url=refresh_url, return_url=return_url
    )


def payout_account_refresh(*, organization_id: int) -> BillingSettings | None:
    """Read from the processor whether the account can receive payouts, and record it."""
    row = BillingSettings.objects.filter(organization_id=organization_id).first()
    if row is None or not row.payout_account_id:
        return row
    ready = get_gateway().connect_account_ready(row.payout_account_id)
    BillingSettings.objects.filter(pk=row.pk).update(
        payout_account_ready=ready, payout_account_checked_at=timezone.now()
    )
    row.refresh_from_db()
    return row


# -- payouts reconciled against the processor's payout reports ------------------------------------

RECONCILE_LOOKBACK_DAYS = 35


def _stripe_list(service: Any, params: dict[str, Any], account: str) -> list[dict[str, Any]]:
    """Every object of a Stripe list endpoint (cursor pages of 100), as plain dicts."""
    items: list[dict[str, Any]] = []
    params = {**params, "limit": 100}
    while True:
        page = service.list(params=params, options={"stripe_account": account})
        data = [obj.to_dict() if hasattr(obj, "to_dict") else dict(obj) for obj in page.data]
        items += data
        if not page.has_more or not data:
            return items
        params["starting_after"] = data[-1]["id"]


def processor_payouts_fetch(
    *, account: str, since: datetime, gateway: Any = None
) -> list[ProcessorPayout]:
    """Read the connected account's payouts arriving since `since`, each with the balance
    transactions it paid out (Stripe: GET /v1/payouts, GET /v1/balance_transactions?payout=…)."""
    from .gateways import StripeGateway

    gateway = gateway or get_gateway()
    if not isinstance(gateway, StripeGateway):
        raise ValueError(
            "Payout reports come from Stripe: set PAYMENT_GATEWAY=stripe. The sandbox pays out nothing."
        )
    v1 = gateway.client.v1
    payouts = _stripe_list(v1.payouts, {"arrival_date": {"gte": int(since.timestamp())}}, account)
    return [
        processor_payout(
            p,
            _stripe_list(
                v1.balance_transactions, {"payout": p["id"], "expand": ["data.source"]}, account
            ),
        )
        for p in payouts
    ]


def _payments_of(payouts: list[Payout]) -> dict[str, dict[str, Decimal]]:
    """Our payout reference → {PaymentIntent id: amount captured} of the sessions it paid out."""
    result: dict[str, dict[str, Decimal]] = {p.reference: {} for p in payouts}
    rows = LedgerTransaction.objects.filter(
        payout__in=payouts, kind=LedgerTransaction.Kind.GUEST_CHARGE, session__isnull=False
    ).values_list("payout__reference", "session_id")
    by_session: dict[int, str] = {session_id: reference for reference, session_id in rows}
    for payment in Payment.objects.filter(session_id__in=list(by_session)).only(
        "reference", "amount_captured", "session_id"
    ):
        result[by_session[payment.session_id]][payment.reference] = payment.amount_captured  # type: ignore[index]
    return result


def payouts_reconcile_with_processor(
    *, organization_id: int, now: datetime | None = None, gateway: Any = None
) -> ReconciliationImport:
    """Reconcile an organization's payouts of the last weeks against Stripe's payouts to its
    connected account: matched ones are marked paid, failed ones failed (rolled into the next), and
    every difference is recorded in words (shown on the payout's page and in admin)."""

    now = now or timezone.now()
    settings_row = BillingSettings.objects.filter(organization_id=organization_id).first()
    account = settings_row.payout_account_id if settings_row else ""
    record = ReconciliationImport.objects.create(
        organization_id=organization_id,
        filename=f"Stripe payouts of {account or 'no account'}"[:200],
        content="",
        status=ReconciliationImport.Status.RUNNING,
    )
    try:
        if not account:
            raise ValueError("This organization has no payout account at Stripe yet.")
        # The processor is read first, outside any transaction (call, then record).
        theirs = processor_payouts_fetch(
            account=account, since=now - timedelta(days=RECONCILE_LOOKBACK_DAYS), gateway=gateway
        )
    except Exception as exc:
        ReconciliationImport.objects.filter(pk=record.pk).update(
            status=ReconciliationImport.Status.FAILED,
            error=str(exc)[:2000],
            finished_at=timezone.now(),
        )
        record.refresh_from_db()
        return record
    ours = list(
        Payout.objects.filter(
            organization_id=organization_id,
            period_end__gte=now - timedelta(days=RECONCILE_LOOKBACK_DAYS * 2),
        )
    )
    by_reference = {p.reference: p for p in ours}
    payments_of = _payments_of(ours)
    expected = expected_payouts(ours)
    matches = match_processor_payouts(theirs, payments_of)
    with transaction.atomic():
        matched = 0
        for payout in theirs:
            reference = matches.get(payout.id)
            if reference is None:
                ReconciliationIssue.objects.create(
                    reconciliation=record,
                    kind=ReconciliationIssue.Kind.UNKNOWN_PAYOUT,
                    reported_payout_id=payout.id,
                    reported_amount=payout.amount,
                    explanation=f"Stripe payout {payout.id} ({payout.currency} {payout.amount:.2f}, {payout.status}) "
                    "contains none of our payments: a manual payout or one from before this product.",
                )
                continue
            ours_row = by_reference[reference]
            finding = compare_processor_payout(expected[reference], payments_of[reference], payout)
            if finding.kind == "failed":
                payout_mark_failed(
                    payout=ours_row, reason=f"Stripe: {payout.failure or payout.status}"
                )
            elif finding.kind == "matched" and payout.status == "paid":
                payout_mark_paid(payout=ours_row)
                matched += 1
            if finding.kind != "matched":
                ReconciliationIssue.objects.create(
                    reconciliation=record,
                    payout=ours_row,
                    kind=finding.kind,
                    reported_payout_id=payout.id,
                    expected_amount=finding.expected_amount,
                    reported_amount=finding.reported_amount,
                    explanation=finding.explanation,
                )
        ReconciliationImport.objects.filter(pk=record.pk).update(
            content=json.dumps(
                [
                    {
                        "id": p.id,
                        "amount": str(p.amount),
                        "currency": p.currency,
                        "status": p.status,
                        "transactions": len(p.transactions),
                    }
                    for p in theirs
                ]
            ),
            rows=len(theirs),
            matched=matched,
            status=ReconciliationImport.Status.DONE,
            finished_at=timezone.now(),
        )
    record.refresh_from_db()
    return record
