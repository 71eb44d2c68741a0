"""Saved cards through the gateway, subscriptions charged monthly with retries and receipts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db.models import Sum

from billing.models import (
    LedgerEntry,
    LedgerTransaction,
    SandboxPaymentMethod,
    Subscription,
    SubscriptionInvoice,
)
from billing.services import SUBSCRIPTION_RETRY_DELAYS, subscriptions_collect
from billing.tasks import subscriptions_collect_task
from drivers.models import DriverProfile, SavedCard
from tests.drivers.conftest import save_card, sign_up

pytestmark = pytest.mark.django_db


def test_card_is_saved_at_the_gateway_made_default_and_detached_on_remove(client):
    sign_up(client, "card@example.com")
    save_card(client)
    card = SavedCard.objects.get()
    assert (card.last4, card.is_default) == ("4242", True)
    assert SandboxPaymentMethod.objects.filter(pk=card.reference, customer__isnull=False).exists()
    save_card(client)
    second = SavedCard.objects.exclude(pk=card.pk).get()
    assert not second.is_default
    client.post(f"/driver/cards/{second.pk}/default/")
    assert (
        SavedCard.objects.get(pk=second.pk).is_default
        and not SavedCard.objects.get(pk=card.pk).is_default
    )
    client.post(f"/driver/cards/{second.pk}/remove/")
    assert not SandboxPaymentMethod.objects.filter(
        pk=second.reference
    ).exists()  # detached at the gateway
    assert SavedCard.objects.get().pk == card.pk and SavedCard.objects.get().is_default


def test_a_declined_card_is_not_saved(client):
    sign_up(client, "declined@example.com")
    response = save_card(client, "pm_card_chargeDeclined")
    assert response.status_code == 302
    assert not SavedCard.objects.exists()


def test_subscribe_charges_the_first_month_shows_next_charge_and_cancel_keeps_paid_period(
    client, plan, django_capture_on_commit_callbacks
):
    sign_up(client, "sub@example.com")
    save_card(client)
    mail.outbox.clear()
    # Issue 35 item 20: before subscribing the page says what the first fee pays for.
    before = client.get("/driver/subscriptions/").content.decode()
    assert "charges the full monthly fee now for the rest of this month" in before
    assert "Subscribe to Resident" in before
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    invoice = subscription.invoices.get()
    assert invoice.status == "paid" and invoice.amount == Decimal("25.00")
    local = subscription.paid_until.astimezone(ZoneInfo(plan.property.timezone))
    assert subscription.paid_until == invoice.period_end and (local.day, local.hour) == (1, 0)
    assert [m.subject for m in mail.outbox] == [f"Receipt: Resident {invoice.period_start:%B %Y}"]
    assert "ending 4242" in mail.outbox[0].body
    txn = LedgerTransaction.objects.get(kind="subscription_fee")
    assert txn.amount == Decimal("25.00")
    page = client.get("/driver/subscriptions/").content.decode()
    assert f"on {local.day} {local:%b %Y}" in page  # the 1st where the location is
    assert "Subscribe to Resident" not in page  # not offered again to a subscriber
    client.post(f"/driver/subscriptions/{subscription.pk}/cancel/")
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and subscription.ends_at == subscription.paid_until
    assert (
        f"lasts until <strong>{local.day} {local:%b %Y}"
        in client.get("/driver/subscriptions/").content.decode()
    )


def test_monthly_collection_charges_next_month_and_retries_a_declined_card_with_backoff(
    client, plan, django_capture_on_commit_callbacks
):
    sign_up(client, "monthly@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    first_end = subscription.paid_until
    # The next month is collected by the beat task once the paid period is over.
    assert subscriptions_collect(now=first_end + timedelta(hours=1)) == {
        "opened": 1,
        "paid": 1,
        "refused": 0,
        "unanswered": 0,
    }
    subscription.refresh_from_db()
    assert subscription.invoices.count() == 2 and subscription.paid_until > first_end
    # Rerunning changes nothing (idempotent).
    assert subscriptions_collect(now=first_end + timedelta(hours=2)) == {
        "opened": 0,
        "paid": 0,
        "refused": 0,
        "unanswered": 0,
    }
    # The saved card starts declining: the fee is retried after each back-off delay, then failed.
    SandboxPaymentMethod.objects.filter(pk=subscription.payment_method_ref).update(
        test_method="pm_card_chargeDeclined"
    )
    due = subscription.paid_until + timedelta(minutes=1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        subscriptions_collect(now=due)
    invoice = SubscriptionInvoice.objects.get(period_start=subscription.paid_until)
    assert (invoice.status, invoice.attempts) == ("retrying", 1)
    assert invoice.next_attempt_at == due + SUBSCRIPTION_RETRY_DELAYS[0]
    assert "declined" in invoice.last_error and "payment failed" in mail.outbox[-1].subject
    # Not before the back-off is over.
    assert subscriptions_collect(now=due + timedelta(hours=1))["refused"] == 0
    at = due
    for delay in SUBSCRIPTION_RETRY_DELAYS:
        at = at + delay
        subscriptions_collect(now=at)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.attempts, invoice.next_attempt_at) == ("failed", 4, None)
    # Reported to the driver on their plans page.
    page = client.get("/driver/subscriptions/").content.decode()
    assert 'data-invoice-status="failed"' in page and "declined" in page
    # The ledger still balances with the subscription fees booked.
    assert LedgerEntry.objects.aggregate(t=Sum("amount"))["t"] == 0
    assert LedgerTransaction.objects.filter(kind="subscription_fee").count() == 2


def test_task_wrapper_runs_the_collection(client, plan):
    sign_up(client, "task@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    Subscription.objects.update(paid_until=datetime(2020, 1, 1, tzinfo=UTC))
    # Celery's 'will the join block' flag is one global for the process: an eager task running in
    # another thread of the test process (a server or consumer a test started) sets it meanwhile.
    assert subscriptions_collect_task.delay().get(disable_sync_subtasks=False) == {
        "opened": 1,
        "paid": 1,
        "refused": 0,
        "unanswered": 0,
    }


def test_removing_the_only_card_of_an_active_subscription_is_refused(client, plan):
    sign_up(client, "only@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    card = SavedCard.objects.get()
    client.post(f"/driver/cards/{card.pk}/remove/")
    assert SavedCard.objects.filter(pk=card.pk).exists()
    assert SandboxPaymentMethod.objects.filter(pk=card.reference).exists()
    assert DriverProfile.objects.get().customer_ref == Subscription.objects.get().customer_ref


class _AnswerLost:
    """The sandbox gateway, except that the processor's answer to the first monthly charge is lost
    (the charge itself goes through), or the run dies in the middle of the call."""

    def __init__(self, real, *, crash: bool = False):
        self.real, self.crash, self.keys, self.references = real, crash, [], []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def charge_saved(self, **kwargs):
        from billing.gateways import PaymentResult

        self.keys.append(kwargs["idempotency_key"])
        if self.crash and len(self.keys) == 1:
            raise RuntimeError("worker killed during the call")
        result = self.real.charge_saved(**kwargs)
        self.references.append(result.reference)
        if len(self.keys) == 1:
            return PaymentResult(
                False, "", "No answer from Stripe: APIConnectionError", answered=False
            )
        return result


@pytest.mark.parametrize("crash", [False, True], ids=["answer-lost", "run-died"])
def test_a_charge_without_an_answer_is_asked_again_with_the_same_key_and_charged_once(
    client, plan, monkeypatch, crash
):
    from billing.models import Payment
    from billing.services import subscriptions as services

    sign_up(client, "lost@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    gateway = _AnswerLost(services.get_gateway(), crash=crash)
    monkeypatch.setattr(services, "get_gateway", lambda: gateway)
    due = subscription.paid_until + timedelta(hours=1)
    if crash:
        with pytest.raises(RuntimeError):
            subscriptions_collect(now=due)
    else:
        assert subscriptions_collect(now=due) == {
            "opened": 1,
            "paid": 0,
            "refused": 0,
            "unanswered": 1,
        }
    invoice = SubscriptionInvoice.objects.get(period_start=subscription.paid_until)
    # Neither refused nor forgotten: still due, no attempt counted, taken up again after the lease.
    assert (invoice.status, invoice.attempts, invoice.next_attempt_at) == (
        "due",
        0,
        due + services.SUBSCRIPTION_CHARGE_LEASE,
    )
    assert (
        subscriptions_collect(now=due + timedelta(minutes=5))["unanswered"] == 0
        and len(gateway.keys) == 1
    )
    assert subscriptions_collect(now=due + services.SUBSCRIPTION_CHARGE_LEASE)["paid"] == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.attempts) == ("paid", 1)
    # The same key both times, so the processor answered with its first charge: charged once.
    assert gateway.keys == [f"subscription-invoice:{invoice.pk}:1"] * 2
    assert len(set(gateway.references)) == 1
    assert Payment.objects.filter(session_ref=f"subscription-invoice:{invoice.pk}").count() == 1
    assert LedgerEntry.objects.aggregate(t=Sum("amount"))["t"] == 0


def test_a_saved_card_keeps_the_typed_expiry_and_the_driver_is_named_by_email(client, db):
    """Issue 35 item 20: 11/30 typed stays 11/30 (not the test card's 12/2034); allauth's
    messages name the driver by email, never "driver-66987c27…"."""
    sign_up(client, "expiry@example.com")
    home = client.get("/driver/").content.decode()
    assert "driver-" not in home
    save_card(client, exp_month="11", exp_year="2030")
    card = SavedCard.objects.get()
    assert (card.exp_month, card.exp_year) == (11, 2030)
    assert "expires 11/30" in client.get("/driver/cards/").content.decode()


def test_the_next_charge_is_the_same_day_on_the_home_and_plans_pages(client, plan):
    """A plan's months end at midnight where its location is: at a New York location the 1st
    at 00:00 there (05:00 UTC in winter), and both pages say that day (the home page once said
    the UTC day)."""
    plan.property.timezone = "America/New_York"
    plan.property.save(update_fields=["timezone"])
    sign_up(client, "ny@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    paid_until = Subscription.objects.get().paid_until
    local = paid_until.astimezone(ZoneInfo("America/New_York"))
    assert (local.day, local.hour, local.minute) == (1, 0, 0)  # midnight on the 1st in NY
    there = f"{local.day} {local:%b %Y}"
    assert f"on {there}" in client.get("/driver/subscriptions/").content.decode()
    assert f"next charge {there}" in client.get("/driver/").content.decode()
