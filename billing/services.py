"""Billing writes: pricing sessions, guest payments, refunds, payouts, reconciliation, rates."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from chargers.models import ChargingSession, MeterValue, StatusEvent
from metering.selectors import SignedSummary, session_signature
from power.selectors import waiting_periods

from . import ledger, pricing
from .gateways import GatewayError, get_gateway
from .holds import Ceiling
from .models import (
    BillingSettings,
    LedgerTransaction,
    Payment,
    Payout,
    PropertySignaturePolicy,
    Rate,
    Refund,
    SessionCharge,
    Subscription,
    SubscriptionInvoice,
    SubscriptionPlan,
)
from .money import exact_sum, round_money
from .payout_schedule import period_end_for
from .price_shown import RATE_FIELDS, session_rate
from .selectors import (
    included_kwh_used,
    location_tax_mode,
    subscription_for_session,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from authorization.models import Token

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
# Zero-energy attempts by the same card on the same charger this close together are one attempt.
RETRY_WINDOW = timedelta(minutes=15)


# -- session facts and cost ---------------------------------------------------------------------


def rate_terms(rate: Rate) -> pricing.RateTerms:
    return pricing.RateTerms(
        currency=rate.property.currency, **{name: getattr(rate, name) for name in RATE_FIELDS}
    )


def _to_wh(value: Decimal, unit: str) -> Decimal:
    return value * 1000 if unit.lower() == "kwh" else value


def _to_w(value: Decimal, unit: str) -> Decimal:
    return value * 1000 if unit.lower() == "kw" else value


def _samples(session: ChargingSession) -> tuple[pricing.Sample, ...]:
    rows = (
        MeterValue.objects.filter(
            session_id=session.pk,
            value__isnull=False,
            phase="",
            measurand__in=[pricing.ENERGY_REGISTER, pricing.POWER],
        )
        .order_by("timestamp", "id")
        .values_list("timestamp", "measurand", "value", "unit")
    )
    samples = []
    for when, measurand, value, unit in rows:
        if value is None:  # excluded by the query; the column is nullable
            continue
        converted = (
            _to_wh(value, unit or "Wh")
            if measurand == pricing.ENERGY_REGISTER
            else _to_w(value, unit or "W")
        )
        samples.append(pricing.Sample(when, measurand, converted))
    return tuple(samples)


def _statuses(session: ChargingSession, end: datetime | None) -> tuple[pricing.StatusChange, ...]:
    rows = StatusEvent.objects.filter(
        charger_id=session.charger_id,
        connector_id=session.connector_id,
        timestamp__gte=session.started_at,
    )
    if end is not None:
        rows = rows.filter(timestamp__lte=end)
    return tuple(
        pricing.StatusChange(ts, status)
        for ts, status in rows.order_by("timestamp", "id").values_list("timestamp", "status")
    )


def _repeated_attempt(session: ChargingSession) -> bool:
    """A 0 kWh session counts as a retry when the same card started another session on the
    same charger within RETRY_WINDOW before it, or one that delivered energy after it."""
    nearby = ChargingSession.objects.filter(
        charger_id=session.charger_id,
        id_tag=session.id_tag,
        started_at__gte=session.started_at - RETRY_WINDOW,
        started_at__lte=session.started_at + RETRY_WINDOW,
    ).exclude(pk=session.pk)
    for other in nearby.only("started_at", "meter_start_wh", "meter_stop_wh", "pk"):
        if other.started_at < session.started_at or (
            other.started_at == session.started_at and other.pk < session.pk
        ):
            return True
        if other.energy_wh:
            return True
    return False


def _month_bounds(at: datetime) -> tuple[datetime, datetime]:
    at = at.astimezone(UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _payer_email(session: ChargingSession) -> str:
    payment = Payment.objects.filter(session_id=session.pk).exclude(email="").only("email").first()
    return payment.email if payment else ""


def signed_energy(signature: SignedSummary | None) -> tuple[Decimal, Decimal] | None:
    """The meter's signed start and end in Wh when both verified (billing follows the
    signature, docs/metering.md), else None."""
    if signature is None or not signature.verified or signature.energy_wh is None:
        return None
    assert signature.start is not None and signature.end is not None
    assert signature.start.value_wh is not None and signature.end.value_wh is not None
    return signature.start.value_wh, signature.end.value_wh


def session_facts(
    session: ChargingSession,
    *,
    subscription: Subscription | None = None,
    signature: SignedSummary | None = None,
) -> pricing.SessionFacts:
    """Return what the charger reported about the session, as pure facts; with a verified
    signature, the energy registers are the meter's signed start and end."""
    samples = _samples(session)
    signed = signed_energy(signature)
    meter_start, meter_stop = (
        signed if signed is not None else (session.meter_start_wh, session.meter_stop_wh)
    )
    plan = None
    if subscription is not None:
        month_start, month_end = _month_bounds(session.started_at)
        used = included_kwh_used(
            subscription,
            month_start=month_start,
            month_end=month_end,
            exclude_session_id=session.pk,
        )
        plan = pricing.PlanTerms(
            name=subscription.plan.name,
            included_kwh_remaining=max(subscription.plan.included_kwh - used, ZERO),
            energy_discount_percent=subscription.plan.energy_discount_percent,
        )
    return pricing.SessionFacts(
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        meter_start_wh=meter_start,
        meter_stop_wh=meter_stop,
        energy_signed=signed is not None,
        samples=samples,
        statuses=_statuses(session, session.stopped_at),
        # 0 Wh, or no reading reported: whether it was a retry decides its connection fee.
        repeated_attempt=_repeated_attempt(session) if not session.energy_wh else False,
        plan=plan,
        waiting=tuple(waiting_periods(session.pk)),
    )


