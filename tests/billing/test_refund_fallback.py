"""A refund without an answer for longer than the processor keeps its idempotency key
(REFUND_KEY_KEPT, 23 h) is no longer asked again: whether it was made is read from the
processor's own list of the payment's refunds (GET /v1/refunds?payment_intent=…), the refund
carrying its key in its metadata and its status, not from our refunded total, which only the
charge.refunded webhooks we happened to receive have moved (a missed webhook, or a dashboard
refund of the same amount, made that total say the wrong thing).

Only the HTTP layer of the official client is replaced (tests/billing/test_stripe_gateway.py)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
from django.utils import timezone

from billing.gateways import REFUND_KEY, StripeGateway
from billing.models import LedgerTransaction, Payment, Refund, RefundHold
from billing.services.refunds import REFUND_KEY_KEPT, RefundUnanswered, refund_issue
from billing.tasks import refunds_unanswered_settle_task
from tests.billing.test_stripe_gateway import RecordedHTTP

pytestmark = pytest.mark.django_db

NO_ANSWER = [("api_error", 500)] * 3  # the first request and the client's two retries
KEY = "admin:late"
PROCESSOR_KEY = f"refund:{KEY}"


class InlineHTTP(RecordedHTTP):
    """RecordedHTTP that also answers a (dict, status) reply with that JSON body."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        if self.replies and isinstance(self.replies[0][0], dict):
            body, status = self.replies.pop(0)
            self.replies.insert(0, ("api_error", status))  # recorded like the others
            super().request(method, url, headers, post_data)
            return json.dumps(body), status, {"request-id": "req_test"}
        return super().request(method, url, headers, post_data)


@pytest.fixture
def stripe_http(monkeypatch):
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    http = InlineHTTP([])
    gateway = StripeGateway("sk_test_recorded", http_client=http)
    monkeypatch.setattr("billing.services.refunds.get_gateway", lambda: gateway)
    return http


@pytest.fixture
def payment(prop):
    return Payment.objects.create(
        organization=prop.organization,
        email="card@example.com",
        currency="EUR",
        amount_held=Decimal("30.00"),
        amount_captured=Decimal("10.00"),
        reference="pi_3QxTestHold0001",
        status="captured",
        gateway="stripe",
    )


def _refund(re_id, amount_minor, status, *, key="", created=None):
    return {
        "id": re_id,
        "object": "refund",
        "amount": amount_minor,
        "currency": "eur",
        "payment_intent": "pi_3QxTestHold0001",
        "status": status,
        "created": created if created is not None else int(timezone.now().timestamp()),
        "metadata": {REFUND_KEY: key} if key else {},
    }


def _listing(*refunds):
    return {"object": "list", "data": list(refunds), "has_more": False, "url": "/v1/refunds"}


def _unanswered_a_day_ago(stripe_http, payment):
    """An 8.00 refund whose answer was lost, asked more than REFUND_KEY_KEPT ago."""
    stripe_http.replies = [("pi_captured", 200), *NO_ANSWER]
    with pytest.raises(RefundUnanswered):
        refund_issue(
            payment=payment,
            amount=Decimal("8.00"),
            reason="Charger faulty",
            source=Refund.Source.SUPPORT,
            idempotency_key=KEY,
        )
    post = stripe_http.requests[-1]
    assert post["data"][f"metadata[{REFUND_KEY}]"] == [PROCESSOR_KEY]  # the key rides along
    created = timezone.now() - REFUND_KEY_KEPT - timedelta(hours=1)
    RefundHold.objects.update(created_at=created)
    return int(created.timestamp())


def _lists(stripe_http):
    return [r for r in stripe_http.requests if r["method"] == "get" and "/v1/refunds" in r["url"]]


def test_a_refund_made_but_never_heard_of_is_booked_from_the_processors_list(stripe_http, payment):
    """The refund went through but no charge.refunded webhook arrived: our refunded total still
    says 0. The processor's list has the refund with our key: booked once, with its id."""
    asked = _unanswered_a_day_ago(stripe_http, payment)
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    stripe_http.replies = [
        (_listing(_refund("re_Late800", 800, "succeeded", key=PROCESSOR_KEY, created=asked)), 200)
    ]
    assert refunds_unanswered_settle_task.delay().result == 1
    refund = Refund.objects.get()
    assert (refund.amount, refund.gateway_reference, refund.reason) == (
        Decimal("8.00"),
        "re_Late800",
        "Charger faulty",
    )
    [listed] = _lists(stripe_http)
    assert "payment_intent=pi_3QxTestHold0001" in listed["url"]
    assert not any(r["method"] == "post" for r in stripe_http.requests[-1:])  # not asked again
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("8.00")
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert not RefundHold.objects.exists()

    # Nothing left: a second run asks nothing and books nothing.
    requests = len(stripe_http.requests)
    assert refunds_unanswered_settle_task.delay().result == 0
    assert len(stripe_http.requests) == requests and Refund.objects.count() == 1


