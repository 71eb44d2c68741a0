"""Events Stripe sent while we could not take them are lost once its retries run out: the
backfill lists its events since the last backfill and applies each one never received, once,
through the same store-and-apply as a delivery (the admin's button and the periodic task).

Only the HTTP layer of the official client is replaced (tests/billing/test_stripe_gateway.py)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.gateways import StripeGateway
from billing.models import Payment, WebhookBackfill, WebhookEvent
from billing.services import guest_payment_record
from billing.tasks import webhook_events_backfill_task
from tests.billing.test_stripe_gateway import RECORDINGS, RecordedHTTP
from tests.billing.test_webhooks import SECRET, post, signed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_http(monkeypatch, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    http = RecordedHTTP([])
    gateway = StripeGateway("sk_test_recorded", http_client=http)
    monkeypatch.setattr("billing.gateways.get_gateway", lambda: gateway)
    return http


@pytest.fixture
def pending(prop):
    return guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("32.67"),
        currency="EUR",
        reference="pi_3QxTestHold0002",
        email="g@example.com",
        gateway="stripe",
        status=Payment.Status.PENDING,
    )


def _listed_since(request) -> int:
    return int(request["url"].split("created[gte]=")[1].split("&")[0])


def test_events_never_received_are_applied_once_by_the_admin_and_the_periodic_run(
    client, stripe_http, pending
):

    listed = json.loads((RECORDINGS / "events_list.json").read_text())["data"]
    late, lost = listed  # newest first, as Stripe lists
    # We are back: Stripe's retry of the recent event arrives; the older one's retries ran out.
    late["created"] = int(timezone.now().timestamp())
    payload, header = signed(late)
    assert post(client, payload, header).status_code == 200
    assert WebhookEvent.objects.count() == 1

    agent = Client()
    agent.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert "Fetch events missed" in agent.get("/admin/billing/webhookevent/").content.decode()
    stripe_http.replies = [("events_list", 200)]
    started = timezone.now()
    done = agent.post("/admin/billing/webhookevent/backfill/", follow=True)
    said = [str(m) for m in done.context["messages"]]
    assert any("2 listed, 1 never received here and now applied" in m for m in said), said
    # Listed from three days back (the first run), not from the newest event received.
    since = _listed_since(stripe_http.requests[0])
    assert abs(since - (started - timedelta(days=3)).timestamp()) < 60
    pending.refresh_from_db()
    assert (pending.status, pending.card_last4) == (Payment.Status.AUTHORIZED, "4242")
    stored = WebhookEvent.objects.get(event_id=lost["id"])
    assert stored.processed_at is not None and stored.type == lost["type"]
    mark = WebhookBackfill.objects.get(account="")

    # The periodic run lists again from its mark (less an overlap) and applies nothing twice.
    stripe_http.replies = [("events_list", 200)]
    counts = webhook_events_backfill_task.delay().result
    assert counts == {"listed": 2, "applied": 0, "failed": 0}
    since = _listed_since(stripe_http.requests[1])
    assert since == int((mark.listed_until - timedelta(minutes=10)).timestamp())
    assert WebhookEvent.objects.count() == 2
    # A delivery of the backfilled event now is a replay: stored once, applied once.
    payload, header = signed({**lost, "created": int(timezone.now().timestamp())})
    assert post(client, payload, header).status_code == 200
    assert WebhookEvent.objects.filter(event_id=lost["id"]).count() == 1


def test_the_mark_stays_when_stripe_does_not_list(stripe_http, monkeypatch):
    import stripe

    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    stripe_http.replies = [("api_error", 500)] * 3
    assert webhook_events_backfill_task.delay().result == {"listed": 0, "applied": 0, "failed": 1}
    assert not WebhookBackfill.objects.exists()  # the next run lists from as far back again


def test_the_hourly_payout_run_backfills_first(stripe_http):
    from billing.tasks import payouts_run_task

    stripe_http.replies = [("events_list", 200)]
    payouts_run_task.delay()
    assert stripe_http.requests and "/v1/events" in stripe_http.requests[0]["url"]
    assert WebhookEvent.objects.count() == 2 and WebhookBackfill.objects.filter(account="").exists()
