"""A signed Stripe webhook whose JSON holds the escape \\u0000 is verified on its raw bytes and
processed, its NULs dropped from each text it stores; refusing it (the NUL middleware's 400)
made Stripe retry the event for days and never apply it. Other routes still refuse NULs."""

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from billing.models import Payment, WebhookEvent
from billing.services import guest_payment_record

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_nul_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
URL = "/billing/webhooks/stripe/"


@pytest.fixture
def stripe_mode(monkeypatch, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def pending(prop):
    return guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("32.67"),
        currency="EUR",
        reference="pi_3QxNulHold0001",
        email="g@example.com",
        gateway="stripe",
        status=Payment.Status.PENDING,
    )


def failed_event() -> bytes:
    """A payment_intent.payment_failed event as Stripe sends it (the escape, not a raw byte)."""
    event = {
        "id": "evt_1QxNul0001",
        "object": "event",
        "created": int(time.time()),
        "livemode": False,
        "type": "payment_intent.payment_failed",
        "data": {
            "object": {
                "id": "pi_3QxNulHold0001",
                "object": "payment_intent",
                "status": "requires_payment_method",
                "metadata": {"note\u0000": "a\u0000b"},
                "last_payment_error": {"message": "Your card was\u0000 declined."},
            }
        },
    }
    body = json.dumps(event).encode()
    assert b"\\u0000" in body
    return body


def signature(body: bytes, secret: str = SECRET) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_a_signed_event_with_nul_escapes_is_applied_and_stored_without_them(
    client, stripe_mode, pending
):
    body = failed_event()
    response = client.post(
        URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature(body)
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "duplicate": False}
    pending.refresh_from_db()
    assert pending.last_error == "Your card was declined."
    stored = WebhookEvent.objects.get(event_id="evt_1QxNul0001")
    assert stored.processed_at is not None
    assert stored.payload["data"]["object"]["metadata"] == {"note": "ab"}


def test_the_same_body_signed_with_another_secret_is_still_refused(client, stripe_mode, pending):
    body = failed_event()
    response = client.post(
        URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature(body, "x")
    )
    assert response.status_code == 400
    assert response.content.decode() == "The Stripe-Signature header is missing, wrong or too old."
    assert not WebhookEvent.objects.exists()
    pending.refresh_from_db()
    assert pending.last_error == ""


def test_other_routes_still_refuse_nul_in_json(client):
    response = client.post(
        "/api/v1/support/assistant/", b'{"message": "a\\u0000b"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Text may not contain the NUL character (\\0)."}
