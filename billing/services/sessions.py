"""Pricing a charging session: its facts (meter values, statuses, the subscription, the waits
for power), its cost, and the SessionCharge written once the signed readings allow it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction

from chargers.models import ChargingSession, MeterValue, StatusEvent
from metering.selectors import SignedSummary, session_signature
from power.selectors import waiting_periods

from .. import pricing
from ..models import (
    BillingSettings,
    Payment,
    PropertySignaturePolicy,
    Rate,
    SessionCharge,
    Subscription,
)
from ..price_shown import RATE_FIELDS, session_rate
from ..selectors import (
    included_kwh_used,
    subscription_for_session,
)
from .subscriptions import month_bounds, plan_zone

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


ZERO = Decimal("0")

# Zero-energy attempts by the same card on the same charger this close together are one attempt.
RETRY_WINDOW = timedelta(minutes=15)


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
        month_start, month_end = month_bounds(session.started_at, plan_zone(subscription.plan))
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
    started_at, stopped_at = pricing.clock_span(
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        received_start_at=session.received_start_at,
        received_stop_at=session.received_stop_at,
    )
    return pricing.SessionFacts(
        started_at=started_at,
        stopped_at=stopped_at,
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
    from ..signals import settlement_held

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
