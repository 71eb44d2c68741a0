"""Support agents refund from the Django admin: an action with amount and reason."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from billing.models import LedgerTransaction, Payment
from tests.billing.helpers import paid_session, unit_rate
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_admin_refund_action_with_reason_and_amount(prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    agent = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(agent)
    url = "/admin/billing/payment/"
    form = client.post(url, {"action": "refund_payment", ACTION_CHECKBOX_NAME: [payment.pk]})
    assert form.status_code == 200 and b"at most 10.00" in form.content
    too_much = client.post(
        url,
        {
            "action": "refund_payment",
            ACTION_CHECKBOX_NAME: [payment.pk],
            "apply": "1",
            "amount": "11.00",
            "reason": "x",
            "nonce": "n1",
        },
        follow=True,
    )
    assert b"At most 10.00 EUR" in too_much.content, [str(m) for m in too_much.context["messages"]]
    done = client.post(
        url,
        {
            "action": "refund_payment",
            ACTION_CHECKBOX_NAME: [payment.pk],
            "apply": "1",
            "amount": "3.00",
            "reason": "Idle fee while still charging",
            "nonce": "n2",
        },
        follow=True,
    )
    assert b"Refunded 3.00 EUR" in done.content
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("3.00")
    refund = payment.refunds.get()
    assert (refund.reason, refund.source, refund.created_by) == (
        "Idle fee while still charging",
        "support",
        agent,
    )
    assert LedgerTransaction.objects.filter(kind="refund", refund=refund).count() == 1
    assert Payment.objects.get(pk=payment.pk).refundable == Decimal("7.00")