# A session's cost with what it came from: the rate, the subscription and the facts priced.
CostAndContext = tuple[pricing.Cost, Rate | None, Subscription | None, pricing.SessionFacts | None]


def _cost_and_context(session: ChargingSession) -> CostAndContext:
    charger = session.charger
    # The price version stored at the start (shown to the driver, or in force on our clock).
    rate, _version = session_rate(session)
    prop = charger.property if charger.property_id else None
    currency = prop.currency if prop is not None else "EUR"
    if rate is None:
        return (
            pricing.Cost(currency=currency, final=session.stopped_at is not None),
            None,
            None,
            None,
        )
    subscription = subscription_for_session(session, email=_payer_email(session))
    facts = session_facts(session, subscription=subscription, signature=session_signature(session))
    cost = pricing.session_cost(rate_terms(rate), facts)
    return cost, rate, subscription, facts


def session_cost_explained(session: ChargingSession) -> CostAndContext:
    """Return (cost, rate, subscription, facts) for pages that show how a cost came about."""
    return _cost_and_context(session)


def session_cost(session: ChargingSession) -> pricing.Cost:
    """Return the session's cost under its price version (billing.price_shown.session_rate).

    Without a rate the cost has no lines and totals of zero. Computed from the stored
    facts every time, so it is always current and recalculation is idempotent.
    """
    return _cost_and_context(session)[0]


def _signature_checked(session_id: int) -> None:
    """Verify the session's signed readings now (metering reads them where chargers kept them;
    idempotent), so the price never waits for metering's own receiver. A failure is logged:
    the raw values stay stored, and what is stored decides (an unverified value holds)."""
    from metering.services import session_signed_ingest

    try:
        with transaction.atomic():
            session_signed_ingest(session_id=session_id)
    except Exception:
        logger.exception("Verifying the signed readings of session %s failed", session_id)


def signature_hold(
    session: ChargingSession, organization_id: int, signature: SignedSummary | None
) -> str:
    """Why the settlement of a finished session is held ('' when it is not): its signed
    readings do not verify and the policy is to hold (the default): the property's own
    (PropertySignaturePolicy), else the organization's (BillingSettings)."""
    if session.stopped_at is None or signature is None or signature.verified:
        return ""
    policy = (
        PropertySignaturePolicy.objects.filter(property__chargers__pk=session.charger_id)
        .values_list("signature_policy", flat=True)
        .first()
        or BillingSettings.objects.filter(organization_id=organization_id)
        .values_list("signature_policy", flat=True)
        .first()
        or BillingSettings.SignaturePolicy.HOLD
    )
    if policy != BillingSettings.SignaturePolicy.HOLD:
        return ""
    said = signature.reason or signature.status.replace("_", " ")
    return f"Signed meter readings {signature.status.replace('_', ' ')}: {said}"[:200]


