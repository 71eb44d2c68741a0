"""Guest payments: the hold recorded and authorized, the ceiling it pays for, the charge
posted to the ledger at settlement, the hold released."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from chargers.models import ChargingSession

from .. import ledger
from ..gateways import GatewayError, Intent, PaymentResult, get_gateway
from ..holds import Ceiling
from ..models import (
    BillingSettings,
    LedgerTransaction,
    Payment,
    Rate,
)
from ..money import round_money
from .sessions import rate_terms, session_price

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


def _platform_fee_percent(organization_id: int) -> Decimal:
    settings_row = BillingSettings.objects.filter(organization_id=organization_id).first()
    return settings_row.platform_fee_percent if settings_row else ZERO


def guest_payment_record(
    *,
    session_id: int | None,
    organization_id: int,
    amount_held: Decimal,
    currency: str,
    reference: str,
    email: str = "",
    session_ref: str = "",
    gateway: str | None = None,
    status: str = Payment.Status.AUTHORIZED,
) -> Payment:
    """Record a hold the guest app made through the gateway. Idempotent on `reference`.

    A hold the browser still has to confirm is recorded PENDING; the processor's webhook (or
    guest_payment_authorized after the browser returns) turns it AUTHORIZED.
    """
    payment, created = Payment.objects.get_or_create(
        reference=reference,
        defaults={
            "session_id": session_id,
            "organization_id": organization_id,
            "amount_held": round_money(amount_held, currency),
            "currency": currency.upper(),
            "email": email,
            "session_ref": session_ref,
            "gateway": gateway or get_gateway().name,
            "status": status,
        },
    )
    if not created and session_id and payment.session_id is None:
        payment.session_id = session_id
        payment.save(update_fields=["session"])
    return payment


def guest_payment_authorized(
    *, reference: str, amount_held: Decimal, card_last4: str = ""
) -> Payment | None:
    """Mark a PENDING hold AUTHORIZED after reading the intent from the processor (idempotent)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(reference=reference).first()
        if payment is None:
            return None
        if payment.status == Payment.Status.PENDING:
            payment.status = Payment.Status.AUTHORIZED
            payment.amount_held = round_money(amount_held, payment.currency)
            payment.card_last4 = card_last4[:4] or payment.card_last4
            payment.last_error = ""
            payment.save(update_fields=["status", "amount_held", "card_last4", "last_error"])
        return payment


def guest_session_ceiling() -> Ceiling:
    """The largest session a hold pays for (settings GUEST_SESSION_MAX_KWH, _HOURS, _IDLE_MINUTES):
    the guest page promises it, the hold and a terminal's preauthorization are its price, and
    guest.ceilings stops a session that reaches it."""
    from django.conf import settings

    from backoffice.env import env_float, env_int

    def setting(name: str, default: float) -> Decimal:
        value = getattr(settings, name, None)
        return Decimal(str(value if value is not None else env_float(name, default)))

    return Ceiling(
        kwh=setting("GUEST_SESSION_MAX_KWH", 60),
        hours=setting("GUEST_SESSION_MAX_HOURS", 4),
        idle_minutes=int(
            getattr(settings, "GUEST_SESSION_MAX_IDLE_MINUTES", None)
            or env_int("GUEST_SESSION_MAX_IDLE_MINUTES", 30)
        ),
    )


def guest_hold_amount(rate: Rate) -> Decimal:
    """The hold for a guest session at this rate, up to the configured session ceiling."""
    from ..holds import hold_amount

    return hold_amount(rate_terms(rate), guest_session_ceiling())


def payment_attach_session(*, payment: Payment, session_id: int) -> Payment:
    Payment.objects.filter(pk=payment.pk, session__isnull=True).update(session_id=session_id)
    payment.refresh_from_db()
    return payment


