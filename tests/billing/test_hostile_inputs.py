"""Hostile or malformed webhook deliveries: a clear 4xx for what is not a genuine event, an
acknowledged 200 (stored with the reason, nothing applied) for a genuine event whose object
cannot be applied, and never a 500 or the library's own words in the answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from billing.models import Payment, WebhookEvent
from tests.billing.test_webhooks import (  # noqa: F401 (fixtures)
    SECRET,
    event,
    intent,
    pending,
    post,
    signed,
    stripe_mode,
)

# Stripe's gateway and its endpoint secret (the fixture of tests/billing/test_webhooks.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_mode")]


@pytest.mark.parametrize(
    "body, header",
    [
        (b"\xff\xfe{}", "t=1,v1=00"),  # not UTF-8: stripe's decode raised UnicodeDecodeError
        (b"{}", f"t={int(time.time())},v1=\u00e9\u00e9"),  # compare_digest raised TypeError
    ],
    ids=["not-utf8", "non-ascii-signature"],
)
def test_bytes_no_genuine_event_has_are_refused_with_400(client, body, header):
    response = post(client, body, header)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_wrong_signature_answer_has_our_words_not_the_librarys(client):
    payload, header = signed(event("payment_intent.succeeded", intent("succeeded")), "whsec_x")
    response = post(client, payload, header)
    assert response.status_code == 400
    assert response.content.decode() == "The Stripe-Signature header is missing, wrong or too old."


@pytest.mark.parametrize(
    "envelope",
    [
        {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": []},
        {
            "id": "evt_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": "x"},
        },
        {**event("payment_intent.succeeded", {"id": "pi_1"}), "id": "e" * 101},
    ],
    ids=["data-list", "object-string", "id-too-long"],
)
def test_a_signed_body_that_is_no_event_is_refused_with_400(client, envelope):
    response = post(client, *signed(envelope))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_number_json_cannot_store_is_refused_with_400(client, pending):  # noqa: F811
    body = event("payment_intent.amount_capturable_updated", intent("requires_capture"))
    text = json.dumps(body).replace('"amount_capturable": 0', '"amount_capturable": 1e400')
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.{text}".encode(), hashlib.sha256).hexdigest()
    # 1e400 reads as infinity, which the JSON column refused with a DataError (a 500).
    response = post(client, text.encode(), f"t={t},v1={mac}")
    assert response.status_code == 400
    pending.refresh_from_db()
    assert pending.status == Payment.Status.PENDING and not WebhookEvent.objects.exists()


MALFORMED = {
    "amount-as-string": ("payment_intent.succeeded", intent("succeeded", amount_received="545")),
    "amount-huge": ("payment_intent.succeeded", intent("succeeded", amount_received=10**30)),
    "amount-negative": ("payment_intent.succeeded", intent("succeeded", amount_received=-500)),
    "hold-huge": (
        "payment_intent.amount_capturable_updated",
        intent("requires_capture", amount_capturable=10**20),
    ),
    "error-not-object": (
        "payment_intent.payment_failed",
        intent("requires_payment_method", last_payment_error="declined"),
    ),
    "card-not-object": (
        "payment_intent.amount_capturable_updated",
        intent(
            "requires_capture",
            amount_capturable=3267,
            latest_charge={"id": "ch_1", "payment_method_details": "card"},
        ),
    ),
    "no-id": ("payment_intent.succeeded", {"object": "payment_intent", "amount_received": 5}),
    "refund-as-string": (
        "charge.refunded",
        {"id": "ch_1", "payment_intent": "pi_3QxTestHold0002", "amount_refunded": "1x"},
    ),
    "metadata-not-object": ("payout.paid", {"id": "po_1", "amount": 5, "metadata": "x"}),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_genuine_event_that_cannot_be_applied_is_acknowledged_and_changes_nothing(
    client,
    pending,  # noqa: F811
    name,
):
    kind, obj = MALFORMED[name]
    payload, header = signed(event(kind, obj, event_id=f"evt_bad_{name}"))
    response = post(client, payload, header)
    # A permanent problem: a 500 made Stripe retry it for days; acknowledged, kept with why.
    assert response.status_code == 200
    assert response.json()["received"] is True and response.json()["not_applied"]
    pending.refresh_from_db()
    assert (pending.status, pending.amount_held, pending.amount_captured, pending.last_error) == (
        Payment.Status.PENDING,
        Decimal("32.67"),
        Decimal("0"),
        "",
    )
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is None and stored.error
    assert "Traceback" not in response.content.decode()
    again = post(client, payload, header)
    assert again.status_code == 200 and again.json()["duplicate"] is True
