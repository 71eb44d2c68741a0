"""Webhooks are the source of truth: Stripe-format events, signatures checked for real
(HMAC-SHA256 over "t.payload", computed here independently of the code under test)."""

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from billing import sandbox
from billing.gateways import get_gateway
from billing.models import Payment, WebhookEvent
from billing.services import guest_payment_record

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_5f0c1e2d3c4b5a69788796a5b4c3d2e1"


def signed(event: dict, secret: str = SECRET, at: int | None = None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={mac}"


def event(kind: str, obj: dict, event_id: str = "evt_1QxTest0001") -> dict:
    # The documented event envelope (docs.stripe.com/api/events/object).
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-06-30.basil",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def intent(status: str, **kw) -> dict:
    base = {
        "id": "pi_3QxTestHold0002",
        "object": "payment_intent",
        "amount": 3267,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "manual",
        "currency": "eur",
        "livemode": False,
        "metadata": {},
        "status": status,
        "last_payment_error": None,
        "latest_charge": None,
    }
    base.update(kw)
    return base


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
        reference="pi_3QxTestHold0002",
        email="g@example.com",
        gateway="stripe",
        status=Payment.Status.PENDING,
    )


def post(client, payload: bytes, header: str):
    return client.post(
        "/billing/webhooks/stripe/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def test_signed_capturable_event_authorizes_the_hold(client, stripe_mode, pending):
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_method_details": {"type": "card", "card": {"last4": "4242"}},
    }
    payload, header = signed(
        event(
            "payment_intent.amount_capturable_updated",
            intent("requires_capture", amount_capturable=3267, latest_charge=charge),
        )
    )
    response = post(client, payload, header)
    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.status, pending.amount_held, pending.card_last4) == (
        Payment.Status.AUTHORIZED,
        Decimal("32.67"),
        "4242",
    )
    assert WebhookEvent.objects.get().processed_at is not None


@pytest.mark.parametrize("tamper", ["secret", "body", "old", "missing"])
def test_unsigned_or_tampered_events_change_nothing(client, stripe_mode, pending, tamper):
    body = event(
        "payment_intent.amount_capturable_updated",
        intent("requires_capture", amount_capturable=3267),
    )
    payload, header = signed(
        body,
        secret="whsec_wrong" if tamper == "secret" else SECRET,
        at=int(time.time()) - 600 if tamper == "old" else None,
    )
    if tamper == "body":
        payload = payload.replace(b"3267", b"9999")
    response = post(client, payload, "" if tamper == "missing" else header)
    assert response.status_code == 400
    pending.refresh_from_db()
    assert pending.status == Payment.Status.PENDING and not WebhookEvent.objects.exists()


def test_a_redelivered_event_is_applied_once(client, stripe_mode, pending):
    Payment.objects.filter(pk=pending.pk).update(
        status=Payment.Status.CAPTURED,
        amount_captured=Decimal("5.45"),
        amount_refunded=Decimal("0"),
    )
    refund = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_3QxTestHold0002",
        "amount": 3267,
        "amount_captured": 545,
        "amount_refunded": 200,
        "refunded": False,
        "currency": "eur",
    }
    payload, header = signed(event("charge.refunded", refund, "evt_refund_1"))
    assert post(client, payload, header).json() == {"received": True, "duplicate": False}
    assert post(client, payload, header).json() == {"received": True, "duplicate": True}
    pending.refresh_from_db()
    assert pending.amount_refunded == Decimal("2.00")
    assert WebhookEvent.objects.count() == 1


