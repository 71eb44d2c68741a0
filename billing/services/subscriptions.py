"""Subscriptions: started and cancelled, and their monthly fee collected from a saved card
(retries, leases, invoices emailed)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from backoffice.formatting import zone_or_utc
from backoffice.resend import send_each_once

from .. import ledger
from ..gateways import GatewayError, get_gateway
from ..models import (
    LedgerTransaction,
    Payment,
    Subscription,
    SubscriptionInvoice,
    SubscriptionPlan,
)
from ..payout_schedule import MONTHLY, next_period_end, period_end_for

if TYPE_CHECKING:
    from authorization.models import Token

logger = logging.getLogger(__name__)


def month_bounds(at: datetime, zone: tzinfo = UTC) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month holding `at` in `zone`: from midnight on its 1st there
    to midnight on the next 1st (a plan's months are its location's, plan_zone)."""
    return period_end_for(MONTHLY, at, zone), next_period_end(MONTHLY, at, zone)


def plan_zone(plan: SubscriptionPlan) -> ZoneInfo:
    """Where a plan's months are counted: its location's time zone (UTC when it has none)."""
    return zone_or_utc(plan.property.timezone)


@transaction.atomic
def subscription_start(
    *, plan: SubscriptionPlan, email: str, token: Token | None = None, now: datetime | None = None
) -> Subscription:
    if not plan.active:
        raise ValidationError("This plan is no longer offered.")
    now = now or timezone.now()
    # The plan's row is locked until the caller's transaction ends: a second start of the same
    # subscription at once (a double click) waits and then finds the first.
    SubscriptionPlan.objects.select_for_update(no_key=True).filter(pk=plan.pk).values_list(
        "pk", flat=True
    ).first()
    existing = Subscription.objects.filter(
        plan=plan, email__iexact=email, status=Subscription.Status.ACTIVE
    ).first()
    if existing is not None:
        return existing
    return Subscription.objects.create(
        plan=plan, email=email.strip().lower(), token=token, started_at=now
    )


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, now: datetime | None = None) -> Subscription:
    """Cancel: no further monthly fees; the benefits last until the current month ends."""
    now = now or timezone.now()
    subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if subscription.status == Subscription.Status.CANCELLED:
        return subscription
    subscription.status = Subscription.Status.CANCELLED
    subscription.cancelled_at = now
    subscription.ends_at = subscription_cancel_ends_at(subscription, now)
    subscription.save(update_fields=["status", "cancelled_at", "ends_at"])
    return subscription


def subscription_cancel_ends_at(subscription: Subscription, now: datetime) -> datetime:
    """When a plan cancelled at `now` ends: the benefits last to the end of the paid period (the
    month already collected), else to the end of this month (shown before an agent confirms)."""
    paid_until = subscription.paid_until
    if paid_until and paid_until > now:
        return paid_until
    return month_bounds(now, plan_zone(subscription.plan))[1]


# A declined monthly fee is tried again after these delays (then the invoice is reported failed).
SUBSCRIPTION_RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))

# How long a claimed invoice is left to the run charging it. A run that dies mid-call, or a
# charge whose answer was lost, is taken up again after this with the same attempt and so the
# same idempotency key: the processor answers with the first charge instead of charging twice
# (Stripe keeps keys for 24 hours, far longer than this).
SUBSCRIPTION_CHARGE_LEASE = timedelta(minutes=15)

# Stripe keeps an idempotency key at least 24 hours, then may forget it: a retry after that is a
# new charge. A charge left without an answer this long is not asked again but reconciled.
SUBSCRIPTION_UNANSWERED_GIVE_UP = timedelta(hours=23)
UNANSWERED_TEXT = (
    "The payment processor did not answer for a day, so this month is not charged again. Whether "
    "the first try went through is checked with the processor by support."
)


