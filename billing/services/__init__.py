"""Billing's writes, the app's public face: other apps import what they need from here
(`from billing.services import session_cost`), never from the modules below, which may move.
Inside billing, code imports the module that owns the write. One module per job:

- `sessions`: a session's facts and cost; the SessionCharge written (`session_price`).
- `settlement`: the pricing sweep, and guest payments released once a hold is lifted or waived.
- `payments`: guest payments: hold, authorization, ceiling, settle, release.
- `refunds`: refunds through the gateway, the ledger and the payer's email.
- `payouts`: payout totals, runs and outcomes (paid, failed), what reconciliation expects.
- `reconciliation`: an imported payout report run against our payouts.
- `rates`: rates, billing settings, the seller's details.
- `subscriptions`: subscriptions started, cancelled and collected from a saved card.

They import one another one way only (sessions -> subscriptions; payments -> sessions;
settlement -> sessions, payments; reconciliation -> payouts).
"""

from .payments import (
    guest_hold_amount,
    guest_payment_authorized,
    guest_payment_record,
    guest_payment_release,
    guest_payment_settle,
    guest_session_ceiling,
    holds_unrecorded_release,
    payment_attach_session,
)
from .payouts import (
    PAYABLE_KINDS,
    expected_payouts,
    payout_create,
    payout_mark_failed,
    payout_mark_paid,
    payout_totals,
    payouts_run,
)
from .rates import billing_settings_for, rate_save, rate_tax_mode_check, seller_details_set
from .reconciliation import reconciliation_create, reconciliation_run
from .refunds import refund_email, refund_issue
from .sessions import (
    RETRY_WINDOW,
    ZERO,
    CostAndContext,
    rate_terms,
    session_cost,
    session_cost_explained,
    session_facts,
    session_price,
    sessions_price,
    signature_hold,
    signed_energy,
)
from .settlement import sessions_price_missing, settlement_hold_waive, settlements_released
from .subscriptions import (
    SUBSCRIPTION_CHARGE_LEASE,
    SUBSCRIPTION_RETRY_DELAYS,
    month_bounds,
    subscription_cancel,
    subscription_cancel_ends_at,
    subscription_email_set,
    subscription_invoice_charge,
    subscription_payment_method_set,
    subscription_start,
    subscription_subscribe,
    subscriptions_collect,
)

__all__ = [
    "CostAndContext",
    "PAYABLE_KINDS",
    "RETRY_WINDOW",
    "SUBSCRIPTION_CHARGE_LEASE",
    "SUBSCRIPTION_RETRY_DELAYS",
    "ZERO",
    "billing_settings_for",
    "expected_payouts",
    "guest_hold_amount",
    "guest_payment_authorized",
    "guest_payment_record",
    "guest_payment_release",
    "guest_payment_settle",
    "guest_session_ceiling",
    "holds_unrecorded_release",
    "month_bounds",
    "payment_attach_session",
    "payout_create",
    "payout_mark_failed",
    "payout_mark_paid",
    "payout_totals",
    "payouts_run",
    "rate_save",
    "rate_tax_mode_check",
    "rate_terms",
    "reconciliation_create",
    "reconciliation_run",
    "refund_email",
    "refund_issue",
    "seller_details_set",
    "session_cost",
    "session_cost_explained",
    "session_facts",
    "session_price",
    "sessions_price",
    "sessions_price_missing",
    "settlement_hold_waive",
    "settlements_released",
    "signature_hold",
    "signed_energy",
    "subscription_cancel",
    "subscription_cancel_ends_at",
    "subscription_email_set",
    "subscription_invoice_charge",
    "subscription_payment_method_set",
    "subscription_start",
    "subscription_subscribe",
    "subscriptions_collect",
]