def test_failed_and_canceled_events(client, stripe_mode, pending):
    failed = intent(
        "requires_payment_method",
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    post(client, *signed(event("payment_intent.payment_failed", failed, "evt_f")))
    pending.refresh_from_db()
    assert (
        pending.status == Payment.Status.PENDING and pending.last_error == "Your card was declined."
    )
    post(
        client,
        *signed(
            event(
                "payment_intent.canceled",
                intent("canceled", cancellation_reason="abandoned"),
                "evt_c",
            )
        ),
    )
    pending.refresh_from_db()
    assert pending.status == Payment.Status.RELEASED and "abandoned" in pending.release_reason


def test_succeeded_event_records_the_captured_amount(client, stripe_mode, pending):
    Payment.objects.filter(pk=pending.pk).update(status=Payment.Status.AUTHORIZED)
    post(
        client,
        *signed(
            event("payment_intent.succeeded", intent("succeeded", amount_received=545), "evt_s")
        ),
    )
    pending.refresh_from_db()
    assert pending.status == Payment.Status.CAPTURED and pending.amount_captured == Decimal("5.45")


def _payout_of(prop, account: str = "acct_1HostHarbour"):
    from django.utils import timezone

    from billing.models import BillingSettings, Payout

    BillingSettings.objects.create(organization_id=prop.organization_id, payout_account_id=account)
    return Payout.objects.create(
        organization_id=prop.organization_id,
        currency="EUR",
        period_start=timezone.now(),
        period_end=timezone.now(),
        net=Decimal("12.30"),
        reference="PO-TEST-1",
    )


def _payout_event(kind: str, event_id: str, account: str | None) -> dict:
    obj = {
        "id": "po_1",
        "object": "payout",
        "amount": 1230,
        "currency": "eur",
        "status": "paid" if kind == "payout.paid" else "failed",
        "failure_code": None if kind == "payout.paid" else "account_closed",
        "metadata": {"payout_reference": "PO-TEST-1"},
    }
    envelope = event(kind, obj, event_id)
    if account is not None:
        envelope["account"] = account  # a Connect event names the connected account
    return envelope


def test_payout_paid_event_marks_the_payout(client, stripe_mode, prop):
    from billing.models import Payout

    payout = _payout_of(prop)
    post(client, *signed(_payout_event("payout.paid", "evt_p", "acct_1HostHarbour")))
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID


@pytest.mark.parametrize("kind", ["payout.paid", "payout.failed"])
@pytest.mark.parametrize("account", ["acct_1SomeoneElse", None, ""])
def test_a_payout_event_of_another_connected_account_changes_nothing(
    client, stripe_mode, prop, kind, account
):
    """Our reference copied into the metadata of another account's payout (or of a payout on
    no connected account): stored not applied with the reason, answered 200, the payout as it
    was and no money returned to the host's balance."""
    from billing.models import LedgerTransaction, Payout

    payout = _payout_of(prop)
    response = post(client, *signed(_payout_event(kind, "evt_foreign", account)))
    assert response.status_code == 200
    answer = response.json()
    assert answer["duplicate"] is False and "PO-TEST-1" in answer["not_applied"]
    stored = WebhookEvent.objects.get(event_id="evt_foreign")
    assert stored.processed_at is None and stored.error == answer["not_applied"]
    payout.refresh_from_db()
    assert (payout.status, payout.paid_at, payout.failure_reason) == (
        Payout.Status.PENDING,
        None,
        "",
    )
    assert not LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.PAYOUT_FAILED).exists()


def test_a_payout_event_of_an_organization_without_a_payout_account_changes_nothing(
    client, stripe_mode, prop
):
    from billing.models import Payout

    payout = _payout_of(prop, account="")
    response = post(client, *signed(_payout_event("payout.paid", "evt_none", "acct_1Any")))
    assert response.status_code == 200 and "not_applied" in response.json()
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING


def test_a_failed_payout_of_its_own_account_returns_the_net_to_the_balance(
    client, stripe_mode, prop
):
    from billing.models import LedgerTransaction, Payout

    payout = _payout_of(prop)
    post(client, *signed(_payout_event("payout.failed", "evt_f", "acct_1HostHarbour")))
    payout.refresh_from_db()
    assert (payout.status, payout.failure_reason) == (Payout.Status.FAILED, "account_closed")
    returned = LedgerTransaction.objects.get(kind=LedgerTransaction.Kind.PAYOUT_FAILED)
    assert returned.amount == Decimal("12.30")