@transaction.atomic
def session_price(*, session_id: int) -> SessionCharge | None:
    """Store (or refresh) the priced snapshot of a session. Idempotent.

    Billing follows the signature (docs/metering.md): a verified signed start and end are the
    energy billed; otherwise, by the organization's policy, the settlement is held and support
    is told (billing.signals.settlement_held)."""
    _signature_checked(session_id)
    session = (
        ChargingSession.objects.select_related("charger", "charger__property")
        .filter(pk=session_id)
        .first()
    )
    prop = session.charger.property if session is not None else None
    if session is None or prop is None:
        return None
    cost, rate, subscription, facts = _cost_and_context(session)
    signature = session_signature(session)
    previous = (
        SessionCharge.objects.filter(session=session).values("held", "hold_waived_at").first()
    )
    hold_reason = signature_hold(session, prop.organization_id, signature)
    if previous is not None and previous["hold_waived_at"] is not None:
        hold_reason = ""  # support decided: the measured energy is billed
    was_held = bool(previous and previous["held"])
    included = ZERO
    if facts is not None and facts.plan is not None:
        included = min(facts.plan.included_kwh_remaining, (cost.energy_wh or ZERO) / 1000)
    values = {
        "organization_id": prop.organization_id,
        # A version's rate may have been deleted since: the charge keeps its copied terms.
        "rate_id": rate.pk if rate is not None else None,
        "subscription": subscription,
        "currency": cost.currency,
        "lines": cost.as_dict()["lines"],
        "subtotal": cost.subtotal,
        "tax": cost.tax,
        "total": cost.total,
        "prices_include_tax": cost.prices_include_tax,
        "tax_percent": cost.tax_percent,
        "processing_fee": cost.processing_fee,
        "energy_wh": cost.energy_wh,
        "included_kwh_used": included,
        "started_at": session.started_at,
        "final": cost.final,
        "energy_source": cost.energy_source,
        "signature_status": signature.status if signature is not None else "",
        "held": bool(hold_reason),
        "hold_reason": hold_reason,
    }
    charge, _ = SessionCharge.objects.update_or_create(session=session, defaults=values)
    if hold_reason and not was_held:
        transaction.on_commit(lambda: _announce_held(session_id, hold_reason))
    return charge


def _announce_held(session_id: int, reason: str) -> None:
    from .signals import settlement_held

    try:
        settlement_held.send(sender=SessionCharge, session_id=session_id, reason=reason)
    except Exception:  # the hold is stored; support sees it on the session too
        logger.exception("Announcing the held settlement of session %s failed", session_id)


def sessions_price(session_ids: list[int]) -> int:
    """Price finished sessions handed over together (billing.receivers.PricingBatch); one that
    fails is left to the periodic sweep and the others are priced. Returns how many were priced."""
    priced = 0
    for session_id in session_ids:
        try:
            session_price(session_id=session_id)
            priced += 1
        except Exception:
            logger.exception("Pricing session %s failed; the periodic sweep will retry", session_id)
    return priced


def sessions_price_missing(*, limit: int = 1000, since: datetime | None = None) -> int:
    """Price completed sessions without a snapshot, or whose snapshot is older than the stop
    (a late StopTransaction). Returns how many were priced. The periodic sweep calls this; a
    session whose pricing fails is logged and left for the next sweep, the others are priced."""
    since = since or timezone.now() - timedelta(days=35)
    queryset = ChargingSession.objects.filter(
        status=ChargingSession.Status.COMPLETED,
        charger__property__isnull=False,
        received_stop_at__gte=since,
    ).filter(
        Q(charge__isnull=True)
        | Q(charge__final=False)
        | Q(charge__priced_at__lt=F("received_stop_at"))
        # Held: priced again until the signature verifies (a key registered) or the policy
        # changes; then the guest payment held for it is captured.
        | Q(charge__held=True)
    )
    ids = list(queryset.values_list("pk", flat=True)[:limit])
    held = set(
        SessionCharge.objects.filter(session_id__in=ids, held=True).values_list(
            "session_id", flat=True
        )
    )
    priced = sessions_price(ids)
    if held:
        settlements_released(held)
    return priced


def settlement_hold_waive(*, session_id: int, user: Any) -> SessionCharge | None:
    """Support's decision on a held settlement: bill the measured energy (the signed readings
    stay as they are, shown as not verified). Re-prices the session and captures a guest
    payment held for it. Idempotent; None when the session has no held charge."""
    with transaction.atomic():
        charge = SessionCharge.objects.select_for_update().filter(session_id=session_id).first()
        if charge is None or (not charge.held and charge.hold_waived_at is None):
            return None
        if charge.hold_waived_at is None:
            charge.hold_waived_at = timezone.now()
            charge.hold_waived_by = user
            charge.save(update_fields=["hold_waived_at", "hold_waived_by"])
    session_price(session_id=session_id)
    settlements_released({session_id})
    return SessionCharge.objects.get(session_id=session_id)


def settlements_released(session_ids: set[int]) -> int:
    """Capture the guest payments of sessions whose hold was lifted; return how many."""
    released = SessionCharge.objects.filter(session_id__in=session_ids, held=False)
    payments = Payment.objects.filter(
        session_id__in=released.values("session_id"), status=Payment.Status.AUTHORIZED
    ).select_related("session")
    done = 0
    for payment in payments:
        try:
            assert payment.session is not None
            guest_payment_settle(payment=payment, session=payment.session)
            done += 1
        except Exception:
            logger.exception("Settling payment %s after its hold was lifted failed", payment.pk)
    return done


