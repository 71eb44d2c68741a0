"""Refunds: issued through the gateway, posted to the ledger, emailed to the payer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from .. import ledger
from ..gateways import GatewayError, RefundMade, get_gateway
from ..models import (
    LedgerTransaction,
    Payment,
    Refund,
    RefundHold,
    SessionCharge,
)
from ..money import exact_sum, round_money
from ..signals import refund_booked

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger(__name__)


class RefundUnanswered(GatewayError):
    """The processor's answer to a refund never came: it may have been made. Its hold stays (so
    nothing more is refunded meanwhile) and refunds_unanswered_settle books it once known."""


# The processor keeps an idempotency key at least 24 hours: within this a refund without an
# answer is asked again with its own key (made once, whatever happened to the first request);
# after it, the processor's list of the payment's refunds says whether it went through (the
# refund carries its key in its metadata).
REFUND_KEY_KEPT = timedelta(hours=23)


def unanswered_text(amount: Decimal, currency: str) -> str:
    return (
        "The payment processor did not answer, so whether "
        f"{round_money(amount, currency)} {currency} was refunded is not known yet. It is not "
        "refunded twice: the refund is asked again with the same key and shows here once the "
        "processor answers (within minutes when it is back). Do not issue it again."
    )


def _hold(
    payment_id: int,
    amount: Decimal,
    idempotency_key: str,
    *,
    reason: str = "",
    source: str = "",
    user: User | None = None,
    notify_payer: bool = True,
) -> bool:
    """Hold `amount` against what the payment can still give back, with its row locked: True
    when this call placed the hold, False when the same refund (its key) is already on its way.
    Raises ValidationError, in the words a person reads, when it cannot be refunded."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if RefundHold.objects.filter(idempotency_key=idempotency_key).exists():
            return False  # a replay of a refund under way: the processor's key answers it
        if payment.status != Payment.Status.CAPTURED:
            raise ValidationError({"amount": "Only charged payments can be refunded."})
        fresh = timezone.now() - timedelta(minutes=RefundHold.HOLD_MINUTES)
        pending = exact_sum(
            RefundHold.objects.filter(payment=payment)
            .filter(Q(created_at__gte=fresh) | Q(unanswered_since__isnull=False))
            .aggregate(total=Sum("amount"))["total"]
        )
        room = max(payment.refundable - pending, Decimal("0"))
        if amount > room:
            under_way = (
                f" ({round_money(pending, payment.currency)} {payment.currency} is being "
                "refunded right now by someone else)"
                if pending
                else ""
            )
            raise ValidationError(
                {
                    "amount": f"At most {round_money(room, payment.currency)} "
                    f"{payment.currency} can still be refunded{under_way}."
                }
            )
        RefundHold.objects.create(
            payment=payment,
            amount=amount,
            idempotency_key=idempotency_key,
            reason=reason[:300],
            source=source,
            created_by=user if user is not None and user.pk else None,
            notify_payer=notify_payer,
        )
        return True


def _release(held: bool, idempotency_key: str) -> None:
    if held:
        RefundHold.objects.filter(idempotency_key=idempotency_key).delete()


def refund_issue(
    *,
    payment: Payment,
    amount: Decimal,
    reason: str,
    source: str,
    user: User | None = None,
    idempotency_key: str,
    notify_payer: bool = True,
) -> Refund:
    """Give `amount` back to the guest; never more than was charged and not yet refunded.

    The payer is emailed the refund and what they paid net (refund_email), unless the caller
    sends its own confirmation (the support toolkit threads it on the ticket). Replaying the same
    idempotency key returns the first refund, moves no money and sends nothing.
    """
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {"reason": "Say why the refund is given (the guest sees it on the receipt)."}
        )
    amount = round_money(Decimal(amount), payment.currency)
    if amount <= 0:
        raise ValidationError({"amount": "Refund a positive amount."})
    # A refund of this payment whose answer was lost is settled first: booked if it was made,
    # so what is left to refund is known before another one is asked.
    refunds_unanswered_settle(payment_id=payment.pk)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing  # this very refund, whose answer was lost, has just been booked
    held = _hold(
        payment.pk,
        amount,
        idempotency_key,
        reason=reason,
        source=source,
        user=user,
        notify_payer=notify_payer,
    )
    # The processor with no transaction open; the key makes a concurrent replay of the same
    # refund return the first answer, and the hold keeps two refunds with their own keys from
    # giving back more than was charged together.
    try:
        result = get_gateway().refund(
            payment.reference, amount, idempotency_key=f"refund:{idempotency_key}"
        )
    except BaseException:
        _release(held, idempotency_key)
        raise
    if not result.answered:
        # Made or not is unknown: the hold stays and counts until the processor tells.
        RefundHold.objects.filter(
            idempotency_key=idempotency_key, unanswered_since__isnull=True
        ).update(unanswered_since=timezone.now())
        raise RefundUnanswered(unanswered_text(amount, payment.currency))
    if not result.ok:
        _release(held, idempotency_key)
        raise GatewayError(result.decline_reason or "The processor refused the refund.")
    return _book(
        payment_id=payment.pk,
        amount=amount,
        reason=reason,
        source=source,
        user=user,
        idempotency_key=idempotency_key,
        gateway_reference=result.reference,
        notify_payer=notify_payer,
    )