def _unanswered_too_long(invoice: SubscriptionInvoice, now: datetime) -> bool:
    """Give the invoice up for reconciliation (row locked by the caller) when its charge has been
    without an answer for SUBSCRIPTION_UNANSWERED_GIVE_UP; True if it was."""
    since = invoice.unanswered_since
    if since is None or now - since < SUBSCRIPTION_UNANSWERED_GIVE_UP:
        return False
    invoice.status, invoice.next_attempt_at = SubscriptionInvoice.Status.FAILED, None
    invoice.last_error = UNANSWERED_TEXT
    invoice.save(update_fields=["status", "next_attempt_at", "last_error"])
    logger.error(
        "Subscription invoice %s: no answer from the processor since %s; not charged again, "
        "reconcile with the processor's payments (metadata invoice=%s)",
        invoice.pk,
        since,
        invoice.pk,
    )
    return True


def subscription_subscribe(
    *,
    plan: SubscriptionPlan,
    email: str,
    customer_ref: str,
    payment_method_ref: str,
    now: datetime | None = None,
) -> Subscription:
    """Start a plan paid by a saved card: the first month (to the end of this calendar month) is
    charged at once; a refused card starts nothing and raises ValidationError with the reason."""
    now = now or timezone.now()
    if not payment_method_ref:
        raise ValidationError("Save a card first: the monthly fee is charged to it.")
    with transaction.atomic():
        subscription = subscription_start(plan=plan, email=email, now=now)
        if subscription.payment_method_ref and subscription.paid_until:
            return subscription  # already subscribed and paid
        if subscription.invoices.filter(
            status__in=(SubscriptionInvoice.Status.DUE, SubscriptionInvoice.Status.RETRYING)
        ).exists():
            # A first month already being charged (a second click at once, or an answer the
            # processor never gave): charging another invoice could take the month twice.
            raise ValidationError(
                "Your first month is already being charged: the receipt, or the card's refusal, "
                "comes by email in a moment."
            )
        subscription.customer_ref, subscription.payment_method_ref = (
            customer_ref,
            payment_method_ref,
        )
        subscription.save(update_fields=["customer_ref", "payment_method_ref"])
        invoice = _invoice_for(subscription, start=now)
    invoice = subscription_invoice_charge(invoice_id=invoice.pk, now=now)
    if invoice.status == SubscriptionInvoice.Status.DUE and invoice.attempts == 0:
        # The processor's answer was lost: the card may have been charged. Nothing is cancelled;
        # the collection run asks again with the same key and emails the receipt or the refusal.
        raise ValidationError(
            "The payment processor did not answer. We will confirm the charge within "
            f"{SUBSCRIPTION_CHARGE_LEASE.seconds // 60} minutes and email you."
        )
    if invoice.status != SubscriptionInvoice.Status.PAID:
        with transaction.atomic():
            Subscription.objects.filter(pk=subscription.pk).update(
                status=Subscription.Status.CANCELLED, cancelled_at=now, ends_at=now
            )
            SubscriptionInvoice.objects.filter(pk=invoice.pk).update(
                status=SubscriptionInvoice.Status.FAILED, next_attempt_at=None
            )
        raise ValidationError(f"The card was not charged: {invoice.last_error}")
    subscription.refresh_from_db()
    return subscription


def _invoice_for(subscription: Subscription, *, start: datetime) -> SubscriptionInvoice:
    invoice, _ = SubscriptionInvoice.objects.get_or_create(
        subscription=subscription,
        period_start=start,
        defaults={
            "period_end": month_bounds(start, plan_zone(subscription.plan))[1],
            "amount": subscription.plan.monthly_fee,
            "currency": subscription.plan.property.currency,
            "next_attempt_at": start,
        },
    )
    return invoice


