"""The processor charged a subscription's month but its answer was lost, and then it stayed out
of reach: the run asks again with the same idempotency key for as long as the processor keeps
that key (Stripe: at least 24 hours, then it may forget it and a retry is a new charge). After
a day without an answer the month is not charged again: it is left for a person to reconcile."""

from datetime import timedelta

import pytest

from billing.gateways import PaymentResult
from billing.models import SandboxIntent, Subscription, SubscriptionInvoice
from billing.services import subscriptions_collect
from tests.drivers.conftest import save_card, sign_up

pytestmark = pytest.mark.django_db


class OutOfReach:
    """The sandbox gateway behind a network that loses the first charge's answer and then
    reaches nothing until `back`; a key older than 24 hours is forgotten, as Stripe may."""

    def __init__(self, real, back):
        self.real, self.back, self.now, self.first_seen, self.calls = real, back, None, {}, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def charge_saved(self, **kwargs):
        self.calls += 1
        key = kwargs["idempotency_key"]
        seen = self.first_seen.setdefault(key, self.now)
        lost = PaymentResult(False, "", "No answer from Stripe: APIConnectionError", answered=False)
        if self.calls == 1:
            self.real.charge_saved(**kwargs)  # charged; the answer never comes back
            return lost
        if self.now < self.back:
            return lost  # nothing reaches the processor
        if self.now - seen >= timedelta(hours=24):
            kwargs["idempotency_key"] = f"{key}:after-pruning"  # a new request to the processor
        return self.real.charge_saved(**kwargs)


def test_a_month_unanswered_for_a_day_is_left_for_reconciliation_not_charged_again(
    client, plan, monkeypatch
):
    from billing.services import subscriptions as services

    sign_up(client, "far@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    due = subscription.paid_until + timedelta(hours=1)
    gateway = OutOfReach(services.get_gateway(), back=due + timedelta(hours=30))
    monkeypatch.setattr(services, "get_gateway", lambda: gateway)

    at = due
    while at <= due + timedelta(hours=32):
        gateway.now = at
        subscriptions_collect(now=at)
        at += services.SUBSCRIPTION_CHARGE_LEASE

    invoice = SubscriptionInvoice.objects.get(period_start=subscription.paid_until)
    charged = SandboxIntent.objects.filter(
        metadata__invoice=str(invoice.pk), status="succeeded"
    ).count()
    # Before: asked again every 15 minutes for ever; once the processor was back, after its key
    # was forgotten, the month was charged a second time.
    assert charged == 1
    assert invoice.status == SubscriptionInvoice.Status.FAILED
    assert "did not answer" in invoice.last_error
    assert invoice.next_attempt_at is None
    calls = gateway.calls
    subscriptions_collect(now=at + timedelta(days=1))
    assert gateway.calls == calls  # nothing asked any more
    page = client.get("/driver/subscriptions/").content.decode()
    assert 'data-invoice-status="failed"' in page and "did not answer" in page
