"""The contract the guest app codes against: rate lookup, session cost, hold/settle/release."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.gateways import get_gateway
from billing.models import LedgerEntry, LedgerTransaction, Payment, Rate
from billing.selectors import host_balance, rate_for_charger
from billing.services import (
    guest_payment_record,
    guest_payment_release,
    guest_payment_settle,
    session_cost,
)
from chargers.models import ChargingSession

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=1)


def make_rate(prop, charger=None, **kw):
    values = dict(
        property=prop,
        charger=charger,
        valid_from=T0 - timedelta(days=30),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    values.update(kw)
    return Rate.objects.create(**values)


def make_session(charger, wh=10000, minutes=60, tx=1):
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=tx,
        id_tag="GUEST-1",
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=minutes),
        meter_start_wh=1000,
        meter_stop_wh=1000 + wh,
        status="completed",
    )


def test_charger_rate_wins_over_property_rate(charger, prop):
    make_rate(prop)
    own = make_rate(prop, charger=charger, energy_price_per_kwh=Decimal("0.50"))
    assert rate_for_charger(charger, T0) == own


def test_expired_rate_is_not_used(charger, prop):
    make_rate(prop, valid_until=T0 - timedelta(days=1))
    assert rate_for_charger(charger, T0) is None


def test_session_cost_has_lines_and_totals(charger, prop):
    make_rate(prop)
    cost = session_cost(make_session(charger))
    assert cost.currency == "EUR"
    assert [line["kind"] for line in cost.lines] == ["connection_fee", "energy"]
    assert cost.subtotal == Decimal("4.50")  # 1.00 + 10 kWh x 0.35
    assert cost.tax == Decimal("0.95")  # 21% of 4.50 = 0.945 -> 0.95
    assert cost.total == Decimal("5.45")


def test_hold_settle_captures_the_cost_and_books_the_ledger(charger, prop):
    make_rate(prop, processing_fee_percent=Decimal("1.4"), processing_fee_fixed=Decimal("0.25"))
    session = make_session(charger)
    result = get_gateway().authorize(Decimal("30.00"), "EUR", "pm_card_visa", "guest-hold-1")
    assert result.ok
    payment = guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("30.00"),
        currency="EUR",
        reference=result.reference,
        email="guest@example.com",
    )
    payment = guest_payment_settle(payment=payment, session=session)
    assert payment.status == Payment.Status.CAPTURED
    assert payment.amount_captured == Decimal("5.45")
    assert payment.session_id == session.pk
    again = guest_payment_settle(payment=payment, session=session)
    assert again.amount_captured == Decimal("5.45")
    kinds = sorted(LedgerTransaction.objects.values_list("kind", flat=True))
    assert kinds == ["guest_charge", "processing_fee"]
    # 5.45 - (1.4% of 5.45 = 0.0763 + 0.25 = 0.33)
    assert host_balance(prop.organization_id, "EUR") == Decimal("5.12")
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0


def test_capture_is_limited_to_the_hold(charger, prop):
    make_rate(prop)
    session = make_session(charger, wh=100000)
    result = get_gateway().authorize(Decimal("20.00"), "EUR", "pm_card_visa", "guest-hold-2")
    payment = guest_payment_record(
        session_id=session.pk,
        organization_id=prop.organization_id,
        amount_held=Decimal("20.00"),
        currency="EUR",
        reference=result.reference,
        email="",
    )
    payment = guest_payment_settle(payment=payment, session=session)
    assert payment.amount_captured == Decimal("20.00")


def test_release_keeps_nothing_and_is_idempotent(charger, prop):
    result = get_gateway().authorize(Decimal("20.00"), "EUR", "pm_card_visa", "guest-hold-3")
    payment = guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("20.00"),
        currency="EUR",
        reference=result.reference,
        email="g@example.com",
    )
    payment = guest_payment_release(payment=payment, reason="Charger did not start")
    payment = guest_payment_release(payment=payment, reason="again")
    assert payment.status == Payment.Status.RELEASED
    assert payment.release_reason == "Charger did not start"
    assert payment.amount_captured == 0
    assert not LedgerTransaction.objects.exists()


def test_zero_cost_session_releases_the_hold(charger, prop):
    make_rate(prop, connection_fee=Decimal("0"))
    session = make_session(charger, wh=0)
    result = get_gateway().authorize(Decimal("20.00"), "EUR", "pm_card_visa", "guest-hold-4")
    payment = guest_payment_record(
        session_id=session.pk,
        organization_id=prop.organization_id,
        amount_held=Decimal("20.00"),
        currency="EUR",
        reference=result.reference,
        email="",
    )
    assert guest_payment_settle(payment=payment, session=session).status == Payment.Status.RELEASED


@pytest.mark.parametrize(
    "card,ok",
    [
        ("pm_card_visa", True),
        ("pm_card_chargeDeclined", False),
        ("pm_card_chargeDeclinedInsufficientFunds", False),
    ],
)
def test_sandbox_cards(card, ok):
    result = get_gateway().authorize(Decimal("10"), "EUR", card, f"k-{card}")
    assert result.ok is ok
    assert bool(result.decline_reason) is (not ok)


def test_settle_applies_the_payers_subscription(charger, prop):
    from billing.models import Subscription, SubscriptionPlan

    make_rate(prop)
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Guest plan", energy_discount_percent=Decimal("20")
    )
    Subscription.objects.create(
        plan=plan, email="sub@example.com", started_at=T0 - timedelta(days=1)
    )
    session = make_session(charger)
    result = get_gateway().authorize(Decimal("30.00"), "EUR", "pm_card_visa", "guest-hold-sub")
    payment = guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("30.00"),
        currency="EUR",
        reference=result.reference,
        email="sub@example.com",
    )
    payment = guest_payment_settle(payment=payment, session=session)
    # 1.00 + 3.50 - 20% of 3.50 (0.70) = 3.80; 21% = 0.798 -> 0.80; total 4.60.
    assert payment.amount_captured == Decimal("4.60")


def test_expired_charger_rate_falls_back_to_the_property_rate(charger, prop):
    base = make_rate(prop)
    own = make_rate(
        prop,
        charger=charger,
        valid_until=T0 - timedelta(hours=1),
        energy_price_per_kwh=Decimal("0.50"),
    )
    newer = make_rate(prop, valid_from=T0 - timedelta(days=2), energy_price_per_kwh=Decimal("0.40"))
    assert rate_for_charger(charger, T0) == newer  # the override expired: newest property rate
    assert rate_for_charger(charger, T0 - timedelta(days=10)) == own  # the override was in force
    assert rate_for_charger(charger, T0 - timedelta(days=40)) is None
    assert base.valid_from == T0 - timedelta(days=30)
