"""The mail server is down when a subscription's fee is charged: the driver's card is charged
once, the driver is told so on the page (not a server error), the monthly run charges everybody
else, and the receipt is sent by a later run once mail works again."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from billing.models import LedgerTransaction, Subscription, SubscriptionInvoice
from billing.services import subscriptions_collect
from tests.drivers.conftest import save_card, sign_up

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs as in production

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


class MailDown(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_subscribing_while_mail_is_down_says_subscribed_and_the_receipt_follows(
    client, plan, settings
):
    settings.EMAIL_BACKEND = LOCMEM
    sign_up(client, "down@example.com")
    save_card(client)
    settings.EMAIL_BACKEND = "tests.drivers.test_mail_down.MailDown"
    client.raise_request_exception = False

    response = client.post(f"/driver/plans/{plan.pk}/subscribe/", follow=True)
    # Before: the receipt's SMTP error escaped after the charge: a 500 page for a paid month.
    assert response.status_code == 200
    assert "Subscribed to Resident" in response.content.decode()
    invoice = SubscriptionInvoice.objects.get()
    assert invoice.status == "paid" and invoice.receipt_sent_at is None
    assert LedgerTransaction.objects.filter(kind="subscription_fee").count() == 1

    # Mail is back: a later run sends the receipt, once, and charges nothing again.
    settings.EMAIL_BACKEND = LOCMEM
    mail.outbox.clear()
    later = invoice.paid_at + timedelta(hours=1)
    subscriptions_collect(now=later)
    subscriptions_collect(now=later + timedelta(minutes=5))
    assert [m.subject for m in mail.outbox] == [f"Receipt: Resident {invoice.period_start:%B %Y}"]
    invoice.refresh_from_db()
    assert invoice.receipt_sent_at is not None
    assert LedgerTransaction.objects.filter(kind="subscription_fee").count() == 1


def test_a_monthly_run_with_mail_down_still_charges_every_subscriber(plan, settings):
    from django.test import Client

    settings.EMAIL_BACKEND = LOCMEM
    for email in ("first@example.com", "second@example.com"):
        client = Client()
        sign_up(client, email)
        save_card(client)
        client.post(f"/driver/plans/{plan.pk}/subscribe/")
    assert Subscription.objects.filter(paid_until__isnull=False).count() == 2
    due = Subscription.objects.first().paid_until + timedelta(hours=1)

    settings.EMAIL_BACKEND = "tests.drivers.test_mail_down.MailDown"
    # Before: the first receipt's SMTP error ended the run; the second subscriber went uncharged.
    assert subscriptions_collect(now=due)["paid"] == 2
    assert SubscriptionInvoice.objects.filter(status="paid").count() == 4


def test_a_refused_monthly_fee_is_told_once_when_mail_comes_back(client, plan, settings):
    from billing.models import SandboxPaymentMethod

    settings.EMAIL_BACKEND = LOCMEM
    sign_up(client, "refused@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    SandboxPaymentMethod.objects.filter(pk=subscription.payment_method_ref).update(
        test_method="pm_card_chargeDeclined"
    )
    due = subscription.paid_until + timedelta(minutes=1)

    settings.EMAIL_BACKEND = "tests.drivers.test_mail_down.MailDown"
    assert subscriptions_collect(now=due)["refused"] == 1
    invoice = SubscriptionInvoice.objects.get(period_start=subscription.paid_until)
    assert invoice.status == "retrying" and invoice.refusal_sent_at is None

    # Mail is back: the next runs tell the refusal once (before: it was never sent again).
    settings.EMAIL_BACKEND = LOCMEM
    mail.outbox.clear()
    subscriptions_collect(now=due + timedelta(hours=1))
    subscriptions_collect(now=due + timedelta(hours=2))
    assert [m.subject for m in mail.outbox] == ["Your Resident payment failed"]
    assert mail.outbox[0].to == ["refused@example.com"]
    invoice.refresh_from_db()
    assert invoice.refusal_sent_at is not None and invoice.attempts == 1

    # The next refusal (the first retry) is news again: told once more, at once.
    mail.outbox.clear()
    subscriptions_collect(now=invoice.next_attempt_at)
    subscriptions_collect(now=invoice.next_attempt_at + timedelta(hours=1))
    assert [m.subject for m in mail.outbox] == ["Your Resident payment failed"]