# -- guest payments -----------------------------------------------------------------------------


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
    from .holds import hold_amount

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
        if payment.status not in (Payment.Status.AUTHORIZED, Payment.Status.CAPTURED):
            return payment
        if payment.session_id is None:
            # Saved before pricing: the payer's email can hold a subscription at this location.
            payment.session = session
            payment.save(update_fields=["session"])
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
        result = get_gateway().capture(
            payment.reference, amount, idempotency_key=f"capture:{payment.reference}"
        )
        if not result.ok:
            raise GatewayError(result.decline_reason or "The capture failed.")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == Payment.Status.RELEASED:
            return payment
        payment.amount_captured = amount
        payment.status = Payment.Status.CAPTURED
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
        raise GatewayError(result.decline_reason or "The hold could not be released.")
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
            payment.save()
        return payment


# -- refunds ------------------------------------------------------------------------------------


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
    payment.refresh_from_db()
    amount = round_money(Decimal(amount), payment.currency)
    if amount <= 0:
        raise ValidationError({"amount": "Refund a positive amount."})
    if payment.status != Payment.Status.CAPTURED:
        raise ValidationError({"amount": "Only charged payments can be refunded."})
    if amount > payment.refundable:
        raise ValidationError(
            {
                "amount": f"At most {round_money(payment.refundable, payment.currency)} {payment.currency} can still be refunded."
            }
        )
    # The processor first, with no transaction open; it refuses more than was charged, and the
    # key makes a concurrent replay of the same refund return the first answer.
    result = get_gateway().refund(
        payment.reference, amount, idempotency_key=f"refund:{idempotency_key}"
    )
    if not result.ok:
        raise GatewayError(result.decline_reason or "The processor refused the refund.")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
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
            gateway_reference=result.reference,
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
        if notify_payer and payment.email:
            refund_id = refund.pk
            transaction.on_commit(lambda: refund_email(refund_id))
        return refund


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


# -- payouts ------------------------------------------------------------------------------------


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
        payout = Payout.objects.create(
            organization_id=organization_id,
            currency=currency,
            period_start=min(period_start, first_item),
            period_end=period_end,
            reference=f"PO-{organization_id}-{currency}-{period_end:%Y%m%d}",
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
            period_end=period_end_for(period, now),
        )
        if payout is not None:
            created.append(payout)
    return created


# -- rates, settings and subscriptions ----------------------------------------------------------


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
def subscription_start(
    *, plan: SubscriptionPlan, email: str, token: Token | None = None, now: datetime | None = None
) -> Subscription:
    if not plan.active:
        raise ValidationError("This plan is no longer offered.")
    now = now or timezone.now()
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
    return paid_until if paid_until and paid_until > now else _month_bounds(now)[1]


# -- subscriptions collected from a saved card --------------------------------------------------

# A declined monthly fee is tried again after these delays (then the invoice is reported failed).
SUBSCRIPTION_RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))
# How long a claimed invoice is left to the run charging it. A run that dies mid-call, or a
# charge whose answer was lost, is taken up again after this with the same attempt and so the
# same idempotency key: the processor answers with the first charge instead of charging twice
# (Stripe keeps keys for 24 hours, far longer than this).
SUBSCRIPTION_CHARGE_LEASE = timedelta(minutes=15)


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
            "period_end": _month_bounds(start)[1],
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
        invoice.attempts = attempt
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
            transaction.on_commit(lambda: _invoice_email(invoice.pk, receipt=False))
    return invoice


def _invoice_email(invoice_id: int, *, receipt: bool) -> None:
    invoice = SubscriptionInvoice.objects.select_related(
        "subscription__plan__property", "payment"
    ).get(pk=invoice_id)
    if not invoice.subscription.email:
        return
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
    send_mail(subject, body, None, [invoice.subscription.email])
    if receipt:
        SubscriptionInvoice.objects.filter(pk=invoice_id).update(receipt_sent_at=timezone.now())


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
                    "period_end": _month_bounds(subscription.paid_until)[1],
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


@transaction.atomic
def seller_details_set(*, organization_id: int, seller_name: str, vat_number: str) -> None:
    """The organization's name and VAT number as the seller on the receipts it issues from now on
    (issued receipts keep the details they were issued with)."""
    row, _ = BillingSettings.objects.get_or_create(organization_id=organization_id)
    BillingSettings.objects.filter(pk=row.pk).update(seller_name=seller_name, vat_number=vat_number)