def _post_charge(
    payment: Payment,
    *,
    session: ChargingSession | None,
    amount: Decimal,
    rate: Rate | None,
    occurred_at: datetime,
) -> None:
    currency, org = payment.currency, payment.organization_id
    session_id = session.pk if session else None
    ledger.post(
        key=f"charge:{payment.reference}",
        kind=LedgerTransaction.Kind.GUEST_CHARGE,
        organization_id=org,
        currency=currency,
        amount=amount,
        occurred_at=occurred_at,
        session_id=session_id,
        payment=payment,
        memo=f"Guest charge for session {session.transaction_id if session else payment.session_ref}",
    )
    if rate is not None and amount > 0:
        fee = round_money(
            amount * rate.processing_fee_percent / 100 + rate.processing_fee_fixed, currency
        )
        fee = min(fee, amount)
        if fee > 0:
            ledger.post(
                key=f"processing-fee:{payment.reference}",
                kind=LedgerTransaction.Kind.PROCESSING_FEE,
                organization_id=org,
                currency=currency,
                amount=fee,
                occurred_at=occurred_at,
                session_id=session_id,
                payment=payment,
                memo=f"Processing fee {rate.processing_fee_percent}% + {rate.processing_fee_fixed} {currency}",
            )
    percent = _platform_fee_percent(org)
    if percent > 0 and amount > 0:
        fee = round_money(amount * percent / 100, currency)
        if fee > 0:
            ledger.post(
                key=f"platform-fee:{payment.reference}",
                kind=LedgerTransaction.Kind.PLATFORM_FEE,
                organization_id=org,
                currency=currency,
                amount=fee,
                occurred_at=occurred_at,
                session_id=session_id,
                payment=payment,
                memo=f"Platform fee {percent}%",
            )


def guest_payment_settle(*, payment: Payment, session: ChargingSession) -> Payment:
    """Capture min(cost, hold) for the finished session and book it in the ledger. Idempotent.

    Price (one transaction), then call the processor with no transaction open, then record
    (another). A cost of zero releases the hold instead. Raises GatewayError when the processor
    refuses; the payment stays held so the call can be retried (the capture's idempotency key
    makes a retry after a lost answer safe). A capture the webhook already recorded is booked.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.session_id is None:
            # Saved before pricing: the payer's email can hold a subscription at this location.
            # Also when released (its hold lapsed): the host's session then says nothing was
            # collected.
            payment.session = session
            payment.save(update_fields=["session"])
        if payment.status not in (Payment.Status.AUTHORIZED, Payment.Status.CAPTURED):
            return payment
        charge = session_price(session_id=session.pk)
    if charge is not None and charge.held:
        # Billing follows the signature: nothing is captured while the signed readings do not
        # verify (docs/metering.md); the sweep settles it once they do (settlements_released).
        logger.warning("Settlement of session %s held: %s", session.pk, charge.hold_reason)
        return payment
    total = charge.total if charge else ZERO
    if payment.status == Payment.Status.CAPTURED:
        amount = payment.amount_captured
    else:
        amount = min(total, payment.amount_held)
        if amount <= 0:
            return guest_payment_release(
                payment=payment, reason="Nothing to charge: the session cost 0."
            )
        taken = _capture(payment, amount)
        if taken is None:
            return _record_lapsed(payment)
        amount = taken
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == Payment.Status.RELEASED:
            return payment
        payment.amount_captured = amount
        payment.status = Payment.Status.CAPTURED
        payment.last_error = ""
        payment.settled_at = payment.settled_at or timezone.now()
        payment.save()
        # Idempotent keys: booking twice (a retry, the webhook first) posts nothing new.
        _post_charge(
            payment,
            session=session,
            amount=amount,
            rate=charge.rate if charge else None,
            occurred_at=session.stopped_at or payment.settled_at,
        )
    if amount < total:
        logger.warning(
            "Session %s cost %s but only %s was held", session.pk, total, payment.amount_held
        )
    return payment


HOLD_LAPSED = (
    "The hold on the card expired, or was canceled at the processor, before the session "
    "ended: nothing was charged."
)


# What the payment says (Payment.last_error, on its admin page) while the processor has not
# completed a capture or a release: the sweeps ask again with the same idempotency key.
NOT_ANSWERED = (
    "The payment processor did not complete the {what} (no answer, or another request with the "
    "same key still in progress). It is asked again with the same key: never done twice."
)
CAPTURED_NOT_RELEASED = (
    "The processor had already captured {amount} {currency} on this card, so the hold could "
    "not be released: refund it if nothing was owed."
)


def _intent_now(payment: Payment) -> Intent | None:
    """The intent as the processor has it now; None when it does not answer."""
    try:
        return get_gateway().hold_get(payment.reference)
    except GatewayError:
        return None  # not known: the sweep asks again


def _say(payment: Payment, text: str) -> None:
    Payment.objects.filter(pk=payment.pk).update(last_error=text[:300])


def _capture(payment: Payment, amount: Decimal) -> Decimal | None:
    """Capture `amount`; return what the processor took, None when the hold lapsed (the
    intent canceled, nothing taken: retrying could never capture it). A refused or unanswered
    capture (Stripe's 409: the same key's other request still in progress) reads the intent:
    already captured, by that request or one whose answer was lost, what it took is booked
    (the same key never captures twice); otherwise GatewayError and the payment stays held,
    saying why, for the sweep to ask again."""
    result = get_gateway().capture(
        payment.reference, amount, idempotency_key=f"capture:{payment.reference}"
    )
    if result.ok:
        return amount
    intent = _intent_now(payment)
    if intent is not None and intent.status == "canceled" and intent.amount_received == 0:
        return None
    if intent is not None and intent.status == "succeeded" and intent.amount_received > 0:
        if intent.amount_received != amount:
            logger.error(
                "Payment %s: %s captured at the processor, %s asked",
                payment.reference,
                intent.amount_received,
                amount,
            )
        return intent.amount_received
    text = result.decline_reason or "The capture failed."
    _say(payment, NOT_ANSWERED.format(what="capture") if not result.answered else text)
    raise GatewayError(text)


def _record_lapsed(payment: Payment) -> Payment:
    """Close a payment whose hold lapsed: released with the reason, nothing booked, so the guest
    session finishes (receipt: nothing charged) and the host's session says it was not collected."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status in (Payment.Status.PENDING, Payment.Status.AUTHORIZED):
            payment.status = Payment.Status.RELEASED
            payment.release_reason = HOLD_LAPSED[:200]
            payment.settled_at = payment.settled_at or timezone.now()
            payment.save(update_fields=["status", "release_reason", "settled_at"])
    logger.warning("Payment %s: the hold lapsed before the capture", payment.reference)
    return payment


