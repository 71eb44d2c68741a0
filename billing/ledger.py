"""The double-entry ledger: every money movement is a balanced, idempotent transaction.

Accounts (debit positive, credit negative; each transaction's entries sum to zero):
  processor:<CUR>          the platform's balance at the payment processor (asset)
  host:<org id>:<CUR>      what the platform owes the host organization (liability)
  platform_revenue:<CUR>   platform fees earned
A guest charge, subscription fee or roaming charge debits processor and credits the host; the processing fee, the platform
fee, charger licenses, refunds and payouts debit the host; a failed payout credits it back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from .models import LedgerEntry, LedgerTransaction


class UnbalancedTransaction(ValueError):
    pass


def host_account(organization_id: int, currency: str) -> str:
    return f"host:{organization_id}:{currency.upper()}"


def processor_account(currency: str) -> str:
    return f"processor:{currency.upper()}"


def platform_account(currency: str) -> str:
    return f"platform_revenue:{currency.upper()}"


def entries_for(
    kind: str, *, organization_id: int, currency: str, amount: Decimal
) -> list[tuple[str, Decimal]]:
    """Return the balanced entries of a movement of `kind` and size `amount` (positive)."""
    host, processor, platform = (
        host_account(organization_id, currency),
        processor_account(currency),
        platform_account(currency),
    )
    K = LedgerTransaction.Kind
    pairs = {
        K.GUEST_CHARGE: (processor, host),
        K.PROCESSING_FEE: (host, processor),
        K.PLATFORM_FEE: (host, platform),
        K.REFUND: (host, processor),
        K.PAYOUT: (host, processor),
        K.PAYOUT_FAILED: (processor, host),
        K.SUBSCRIPTION_FEE: (processor, host),
        K.LICENSE_FEE: (host, platform),
        # The eMSP organization collects it; what it owes the partner CPO is settled outside.
        K.ROAMING_CHARGE: (processor, host),
    }
    debit, credit = pairs[K(kind)]
    return [(debit, amount), (credit, -amount)]


def post(
    *,
    key: str,
    kind: str,
    organization_id: int,
    currency: str,
    amount: Decimal,
    occurred_at: datetime,
    session_id: int | None = None,
    payment: Any = None,
    refund: Any = None,
    for_payout: Any = None,
    memo: str = "",
) -> tuple[LedgerTransaction, bool]:
    """Record one movement once. Returns (transaction, created); a replayed key changes nothing."""
    existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    if amount < 0:
        raise ValueError("Ledger amounts are positive; the kind gives the direction.")
    entries = entries_for(kind, organization_id=organization_id, currency=currency, amount=amount)
    if sum(value for _, value in entries) != 0:
        raise UnbalancedTransaction(key)
    try:
        with transaction.atomic():
            txn = LedgerTransaction.objects.create(
                idempotency_key=key,
                kind=kind,
                organization_id=organization_id,
                currency=currency.upper(),
                session_id=session_id,
                payment=payment,
                refund=refund,
                for_payout=for_payout,
                amount=amount,
                memo=memo[:300],
                occurred_at=occurred_at,
            )
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(transaction=txn, account=account, amount=value)
                    for account, value in entries
                ]
            )
    except IntegrityError:
        # A concurrent replay won the race: same key, same movement.
        return LedgerTransaction.objects.get(idempotency_key=key), False
    return txn, True
