"""The Stripe gateway's saved-card calls against Stripe-shaped JSON (as tests/billing/
test_stripe_gateway.py: only the HTTP layer of the official client is replaced)."""

from decimal import Decimal
from pathlib import Path

from billing.gateways import StripeGateway
from tests.billing.test_stripe_gateway import RecordedHTTP

RECORDINGS = Path(__file__).parent / "stripe_recordings"


class Recorded(RecordedHTTP):
    def request(self, method, url, headers, post_data=None, *, _usage=None):
        from urllib.parse import parse_qs

        self.requests.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers or {}),
                "data": parse_qs(post_data or ""),
            }
        )
        name, status = self.replies.pop(0)
        return (RECORDINGS / f"{name}.json").read_text(), status, {"request-id": "req_test"}


def gateway(*replies):
    http = Recorded(replies)
    return StripeGateway("sk_test_recorded", http_client=http), http


def test_customer_and_setup_intent_for_the_payment_element():
    gw, http = gateway(("customer_created", 200), ("seti_created", 200))
    customer = gw.customer_create(email="driver@example.com", idempotency_key="driver-1")
    intent = gw.setup_intent_create(customer=customer, idempotency_key="driver-1-a")
    assert customer == "cus_QxTestDriver01"
    assert (intent.reference, intent.status, intent.customer) == (
        "seti_1QxTestSetup01",
        "requires_payment_method",
        "cus_QxTestDriver01",
    )
    assert intent.client_secret == "seti_1QxTestSetup01_secret_AbCdEf123"
    assert http.requests[0]["url"].endswith("/v1/customers")
    assert http.requests[0]["headers"]["Idempotency-Key"] == "customer-driver-1"
    setup = http.requests[1]
    assert setup["url"].endswith("/v1/setup_intents") and setup["data"]["usage"] == ["off_session"]
    assert (
        setup["data"]["customer"] == ["cus_QxTestDriver01"]
        and "payment_method" not in setup["data"]
    )


def test_the_saved_card_is_read_from_the_confirmed_setup_intent_and_detached():
    gw, http = gateway(
        ("seti_succeeded", 200), ("pm_card", 200), ("pm_detached", 200), ("customer_deleted", 200)
    )
    intent = gw.setup_intent_get("seti_1QxTestSetup01")
    card = gw.payment_method_get(intent.payment_method)
    assert (
        card.reference,
        card.brand,
        card.last4,
        card.exp_month,
        card.exp_year,
        card.customer,
    ) == ("pm_1QxTestCard0001", "visa", "4242", 12, 2034, "cus_QxTestDriver01")
    gw.payment_method_detach(card.reference)
    assert http.requests[2]["method"] == "post" and http.requests[2]["url"].endswith(
        "/v1/payment_methods/pm_1QxTestCard0001/detach"
    )
    gw.customer_delete("cus_QxTestDriver01")
    assert http.requests[3]["method"] == "delete" and http.requests[3]["url"].endswith(
        "/v1/customers/cus_QxTestDriver01"
    )


def test_monthly_fee_is_an_off_session_charge_and_a_decline_is_reported():
    gw, http = gateway(("pi_off_session_succeeded", 200), ("card_declined_off_session", 402))
    ok = gw.charge_saved(
        amount=Decimal("25.00"),
        currency="EUR",
        customer="cus_QxTestDriver01",
        payment_method="pm_1QxTestCard0001",
        idempotency_key="subscription-invoice:9:1",
        metadata={"invoice": "9"},
    )
    assert (ok.ok, ok.reference, ok.amount) == (True, "pi_3QxTestFee00001", Decimal("25.00"))
    data = http.requests[0]["data"]
    assert (
        data["off_session"] == ["true"]
        and data["confirm"] == ["true"]
        and data["amount"] == ["2500"]
    )
    assert "capture_method" not in data  # captured at once, not a hold
    assert http.requests[0]["headers"]["Idempotency-Key"] == "charge-subscription-invoice:9:1"
    refused = gw.charge_saved(
        amount=Decimal("25.00"),
        currency="EUR",
        customer="cus_QxTestDriver01",
        payment_method="pm_1QxTestCard0001",
        idempotency_key="subscription-invoice:9:2",
        metadata={},
    )
    assert (refused.ok, refused.reference, refused.decline_reason) == (
        False,
        "pi_3QxTestFee00002",
        "Your card has insufficient funds.",
    )


class Unreachable(Recorded):
    def request(self, method, url, headers, post_data=None, *, _usage=None):
        import stripe

        self.requests.append({"headers": dict(headers or {})})
        raise stripe.APIConnectionError("connection reset while reading the answer")


def test_a_monthly_fee_without_an_answer_is_not_a_decline():
    http = Unreachable([])
    gw = StripeGateway("sk_test_recorded", http_client=http)
    result = gw.charge_saved(
        amount=Decimal("25.00"),
        currency="EUR",
        customer="cus_QxTestDriver01",
        payment_method="pm_1QxTestCard0001",
        idempotency_key="subscription-invoice:9:1",
        metadata={"invoice": "9"},
    )
    assert (result.ok, result.answered) == (False, False)
    # The client's own retries reuse the key, as our next run will.
    assert {r["headers"]["Idempotency-Key"] for r in http.requests} == {
        "charge-subscription-invoice:9:1"
    }
