"""Property tests: any sequence of charges, refunds, replays, payouts and failed payouts keeps
every ledger transaction balanced and never refunds more than was charged."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import BillingSettings, LedgerEntry, LedgerTransaction, Payment, Payout, Refund
from billing.money import exact_sum
from billing.selectors import host_balance
from billing.services import guest_payment_settle, payout_create, refund_issue
from billing.services.payouts import payout_mark_failed
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.one_of(
        st.tuples(st.just("charge"), st.integers(min_value=0, max_value=5000)),
        st.tuples(
            st.just("refund"),
            st.integers(min_value=0, max_value=50),
            st.integers(min_value=1, max_value=6000),
        ),
        st.tuples(st.just("replay"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("payout"), st.just(0)),
        st.tuples(st.just("fail"), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


def _sum(org_id, kind):
    return exact_sum(
        LedgerTransaction.objects.filter(organization_id=org_id, kind=kind).aggregate(
            t=Sum("amount")
        )["t"]
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_any_sequence_keeps_the_ledger_balanced(ops):
    charger = ChargerFactory()
    org_id = charger.property.organization_id
    unit_rate(
        charger.property,
        processing_fee_percent=Decimal("2.9"),
        processing_fee_fixed=Decimal("0.30"),
    )
    BillingSettings.objects.create(organization_id=org_id, platform_fee_percent=Decimal("5"))
    payments: list[Payment] = []
    refund_keys: list[str] = []
    period_end = T0 + timedelta(days=30)
    for step, op in enumerate(ops):
        if op[0] == "charge":
            _session, payment = paid_session(charger, wh=op[1] * 10)
            payments.append(payment)
        elif op[0] == "refund" and payments:
            payment = Payment.objects.get(pk=payments[op[1] % len(payments)].pk)
            amount = Decimal(op[2]) / 100
            key = f"r-{charger.pk}-{step}"
            before = payment.amount_refunded
            try:
                refund_issue(
                    payment=payment,
                    amount=amount,
                    reason="test",
                    source="support",
                    idempotency_key=key,
                )
                refund_keys.append(key)
            except ValidationError:
                payment.refresh_from_db()
                assert payment.amount_refunded == before
                assert amount > payment.refundable or payment.status != Payment.Status.CAPTURED
        elif op[0] == "replay":
            count = LedgerTransaction.objects.count()
            if payments:
                payment = payments[op[1] % len(payments)]
                if payment.session_id:
                    guest_payment_settle(payment=payment, session=payment.session)
            if refund_keys:
                refund = Refund.objects.get(idempotency_key=refund_keys[op[1] % len(refund_keys)])
                refund_issue(
                    payment=refund.payment,
                    amount=refund.amount,
                    reason="again",
                    source="support",
                    idempotency_key=refund.idempotency_key,
                )
            assert LedgerTransaction.objects.count() == count
        elif op[0] == "payout":
            period_end += timedelta(days=1)
            payout_create(organization_id=org_id, currency="EUR", period_end=period_end)
        elif op[0] == "fail":
            last = (
                Payout.objects.filter(organization_id=org_id, status="pending")
                .order_by("-period_end")
                .first()
            )
            if last is not None:
                payout_mark_failed(payout=last, reason="account closed")

    for txn in LedgerTransaction.objects.filter(organization_id=org_id).prefetch_related("entries"):
        assert sum(e.amount for e in txn.entries.all()) == 0, txn
    assert exact_sum(LedgerEntry.objects.aggregate(t=Sum("amount"))["t"]) == 0
    for payment in Payment.objects.filter(organization_id=org_id):
        refunded = exact_sum(payment.refunds.aggregate(t=Sum("amount"))["t"])
        assert refunded == payment.amount_refunded <= payment.amount_captured
    expected = (
        _sum(org_id, "guest_charge")
        - _sum(org_id, "processing_fee")
        - _sum(org_id, "platform_fee")
        - _sum(org_id, "refund")
        - _sum(org_id, "payout")
        + _sum(org_id, "payout_failed")
    )
    assert host_balance(org_id, "EUR") == expected
    # Whatever no payout holds yet is exactly the balance still owed.
    pending_paid = (
        Payout.objects.filter(organization_id=org_id)
        .exclude(status="failed")
        .aggregate(t=Sum("net"))["t"]
    )
    assert _sum(org_id, "payout") - _sum(org_id, "payout_failed") == exact_sum(pending_paid)