def test_a_dashboard_refund_of_the_same_amount_is_not_taken_for_ours(stripe_http, payment):
    """Someone refunded 8.00 in the processor's dashboard before ours was asked (its webhook
    raised our refunded total to 8.00); ours never reached the processor. Our total alone said
    "made"; the list says it was not: nothing is booked, the ledger is not doubled."""
    asked = _unanswered_a_day_ago(stripe_http, payment)
    Payment.objects.filter(pk=payment.pk).update(amount_refunded=Decimal("8.00"))  # the webhook
    stripe_http.replies = [
        (_listing(_refund("re_Dash800", 800, "succeeded", created=asked - 600)), 200)
    ]
    assert refunds_unanswered_settle_task.delay().result == 0
    assert not Refund.objects.exists() and not RefundHold.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="refund").exists()
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("8.00")


def test_a_failed_refund_with_our_key_is_not_made(stripe_http, payment):
    asked = _unanswered_a_day_ago(stripe_http, payment)
    stripe_http.replies = [
        (_listing(_refund("re_Fail800", 800, "failed", key=PROCESSOR_KEY, created=asked)), 200)
    ]
    assert refunds_unanswered_settle_task.delay().result == 0
    assert not Refund.objects.exists() and not RefundHold.objects.exists()


def test_no_refund_with_our_key_is_not_made_and_frees_the_amount(stripe_http, payment):
    _unanswered_a_day_ago(stripe_http, payment)
    stripe_http.replies = [(_listing(), 200)]
    assert refunds_unanswered_settle_task.delay().result == 0
    assert not RefundHold.objects.exists()
    # The 8.00 is free again: refunded now with a new key.
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded_800", 200)]
    refund = refund_issue(
        payment=payment,
        amount=Decimal("8.00"),
        reason="Charger faulty",
        source=Refund.Source.SUPPORT,
        idempotency_key="admin:again",
    )
    assert refund.amount == Decimal("8.00") and Refund.objects.count() == 1


def test_a_refund_asked_before_refunds_carried_their_key_is_matched_by_amount(stripe_http, payment):
    """A refund made without the key in its metadata (asked before this release): one of the
    hold's amount made since it, booked under no refund here, is taken as it (booking money that
    went back is safer than refunding it again)."""
    asked = _unanswered_a_day_ago(stripe_http, payment)
    stripe_http.replies = [(_listing(_refund("re_Old800", 800, "pending", created=asked + 5)), 200)]
    assert refunds_unanswered_settle_task.delay().result == 1
    assert Refund.objects.get().gateway_reference == "re_Old800"


def test_the_list_unanswered_keeps_the_hold_for_the_next_run(stripe_http, payment):
    asked = _unanswered_a_day_ago(stripe_http, payment)
    stripe_http.replies = list(NO_ANSWER)
    assert refunds_unanswered_settle_task.delay().result == 0
    hold = RefundHold.objects.get()
    assert hold.unanswered_since is not None and not Refund.objects.exists()
    # Nothing more can be refunded meanwhile: the hold still counts.
    with pytest.raises(Exception, match="At most 2.00 EUR"):
        stripe_http.replies = [*NO_ANSWER]
        refund_issue(
            payment=payment,
            amount=Decimal("3.00"),
            reason="Other",
            source=Refund.Source.SUPPORT,
            idempotency_key="admin:other",
        )
    stripe_http.replies = [
        (_listing(_refund("re_Late800", 800, "succeeded", key=PROCESSOR_KEY, created=asked)), 200)
    ]
    assert refunds_unanswered_settle_task.delay().result == 1
    assert Refund.objects.get().gateway_reference == "re_Late800"


def test_the_sandbox_lists_its_refunds_with_their_keys(settings):
    """The sandbox answers the same question (docs: PAYMENT_GATEWAY=sandbox)."""
    from billing.gateways import get_gateway
    from billing.models import SandboxIntent

    settings.PAYMENT_GATEWAY = "sandbox"
    gateway = get_gateway()
    SandboxIntent.objects.create(
        id="pi_sbx_list",
        amount=1000,
        currency="eur",
        amount_received=1000,
        status="succeeded",
        client_secret="pi_sbx_list_secret",
    )
    assert gateway.refunds_list("pi_sbx_list") == []
    first = gateway.refund("pi_sbx_list", Decimal("3.00"), idempotency_key="refund:a")
    second = gateway.refund("pi_sbx_list", Decimal("2.50"), idempotency_key="refund:b")
    gateway.refund("pi_sbx_list", Decimal("2.50"), idempotency_key="refund:b")  # a replay
    listed = gateway.refunds_list("pi_sbx_list")
    assert [(r.reference, r.amount, r.key, r.made) for r in listed] == [
        (second.reference, Decimal("2.50"), "refund:b", True),
        (first.reference, Decimal("3.00"), "refund:a", True),
    ]
