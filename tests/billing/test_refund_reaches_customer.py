"""A refund done by an agent reaches the customer (issue 34 item 4): the payer is emailed, the
guest receipt shows the refund line and what was paid net, the driver's history the new amount."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.test import Client
from django.urls import reverse

from guest.models import GuestSession
from tests.billing.helpers import paid_session, unit_rate
from tests.drivers.conftest import sign_up
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _admin_refund(agent, payment, amount, reason, nonce):
    return agent.post(
        "/admin/billing/payment/",
        {
            "action": "refund_payment",
            ACTION_CHECKBOX_NAME: [payment.pk],
            "apply": "1",
            "amount": amount,
            "reason": reason,
            "nonce": nonce,
        },
        follow=True,
    )


def test_partial_then_full_admin_refund_reaches_the_payer_receipt_and_history(
    client, prop, charger, django_capture_on_commit_callbacks
):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="dana@example.com")
    assert payment.amount_captured == Decimal("10.00")
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="dana@example.com",
        card_last4="4242",
        payment_id=payment.pk,
        charging_session=session,
        state=GuestSession.State.FINISHED,
    )
    sign_up(client, "dana@example.com")
    client.post("/driver/sessions/claim/")
    agent = Client()
    agent.force_login(UserFactory(is_staff=True, is_superuser=True))

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = _admin_refund(agent, payment, "2.50", "Idle fee while still charging", "n1")
    assert b"Refunded 2.50 EUR" in done.content
    [notice] = mail.outbox
    assert notice.to == ["dana@example.com"]
    # The currency's own decimals, never the database field's four ("1.0000 EUR").
    assert notice.subject == "Your refund of 2.50 EUR" and "2.5000" not in notice.body
    assert "2.50 EUR" in notice.body and "Idle fee while still charging" in notice.body
    assert "You paid: 7.50 EUR" in notice.body

    receipt = Client().get(reverse("guest:receipt", args=[gs.key])).content.decode()
    assert "Refunded" in receipt and "Idle fee while still charging" in receipt
    assert 'id="net">EUR 7.50<' in receipt
    history = client.get("/driver/sessions/").content.decode()
    assert "<span data-paid>EUR 7.50</span>" in history
    assert "after a refund of EUR 2.50" in history

    # The rest: nothing is left to pay, and each refund is its own line.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _admin_refund(agent, payment, "7.50", "Charger fault", "n2")
    assert "You paid: 0.00 EUR" in mail.outbox[0].body
    receipt = client.get(f"/driver/sessions/{gs.pk}/receipt/").content.decode()
    assert receipt.count("data-refund>") == 2 and 'id="net">EUR 0.00<' in receipt
    assert "<span data-paid>EUR 0.00</span>" in client.get("/driver/sessions/").content.decode()
    # Replaying a refund's nonce moves no money and sends no second mail.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _admin_refund(agent, payment, "7.50", "Charger fault", "n2")
    assert mail.outbox == []


def test_the_emailed_receipt_lists_refunds_and_the_net(prop, charger):
    from billing.services import refund_issue
    from guest.services import receipt_email

    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="dana@example.com")
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="dana@example.com",
        payment_id=payment.pk,
        charging_session=session,
        state=GuestSession.State.FINISHED,
    )
    refund_issue(
        payment=payment,
        amount=Decimal("1.00"),
        reason="Goodwill",
        source="host",
        idempotency_key="t1",
    )
    mail.outbox.clear()
    receipt_email(gs=gs)
    body = mail.outbox[0].body
    assert "Refunded" in body and "-EUR 1.00 (Goodwill)" in body and "You paid: EUR 9.00" in body


def test_amounts_are_written_with_the_currencys_own_decimals():
    from billing.templatetags.money_in import money_in

    assert money_in(Decimal("1.0000"), "EUR") == "1.00"
    assert money_in(Decimal("1500.0000"), "JPY") == "1500"
    assert money_in(Decimal("1.2345"), "BHD") == "1.235"
    assert money_in(None, "EUR") == "–"