# An intent in one of these states can still hold money, or come to: it is canceled.
OPEN_INTENT = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
)


def holds_unrecorded_release(*, guest_session_key: str) -> int:
    """Cancel the holds made for a guest session that were never recorded here (the processor's
    answer to creating one was lost, so nothing knows its id): found by the guest session's key
    in their metadata. Return how many; raises GatewayError while the processor fails."""
    gateway = get_gateway()
    released = 0
    for intent in gateway.holds_find(metadata_key="guest_session", value=guest_session_key):
        recorded = Payment.objects.filter(reference=intent.reference).exists()
        if recorded or intent.status not in OPEN_INTENT:
            continue
        result = gateway.release(intent.reference, idempotency_key=f"release:{intent.reference}")
        if not result.ok:
            raise GatewayError(result.decline_reason or "The hold could not be released.")
        released += 1
    return released


def guest_payment_release(*, payment: Payment, reason: str) -> Payment:
    """Release the whole hold (cancel the intent; no fee kept). Idempotent; a captured payment
    is left as it is. The processor is called with no transaction open."""
    payment.refresh_from_db()
    if payment.status not in (Payment.Status.PENDING, Payment.Status.AUTHORIZED):
        return payment
    result = get_gateway().release(
        payment.reference, idempotency_key=f"release:{payment.reference}"
    )
    if not result.ok:
        _release_refused(payment, result)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status in (
            Payment.Status.PENDING,
            Payment.Status.AUTHORIZED,
            Payment.Status.RELEASED,
        ):
            payment.status = Payment.Status.RELEASED
            payment.release_reason = (reason or "Released")[:200]
            payment.settled_at = payment.settled_at or timezone.now()
            payment.last_error = ""
            payment.save()
        return payment


def _release_refused(payment: Payment, result: PaymentResult) -> None:
    """A release refused or unanswered (Stripe's 409: the same key's other request still in
    progress): returns when the processor has the intent canceled (by that request, one whose
    answer was lost, or the hold lapsing), so it is recorded released; else raises
    GatewayError, the payment still held saying why (captured: refund it; unanswered: the sweep
    asks again with the same key)."""
    intent = _intent_now(payment)
    if intent is not None and intent.status == "canceled":
        return
    text = result.decline_reason or "The hold could not be released."
    if intent is not None and intent.status == "succeeded":
        _say(
            payment,
            CAPTURED_NOT_RELEASED.format(
                amount=round_money(intent.amount_received, payment.currency),
                currency=payment.currency,
            ),
        )
    else:
        _say(payment, NOT_ANSWERED.format(what="release") if not result.answered else text)
    raise GatewayError(text)