def _book(
    *,
    payment_id: int,
    amount: Decimal,
    reason: str,
    source: str,
    user: User | None,
    idempotency_key: str,
    gateway_reference: str,
    notify_payer: bool,
) -> Refund:
    """Record a refund the processor made: the row, the payment's refunded total, the ledger."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        RefundHold.objects.filter(idempotency_key=idempotency_key).delete()  # booked (below)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason=reason[:300],
            source=source,
            created_by=user,
            idempotency_key=idempotency_key,
            gateway_reference=gateway_reference,
        )
        booked = exact_sum(
            Refund.objects.filter(payment=payment).aggregate(total=Sum("amount"))["total"]
        )
        # The webhook may have recorded the processor's total first: never count a refund twice.
        payment.amount_refunded = max(payment.amount_refunded, booked)
        payment.save(update_fields=["amount_refunded"])
        ledger.post(
            key=f"refund:{idempotency_key}",
            kind=LedgerTransaction.Kind.REFUND,
            organization_id=payment.organization_id,
            currency=payment.currency,
            amount=amount,
            occurred_at=refund.created_at,
            session_id=payment.session_id,
            payment=payment,
            refund=refund,
            memo=f"Refund: {reason}"[:300],
        )
        refund_id = refund.pk
        if notify_payer and payment.email:
            transaction.on_commit(lambda: refund_email(refund_id))
        transaction.on_commit(lambda: _announce(refund_id, idempotency_key), robust=True)
        return refund


def _announce(refund_id: int, idempotency_key: str) -> None:
    """Tell the apps above billing that a refund was booked (once: only a new row is
    announced). Sent after the commit with robust=True: a receiver that fails is logged there
    (django.db.backends), the refund stays booked."""
    refund_booked.send(sender=Refund, refund_id=refund_id, idempotency_key=idempotency_key)


def refunds_unanswered_settle(*, payment_id: int | None = None, now: datetime | None = None) -> int:
    """Settle the refunds whose answer was lost (of one payment, or all); return how many were
    booked. Within REFUND_KEY_KEPT each is asked again with its own idempotency key: the processor
    answers with the refund it made, or makes it now, never a second one. After it, the key may be
    forgotten, so nothing is asked: the processor's own list of the payment's refunds says whether
    it was made (the refund carrying the key in its metadata, and its status), not our refunded
    total, which only the charge.refunded webhooks we happened to receive have moved.
    Called with no transaction open."""
    now = now or timezone.now()
    holds = RefundHold.objects.filter(unanswered_since__isnull=False).select_related("payment")
    if payment_id is not None:
        holds = holds.filter(payment_id=payment_id)
    booked = 0
    for hold in list(holds):
        if now - hold.created_at < REFUND_KEY_KEPT:
            reference = _asked_again(hold)
        else:
            reference = _found_made(hold)
        if reference is None:
            continue
        payment = hold.payment
        _book(
            payment_id=payment.pk,
            amount=hold.amount,
            reason=hold.reason or "Refund",
            source=hold.source or Refund.Source.SUPPORT,
            user=hold.created_by,
            idempotency_key=hold.idempotency_key,
            gateway_reference=reference,
            notify_payer=hold.notify_payer,
        )
        booked += 1
    return booked


def _not_made(hold: RefundHold, why: str) -> None:
    """The refund was not made: its hold goes (the person may refund again)."""
    logger.warning(
        "Refund %s of payment %s not made: %s", hold.idempotency_key, hold.payment.reference, why
    )
    RefundHold.objects.filter(pk=hold.pk).delete()


def _asked_again(hold: RefundHold) -> str | None:
    """Ask the refund again with its own key: its reference when made (now or before), None
    when still unanswered or refused (then its hold goes)."""
    result = get_gateway().refund(
        hold.payment.reference, hold.amount, idempotency_key=f"refund:{hold.idempotency_key}"
    )
    if not result.answered:
        return None  # still no answer: asked again by the next run
    if not result.ok:
        _not_made(hold, f"refused when asked again: {result.decline_reason}")
        return None
    return result.reference


def _found_made(hold: RefundHold) -> str | None:
    """After REFUND_KEY_KEPT: read the payment's refunds from the processor. The one carrying
    the hold's key was made unless it failed or was canceled; none carrying it, it was never
    made. None (and the hold kept) while the processor does not answer."""
    payment = hold.payment
    key = f"refund:{hold.idempotency_key}"
    try:
        made = get_gateway().refunds_list(payment.reference)
    except GatewayError:
        return None  # read again by the next run
    mine = [r for r in made if r.key == key] or _unkeyed_match(hold, made)
    if not mine:
        _not_made(hold, "no answer for a day and no refund with its key at the processor")
        return None
    if not any(r.made for r in mine):
        _not_made(hold, f"the processor's refund {mine[0].reference} is {mine[0].status}")
        return None
    return next(r for r in mine if r.made).reference


def _unkeyed_match(hold: RefundHold, made: list[RefundMade]) -> list[RefundMade]:
    """A refund asked before refunds carried their key (or made in the processor's dashboard):
    one of the hold's amount, made since the hold, booked here under no refund. Taken as this
    one: booking money that did go back is safer than refunding it a second time."""
    booked = set(
        Refund.objects.filter(payment_id=hold.payment_id).values_list(
            "gateway_reference", flat=True
        )
    )
    since = int(hold.created_at.timestamp()) - 60
    return [
        r
        for r in made
        if not r.key
        and r.made
        and r.amount == hold.amount
        and r.created >= since
        and r.reference not in booked
    ][:1]


def overcharges_refund(session_ids: Iterable[int]) -> int:
    """Give back what a payment captured above its session's final cost; return how many.

    A guest is charged when the session ends. When we closed it on our estimate of its stop (the
    charger never sent its StopTransaction, or a newer start superseded it) and the charger's own
    stop arrives later, the session is priced again; should it cost less than was charged, the
    difference goes back to the card at once, emailed like any refund and listed on the receipt
    (which keeps what it said when issued). One such refund per payment (its key); a cost above
    the charge is shown to the host as not collected (billing.receivers `short`). Called after
    pricing, with no transaction open (it calls the processor)."""
    ids = list(session_ids)
    charges = {
        charge.session_id: charge
        for charge in SessionCharge.objects.filter(session_id__in=ids, final=True, held=False)
    }
    refunded = 0
    for payment in Payment.objects.filter(
        session_id__in=list(charges), status=Payment.Status.CAPTURED
    ):
        charge = charges.get(payment.session_id or 0)
        if charge is None:
            continue
        over = round_money(payment.amount_captured - charge.total, payment.currency)
        amount = min(over, payment.refundable)
        key = f"final-cost:{payment.pk}"
        done = Refund.objects.filter(idempotency_key=key).exists()
        if charge.currency != payment.currency or amount <= 0 or done:
            continue
        cur = payment.currency
        reason = (
            f"The session's final cost is {round_money(charge.total, cur)} {cur}, less than the "
            f"{round_money(payment.amount_captured, cur)} {cur} charged: the charger's own meter "
            "reading came after the charge."
        )
        try:
            refund_issue(
                payment=payment,
                amount=amount,
                reason=reason,
                source=Refund.Source.FINAL_COST,
                idempotency_key=key,
            )
        except (GatewayError, ValidationError):
            # Left for a person: the host sees the payment and its session (refund by hand).
            logger.exception(
                "Refunding %s above the final cost of payment %s failed", over, payment
            )
            continue
        refunded += 1
    return refunded


def refund_email(refund_id: int) -> None:
    """Tell the payer what was refunded, why, and what they paid net (best effort: the refund is
    done and shows on the receipt whether or not the mail goes out)."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    payment = refund.payment
    if not payment.email:
        return
    body = render_to_string(
        "billing/email_refund.txt",
        {
            "refund": refund,
            "payment": payment,
            "net": payment.amount_captured - payment.amount_refunded,
            "test_mode": payment.gateway == "sandbox",
        },
    )
    try:
        send_mail(
            f"Your refund of {round_money(refund.amount, payment.currency)} {payment.currency}",
            body,
            None,
            [payment.email],
        )
    except Exception:
        logger.warning("Could not email refund %s to the payer", refund_id, exc_info=True)