def test_sandbox_flow_is_stripes_flow_with_signed_webhooks(client, prop):
    """Create, confirm from the browser's side, capture twice with one key: one capture."""
    gateway = get_gateway()
    held = gateway.hold_create(
        amount=Decimal("32.67"), currency="EUR", idempotency_key="sbx-1", metadata={}
    )
    assert held.status == "requires_payment_method" and held.client_secret.startswith(
        held.reference
    )
    guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("32.67"),
        currency="EUR",
        reference=held.reference,
        status=Payment.Status.PENDING,
    )
    # The browser's confirm carries the client secret and a test PaymentMethod id, no card number.
    response = client.post(
        f"/billing/sandbox/v1/payment_intents/{held.reference}/confirm",
        {"client_secret": "wrong", "payment_method": "pm_card_visa"},
    )
    assert response.status_code == 400
    response = client.post(
        f"/billing/sandbox/v1/payment_intents/{held.reference}/confirm",
        {"client_secret": held.client_secret, "payment_method": "pm_card_visa"},
    )
    assert response.json()["status"] == "requires_capture"
    payment = Payment.objects.get(reference=held.reference)
    assert (
        payment.status == Payment.Status.AUTHORIZED and payment.card_last4 == "4242"
    )  # by the signed webhook
    first = gateway.capture(held.reference, Decimal("5.45"), "capture:one")
    again = gateway.capture(held.reference, Decimal("9.99"), "capture:one")
    assert first == again and first.amount == Decimal("5.45")
    assert WebhookEvent.objects.filter(type="payment_intent.succeeded").count() == 1
    assert gateway.hold_get(held.reference).amount_received == Decimal("5.45")


def test_sandbox_decline_and_three_d_secure(client):
    gateway = get_gateway()
    held = gateway.hold_create(
        amount=Decimal("10"), currency="EUR", idempotency_key="sbx-2", metadata={}
    )
    declined = sandbox.confirm(
        held.reference, payment_method="pm_card_chargeDeclined", client_secret=held.client_secret
    )
    assert declined["error"]["code"] == "card_declined"
    action = sandbox.confirm(
        held.reference,
        payment_method="pm_card_authenticationRequired",
        client_secret=held.client_secret,
        return_url="/s/pay/k/return/",
    )
    assert action["status"] == "requires_action"
    url = action["next_action"]["redirect_to_url"]["url"]
    response = client.post(url, {"outcome": "approve"})
    assert response.status_code == 302
    assert response["Location"].startswith("/s/pay/k/return/?payment_intent=" + held.reference)
    assert gateway.hold_get(held.reference).held


# -- a signed event holding the escape \u0000 -----------------------------------------------------
# Verified on its raw bytes and processed, its NULs dropped from each text it stores; refusing it
# (the NUL middleware's 400) made Stripe retry the event for days and never apply it. Other
# routes still refuse NULs (tests/security/test_server_errors.py).


def _failed_with_nul() -> dict:
    """A payment_intent.payment_failed event as Stripe sends it (the escape, not a raw byte)."""
    return event(
        "payment_intent.payment_failed",
        intent(
            "requires_payment_method",
            metadata={"note\u0000": "a\u0000b"},
            last_payment_error={"message": "Your card was\u0000 declined."},
        ),
        event_id="evt_1QxNul0001",
    )


def test_a_signed_event_with_nul_escapes_is_applied_and_stored_without_them(
    client, stripe_mode, pending
):
    payload, header = signed(_failed_with_nul())
    assert b"\\u0000" in payload
    response = post(client, payload, header)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "duplicate": False}
    pending.refresh_from_db()
    assert pending.last_error == "Your card was declined."
    stored = WebhookEvent.objects.get(event_id="evt_1QxNul0001")
    assert stored.processed_at is not None
    assert stored.payload["data"]["object"]["metadata"] == {"note": "ab"}


def test_an_event_with_nul_escapes_signed_with_another_secret_is_still_refused(
    client, stripe_mode, pending
):
    payload, header = signed(_failed_with_nul(), secret="x")
    response = post(client, payload, header)
    assert response.status_code == 400
    assert response.content.decode() == "The Stripe-Signature header is missing, wrong or too old."
    assert not WebhookEvent.objects.exists()
    pending.refresh_from_db()
    assert pending.last_error == ""
