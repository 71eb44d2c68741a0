"""The Stripe gateway against Stripe-shaped JSON responses: only the HTTP layer of the
official client is replaced; the stripe package builds the requests and parses the answers.

The recordings in stripe_recordings/ follow the documented PaymentIntent / Refund / error
objects of the Stripe API (test mode); no network access is needed."""

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import stripe

from billing.gateways import StripeGateway, get_gateway

RECORDINGS = Path(__file__).parent / "stripe_recordings"


class RecordedHTTP(stripe.HTTPClient):
    name = "recorded"

    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)
        self.requests = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {}),
                              "data": parse_qs(post_data or "")})
        name, status = self.replies.pop(0)
        return (RECORDINGS / f"{name}.json").read_text(), status, {"request-id": "req_test"}

    def close(self):
        pass


def gateway(*replies):
    http = RecordedHTTP(replies)
    return StripeGateway("sk_test_recorded", http_client=http), http


def test_authorize_creates_a_manual_capture_intent_with_an_idempotency_key():
    gw, http = gateway(("pi_requires_capture", 200))
    result = gw.authorize(Decimal("30.00"), "EUR", "4242 4242 4242 4242", "guest-hold-1")
    assert (result.ok, result.reference, result.amount) == (True, "pi_3QxTestHold0001", Decimal("30.00"))
    request = http.requests[0]
    assert request["method"] == "post" and request["url"].endswith("/v1/payment_intents")
    assert request["data"]["capture_method"] == ["manual"]
    assert request["data"]["amount"] == ["3000"] and request["data"]["currency"] == ["eur"]
    assert request["data"]["payment_method"] == ["pm_card_visa"]
    assert request["headers"]["Idempotency-Key"] == "auth-guest-hold-1"


def test_declined_card_returns_the_processor_message():
    gw, _http = gateway(("card_declined", 402))
    result = gw.authorize(Decimal("30.00"), "EUR", "4000000000000002", "guest-hold-2")
    assert result.ok is False and result.decline_reason == "Your card was declined."


def test_capture_sends_the_amount_in_minor_units():
    gw, http = gateway(("pi_requires_capture", 200), ("pi_captured", 200))
    result = gw.capture("pi_3QxTestHold0001", Decimal("5.45"), "capture:pi_3QxTestHold0001")
    assert (result.ok, result.amount) == (True, Decimal("5.45"))
    capture = http.requests[1]
    assert capture["url"].endswith("/v1/payment_intents/pi_3QxTestHold0001/capture")
    assert capture["data"]["amount_to_capture"] == ["545"]
    assert capture["headers"]["Idempotency-Key"] == "capture-capture:pi_3QxTestHold0001"


def test_release_cancels_the_intent():
    gw, http = gateway(("pi_canceled", 200))
    assert gw.release("pi_3QxTestHold0001", "release:pi_3QxTestHold0001").ok
    assert http.requests[0]["url"].endswith("/v1/payment_intents/pi_3QxTestHold0001/cancel")


def test_refund_is_created_for_the_intent():
    gw, http = gateway(("pi_captured", 200), ("refund_succeeded", 200))
    result = gw.refund("pi_3QxTestHold0001", Decimal("2.00"), "r1")
    assert (result.ok, result.reference, result.amount) == (True, "re_3QxTestRefund01", Decimal("2.00"))
    assert http.requests[1]["data"] == {"payment_intent": ["pi_3QxTestHold0001"], "amount": ["200"]}
    assert http.requests[1]["headers"]["Idempotency-Key"] == "refund-r1"


def test_gateway_is_chosen_by_environment(monkeypatch):
    monkeypatch.delenv("PAYMENT_GATEWAY", raising=False)
    assert get_gateway().name == "sandbox"
    monkeypatch.setenv("PAYMENT_GATEWAY", "stripe")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    assert isinstance(get_gateway(), StripeGateway)
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        get_gateway()


def test_recordings_are_valid_json():
    for path in RECORDINGS.glob("*.json"):
        json.loads(path.read_text())