def subscription_invoice_charge(
    *, invoice_id: int, now: datetime | None = None
) -> SubscriptionInvoice:
    """Charge one invoice to the subscription's saved card, once per attempt. Paid: a Payment,
    the ledger's subscription fee and a receipt email. Refused: retried after the next delay
    of SUBSCRIPTION_RETRY_DELAYS, then failed; the driver is told each time."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = (
            SubscriptionInvoice.objects.select_for_update()
            .select_related("subscription__plan__property")
            .get(pk=invoice_id)
        )
        if invoice.status in (SubscriptionInvoice.Status.PAID, SubscriptionInvoice.Status.FAILED):
            return invoice
        if invoice.next_attempt_at is None or invoice.next_attempt_at > now:
            return invoice  # another run holds it, or its retry time has not come
        if _unanswered_too_long(invoice, now):
            return invoice
        invoice.next_attempt_at = (
            now + SUBSCRIPTION_CHARGE_LEASE
        )  # claimed: a concurrent sweep skips it
        invoice.save(update_fields=["next_attempt_at"])
    attempt = invoice.attempts + 1  # counted once the processor has answered
    subscription = invoice.subscription
    org_id = subscription.plan.property.organization_id
    if invoice.amount <= 0:
        result_ok, reference, error, last4, answered = True, f"free-{invoice.pk}", "", "", True
    else:
        gateway = get_gateway()
        try:
            last4 = gateway.payment_method_get(subscription.payment_method_ref).last4
        except GatewayError:
            last4 = ""
        # One key per attempt: a retry after a decline must reach the card again.
        result = gateway.charge_saved(
            amount=invoice.amount,
            currency=invoice.currency,
            customer=subscription.customer_ref,
            payment_method=subscription.payment_method_ref,
            idempotency_key=f"subscription-invoice:{invoice.pk}:{attempt}",
            metadata={"subscription": str(subscription.pk), "invoice": str(invoice.pk)},
            description=f"{subscription.plan.name} {invoice.period_start:%Y-%m}",
        )
        result_ok, reference, error, answered = (
            result.ok,
            result.reference,
            result.decline_reason,
            result.answered,
        )
    if not answered:
        # Charged or not is unknown: the lease brings it back with this attempt's key.
        SubscriptionInvoice.objects.filter(pk=invoice.pk, unanswered_since__isnull=True).update(
            unanswered_since=now
        )
        logger.warning(
            "Subscription invoice %s: %s; asked again after %s with the same key",
            invoice.pk,
            error,
            SUBSCRIPTION_CHARGE_LEASE,
        )
        return invoice
    with transaction.atomic():
        invoice = SubscriptionInvoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status in (SubscriptionInvoice.Status.PAID, SubscriptionInvoice.Status.FAILED):
            return invoice  # a run that took it over after the lease finished it
        invoice.attempts, invoice.unanswered_since = attempt, None
        if result_ok:
            payment = None
            if invoice.amount > 0:
                payment = Payment.objects.create(
                    organization_id=org_id,
                    email=subscription.email,
                    currency=invoice.currency,
                    amount_held=invoice.amount,
                    amount_captured=invoice.amount,
                    gateway=get_gateway().name,
                    reference=reference,
                    status=Payment.Status.CAPTURED,
                    card_last4=last4,
                    session_ref=f"subscription-invoice:{invoice.pk}",
                    settled_at=now,
                )
                ledger.post(
                    key=f"subscription-fee:{invoice.pk}",
                    kind=LedgerTransaction.Kind.SUBSCRIPTION_FEE,
                    organization_id=org_id,
                    currency=invoice.currency,
                    amount=invoice.amount,
                    occurred_at=now,
                    payment=payment,
                    memo=f"Subscription {subscription.pk} {invoice.period_start:%Y-%m}",
                )
            (
                invoice.status,
                invoice.paid_at,
                invoice.payment,
                invoice.last_error,
                invoice.next_attempt_at,
            ) = (SubscriptionInvoice.Status.PAID, now, payment, "", None)
            invoice.save()
            Subscription.objects.filter(pk=subscription.pk).update(paid_until=invoice.period_end)
            transaction.on_commit(lambda: _invoice_email(invoice.pk, receipt=True))
        else:
            invoice.last_error = (error or "The card was refused.")[:300]
            # This refusal is told once: sent below, or by a later run if the mail server fails.
            invoice.refused_at, invoice.refusal_sent_at = now, None
            if invoice.attempts <= len(SUBSCRIPTION_RETRY_DELAYS):
                invoice.status = SubscriptionInvoice.Status.RETRYING
                invoice.next_attempt_at = now + SUBSCRIPTION_RETRY_DELAYS[invoice.attempts - 1]
            else:
                invoice.status, invoice.next_attempt_at = SubscriptionInvoice.Status.FAILED, None
            invoice.save()
            logger.warning(
                "Subscription invoice %s refused (attempt %s): %s",
                invoice.pk,
                invoice.attempts,
                invoice.last_error,
            )
            invoice_id = invoice.pk
            transaction.on_commit(lambda: _refusals_send([invoice_id], now))
    return invoice


def _invoice_email(invoice_id: int, *, receipt: bool) -> bool:
    """Email the receipt or the refusal; False when the mail server did not take it."""
    invoice = SubscriptionInvoice.objects.select_related(
        "subscription__plan__property", "payment"
    ).get(pk=invoice_id)
    if not invoice.subscription.email:
        return True
    kind = "receipt" if receipt else "failed"
    body = render_to_string(
        f"billing/email_subscription_{kind}.txt",
        {"invoice": invoice, "plan": invoice.subscription.plan},
    )
    subject = (
        f"Receipt: {invoice.subscription.plan.name} {invoice.period_start:%B %Y}"
        if receipt
        else f"Your {invoice.subscription.plan.name} payment failed"
    )
    try:
        send_mail(subject, body, None, [invoice.subscription.email])
    except Exception:
        # The charge is done and booked: a mail server that is down must not turn it into an
        # error page or end the monthly run. An unsent receipt goes with a later run.
        logger.warning("Could not email invoice %s (%s)", invoice_id, kind, exc_info=True)
        return False
    if receipt:
        SubscriptionInvoice.objects.filter(pk=invoice_id).update(receipt_sent_at=timezone.now())
    return True


# A receipt not sent (mail down) is sent again by the runs of this long after the payment; it
# waits RECEIPT_RESEND_AFTER so that it never races the first sending.
RECEIPT_RESEND_WITHIN = timedelta(days=7)
RECEIPT_RESEND_AFTER = timedelta(minutes=10)


def _receipts_resend(now: datetime) -> None:
    unsent = (
        SubscriptionInvoice.objects.filter(
            status=SubscriptionInvoice.Status.PAID,
            receipt_sent_at__isnull=True,
            paid_at__gte=now - RECEIPT_RESEND_WITHIN,
            paid_at__lte=now - RECEIPT_RESEND_AFTER,
        )
        .exclude(subscription__email="")
        .values_list("pk", flat=True)
    )
    send_each_once(
        SubscriptionInvoice,
        unsent,
        field="receipt_sent_at",
        now=now,
        send=lambda invoice_id: _invoice_email(invoice_id, receipt=True),
    )


def _refusals_send(invoice_ids: list[int], now: datetime) -> int:
    """Email each refusal not yet sent, once (claimed first: a run at once sends nothing twice;
    given back when the mail server refuses, for a later run)."""
    return send_each_once(
        SubscriptionInvoice,
        invoice_ids,
        field="refusal_sent_at",
        now=now,
        send=lambda invoice_id: _invoice_email(invoice_id, receipt=False),
    )


def _refusals_resend(now: datetime) -> None:
    # Only while the refusal is still the news: an invoice paid meanwhile says so itself.
    unsent = (
        SubscriptionInvoice.objects.filter(
            status__in=(SubscriptionInvoice.Status.RETRYING, SubscriptionInvoice.Status.FAILED),
            refusal_sent_at__isnull=True,
            refused_at__gte=now - RECEIPT_RESEND_WITHIN,
            refused_at__lte=now - RECEIPT_RESEND_AFTER,
        )
        .exclude(subscription__email="")
        .values_list("pk", flat=True)
    )
    _refusals_send(list(unsent), now)


def subscriptions_collect(*, now: datetime | None = None) -> dict[str, int]:
    """The monthly run: open the next month's invoice of each active card-paid subscription whose
    paid period is over, and charge every invoice that is due or whose retry time has come."""
    now = now or timezone.now()
    opened = 0
    due_subscriptions = (
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, paid_until__lte=now)
        .exclude(payment_method_ref="")
        .select_related("plan__property")
    )
    for subscription in due_subscriptions:
        assert subscription.paid_until is not None
        with transaction.atomic():
            _, created = SubscriptionInvoice.objects.get_or_create(
                subscription=subscription,
                period_start=subscription.paid_until,
                defaults={
                    "period_end": month_bounds(
                        subscription.paid_until, plan_zone(subscription.plan)
                    )[1],
                    "amount": subscription.plan.monthly_fee,
                    "currency": subscription.plan.property.currency,
                    "next_attempt_at": subscription.paid_until,
                },
            )
        opened += int(created)
    counts = {"opened": opened, "paid": 0, "refused": 0, "unanswered": 0}
    due = SubscriptionInvoice.objects.filter(
        status__in=[SubscriptionInvoice.Status.DUE, SubscriptionInvoice.Status.RETRYING],
        next_attempt_at__lte=now,
    ).values_list("pk", flat=True)
    for invoice_id in list(due):
        before = (
            SubscriptionInvoice.objects.filter(pk=invoice_id)
            .values_list("attempts", flat=True)
            .first()
        )
        invoice = subscription_invoice_charge(invoice_id=invoice_id, now=now)
        if invoice.status == SubscriptionInvoice.Status.PAID:
            counts["paid"] += 1
        elif invoice.attempts == before:
            counts["unanswered"] += 1  # the lease brings it back
        else:
            counts["refused"] += 1
    _receipts_resend(now)
    _refusals_resend(now)
    return counts


def subscription_payment_method_set(*, customer_ref: str, payment_method_ref: str) -> int:
    """Charge the customer's active subscriptions (and their pending retries) to another saved card."""
    if not customer_ref:
        return 0
    return Subscription.objects.filter(
        customer_ref=customer_ref, status=Subscription.Status.ACTIVE
    ).update(payment_method_ref=payment_method_ref)


def subscription_email_set(*, customer_ref: str, email: str) -> int:
    """Send the customer's subscription receipts and notices to another (confirmed) address."""
    if not customer_ref:
        return 0
    return Subscription.objects.filter(customer_ref=customer_ref).update(email=email)


def plan_create(
    *,
    property_id: int,
    name: str,
    monthly_fee: Decimal,
    included_kwh: Decimal,
    energy_discount_percent: Decimal,
) -> SubscriptionPlan:
    """Offer a monthly plan at a location (the host's portal; support uses the admin). Its terms
    never change under its subscribers: new terms are a new plan, the old one stops (plan_stop)."""
    return SubscriptionPlan.objects.create(
        property_id=property_id,
        name=name.strip(),
        monthly_fee=monthly_fee,
        included_kwh=included_kwh,
        energy_discount_percent=energy_discount_percent,
    )


def plan_stop(*, plan: SubscriptionPlan) -> int:
    """Stop offering the plan: nobody new subscribes; its subscribers keep it until they cancel.
    Return how many hold it."""
    SubscriptionPlan.objects.filter(pk=plan.pk).update(active=False)
    return Subscription.objects.filter(plan=plan, status=Subscription.Status.ACTIVE).count()
