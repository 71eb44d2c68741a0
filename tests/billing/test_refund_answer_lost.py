"""A refund whose answer from Stripe was lost (no connection, its 5xx, or its 409 "another request
with this idempotency key is in progress" beyond the client's two retries): the person is told
plainly that it may have been made, nothing more is refunded meanwhile (not from a new form
either), and the refund row appears once, when Stripe answers the same key again.

Only the HTTP layer of the official client is replaced (tests/billing/test_stripe_gateway.py)."""

from decimal import Decimal

import pytest
import stripe
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from billing.gateways import StripeGateway
from billing.models import LedgerTransaction, Payment, Refund, RefundHold
from billing.tasks import refunds_unanswered_settle_task
from tests.billing.helpers import paid_session, unit_rate
from tests.billing.test_stripe_gateway import RecordedHTTP
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NO_ANSWER = [("api_error", 500)] * 3  # the first request and the client's two retries


@pytest.fixture
def stripe_http(monkeypatch):
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    http = RecordedHTTP([])
    gateway = StripeGateway("sk_test_recorded", http_client=http)
    monkeypatch.setattr("billing.services.refunds.get_gateway", lambda: gateway)
    return http


def _refund_posts(http):
    return [r for r in http.requests if r["method"] == "post" and r["url"].endswith("/v1/refunds")]


def _admin_refund(client, payment, amount, nonce):
    response = client.post(
        "/admin/billing/payment/",
        {
            "action": "refund_payment",
            ACTION_CHECKBOX_NAME: [payment.pk],
            "apply": "1",
            "amount": amount,
            "reason": "Charger faulty",
            "nonce": nonce,
        },
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


def test_a_refund_without_an_answer_is_never_made_twice_and_is_booked_once_known(
    prop, charger, stripe_http
):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    assert payment.amount_captured == Decimal("10.00")
    agent = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(agent)

    stripe_http.replies = [("pi_captured", 200), *NO_ANSWER]
    said = _admin_refund(client, payment, "8.00", "n1")
    assert any("did not answer" in m and "Do not issue it again" in m for m in said), said
    assert not Refund.objects.exists()
    assert RefundHold.objects.get().unanswered_since is not None

    # A new form (its own key) while Stripe is still down: the first refund is asked again with
    # its own key, and the new one may only take what is left beside it.
    stripe_http.replies = [("pi_captured", 200), *NO_ANSWER]
    said = _admin_refund(client, payment, "8.00", "n2")
    assert any("At most 2.00 EUR" in m for m in said), said
    assert not Refund.objects.exists()

    # Stripe is back: the periodic run asks the same key once more and books what it answers.
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded_800", 200)]
    assert refunds_unanswered_settle_task.delay().result == 1
    refund = Refund.objects.get()
    assert (refund.idempotency_key, refund.amount, refund.gateway_reference) == (
        "admin:n1",
        Decimal("8.00"),
        "re_3QxTestRefund08",
    )
    assert (refund.reason, refund.created_by, refund.source) == ("Charger faulty", agent, "support")
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("8.00")
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert not RefundHold.objects.exists()
    keys = {r["headers"]["Idempotency-Key"] for r in _refund_posts(stripe_http)}
    assert keys == {"refund-refund:admin:n1"}  # the second form's refund never reached Stripe
    assert len(_refund_posts(stripe_http)) == 7

    # Nothing left to ask.
    asked = len(stripe_http.requests)
    assert refunds_unanswered_settle_task.delay().result == 0
    assert len(stripe_http.requests) == asked and Refund.objects.count() == 1


def test_stripes_409_beyond_the_retries_is_told_and_the_same_key_books_it_once(
    api_client, host, prop, charger, stripe_http
):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    api_client.force_authenticate(host)
    body = {"amount": "8.00", "reason": "Charger faulty", "idempotency_key": "api-409"}
    url = f"/api/v1/payments/{payment.pk}/refund/"

    stripe_http.replies = [("pi_captured", 200), *[("idempotency_key_in_use", 409)] * 3]
    answer = api_client.post(url, body, format="json")
    assert answer.status_code == 504, answer.content
    assert "not known yet" in answer.json()["detail"]
    assert not Refund.objects.exists()

    # Another key meanwhile cannot refund what the first may have taken.
    stripe_http.replies = [("pi_captured", 200), *[("idempotency_key_in_use", 409)] * 3]
    other = api_client.post(url, {**body, "idempotency_key": "api-other"}, format="json")
    assert other.status_code == 400 and "At most 2.00 EUR" in str(other.json())

    # The caller sends the same key again once Stripe has finished the first request.
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded_800", 200)]
    again = api_client.post(url, body, format="json")
    assert again.status_code == 201, again.content
    assert again.json()["payment"]["amount_refunded"] == "8.00"
    assert list(Refund.objects.values_list("idempotency_key", flat=True)) == ["api-409"]
    assert {r["headers"]["Idempotency-Key"] for r in _refund_posts(stripe_http)} == {
        "refund-refund:api-409"
    }
    assert not RefundHold.objects.exists()
