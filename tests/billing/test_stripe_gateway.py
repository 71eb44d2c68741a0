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

    def close(self):
        pass


def gateway(*replies):
    http = RecordedHTTP(replies)
    return StripeGateway("sk_test_recorded", http_client=http), http


def test_hold_is_a_manual_capture_intent_for_the_browser_to_confirm():
    gw, http = gateway(("pi_created", 200))
    intent = gw.hold_create(
        amount=Decimal("32.67"),
        currency="EUR",
        idempotency_key="guest-hold-k1",
        metadata={"guest_session": "k1"},
        description="Charging at HB-Lot-01",
    )
    assert (intent.reference, intent.status, intent.amount) == (
        "pi_3QxTestHold0002",
        "requires_payment_method",
        Decimal("32.67"),
    )
    assert intent.client_secret == "pi_3QxTestHold0002_secret_Xy12AbCdEfGh"
    request = http.requests[0]
    assert request["method"] == "post" and request["url"].endswith("/v1/payment_intents")
    assert request["data"]["capture_method"] == ["manual"]
    assert request["data"]["amount"] == ["3267"] and request["data"]["currency"] == ["eur"]
    assert request["data"]["metadata[guest_session]"] == ["k1"]
    # Not confirmed here and no card data: the Payment Element confirms it in the browser.
    assert "confirm" not in request["data"] and "payment_method" not in request["data"]
    assert request["headers"]["Idempotency-Key"] == "hold-guest-hold-k1"


def test_server_side_confirmation_takes_a_payment_method_id():
    gw, http = gateway(("pi_requires_capture", 200))
    result = gw.authorize(Decimal("30.00"), "EUR", "pm_card_visa", "guest-hold-1")
    assert (result.ok, result.reference, result.amount) == (
        True,
        "pi_3QxTestHold0001",
        Decimal("30.00"),
    )
    assert http.requests[0]["data"]["payment_method"] == ["pm_card_visa"]
    assert http.requests[0]["data"]["confirm"] == ["true"]


def test_three_d_secure_is_the_intents_next_action():
    gw, _http = gateway(("pi_requires_action", 200))
    intent = gw.hold_create(
        amount=Decimal("30"),
        currency="EUR",
        idempotency_key="k3",
        metadata={},
        payment_method="pm_card_authenticationRequired",
        return_url="https://charge.example/r",
    )
    assert intent.status == "requires_action" and not intent.held
    assert intent.next_action_url.startswith("https://hooks.stripe.com/3d_secure_2/")


def test_hold_get_reads_the_card_from_the_latest_charge():
    gw, http = gateway(("pi_held_with_charge", 200))
    intent = gw.hold_get("pi_3QxTestHold0002")
    assert intent.held and intent.last4 == "4242" and intent.amount_capturable == Decimal("32.67")
    assert http.requests[0]["method"] == "get" and "expand" in http.requests[0]["url"]


def test_declined_card_returns_the_processor_message():
    gw, _http = gateway(("card_declined", 402))
    result = gw.authorize(Decimal("30.00"), "EUR", "pm_card_chargeDeclined", "guest-hold-2")
    assert result.ok is False and result.decline_reason == "Your card was declined."
    assert result.reference == "pi_3QxTestDecl0001"


@pytest.mark.parametrize(
    "recording, status, hidden",
    [("no_such_customer", 404, "cus_QxGone01"), ("invalid_api_key", 401, "sk_live_")],
)
def test_the_processors_developer_words_never_reach_a_page(recording, status, hidden):
    """Stripe's messages other than a card's are written for developers (object ids, a masked
    key): the pages and the API say ours; the processor's go to the log."""
    from billing.gateways import PROCESSOR_FAILED, GatewayError

    gw, _http = gateway((recording, status))
    with pytest.raises(GatewayError) as refused:
        gw.hold_get("pi_3QxTestHold0002")
    assert str(refused.value) == PROCESSOR_FAILED and hidden not in str(refused.value)
    gw, _http = gateway((recording, status))
    with pytest.raises(GatewayError) as refused:
        gw.setup_intent_create(customer="cus_QxGone01", idempotency_key="driver-9")
    assert str(refused.value) == PROCESSOR_FAILED


def test_zero_decimal_currency_is_sent_without_cents():
    gw, http = gateway(("pi_created", 200))
    gw.hold_create(amount=Decimal("2700"), currency="JPY", idempotency_key="jpy", metadata={})
    assert http.requests[0]["data"]["amount"] == ["2700"] and http.requests[0]["data"][
        "currency"
    ] == ["jpy"]


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
    assert (result.ok, result.reference, result.amount) == (
        True,
        "re_3QxTestRefund01",
        Decimal("2.00"),
    )
    assert http.requests[1]["data"] == {
        "payment_intent": ["pi_3QxTestHold0001"],
        "amount": ["200"],
        "metadata[refund_key]": ["r1"],  # found by it once Stripe forgot the key (23 h)
    }
    assert http.requests[1]["headers"]["Idempotency-Key"] == "refund-r1"


def test_gateway_is_chosen_by_setting(monkeypatch, settings):
    settings.PAYMENT_GATEWAY = "sandbox"
    assert get_gateway().name == "sandbox"
    settings.PAYMENT_GATEWAY = "stripe"
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    assert isinstance(get_gateway(), StripeGateway)
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        get_gateway()


def test_recordings_are_valid_json():
    for path in RECORDINGS.glob("*.json"):
        json.loads(path.read_text())


def test_capture_retried_after_a_lost_answer_reuses_the_idempotency_key(monkeypatch):
    """Stripe answers a replayed key with the first result: a retry can never capture twice."""
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    gw, http = gateway(("pi_requires_capture", 200), ("api_error", 500), ("pi_captured", 200))
    result = gw.capture("pi_3QxTestHold0001", Decimal("5.45"), "capture:pi_3QxTestHold0001")
    assert result.ok
    captures = [r for r in http.requests if r["url"].endswith("/capture")]
    assert len(captures) == 2
    assert {r["headers"]["Idempotency-Key"] for r in captures} == {
        "capture-capture:pi_3QxTestHold0001"
    }
