"""A capture or a release answered 409 by Stripe (another request with the same idempotency key
is still in progress), beyond the official client's two retries.

Stripe answers 409 `idempotency_key_in_use` while the first request with a key runs; the client
retries a 409 (max_network_retries=2) and then raises. The outcome is then unknown: the other
request may have captured (or canceled) the intent. What must hold: the payment ends in the
state the processor has (captured and booked once, released, or still held saying why), the
ledger books the charge once, and a retry uses the same key, so nothing is captured twice.

The processor is a real HTTP server on 127.0.0.1 that speaks Stripe's PaymentIntent API
(retrieve, capture, cancel; each key's first answer replayed, as Stripe does); the official
client talks to it over HTTP."""

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import stripe

from billing.gateways import GatewayError, StripeGateway
from billing.models import LedgerTransaction, Payment
from billing.services import guest_payment_release, guest_payment_settle
from tests.billing.helpers import finished_session, unit_rate

pytestmark = pytest.mark.django_db

INTENT = "pi_3QxTest409Hold"
IN_PROGRESS = {
    "error": {
        "type": "invalid_request_error",
        "code": "idempotency_key_in_use",
        "message": "There is currently another in-progress request using this Idempotent Key "
        "(that probably means you submitted twice, and the other request is still going "
        "through). Please try again later.",
    }
}


class StripeStub:
    """One PaymentIntent held for 100.00 EUR, served over HTTP like Stripe's API.

    `busy[action]` answers that many requests of an action ("capture", "cancel") with a 409;
    `finish_meanwhile[action]`, when set, is the other request finishing while they are busy:
    the change applies and its answer is kept under the key, so a later request with the same
    key gets it replayed."""

    def __init__(self):
        self.intent = {
            "id": INTENT,
            "object": "payment_intent",
            "amount": 10000,
            "amount_capturable": 10000,
            "amount_received": 0,
            "capture_method": "manual",
            "currency": "eur",
            "livemode": False,
            "metadata": {},
            "status": "requires_capture",
        }
        self.busy = {"capture": 0, "cancel": 0}
        self.finish_meanwhile = {"capture": False, "cancel": False}
        self.answers = {}  # idempotency key → (status, body)
        self.requests = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stub.requests.append(("GET", self.path, ""))
                if self.path.split("?")[0] == f"/v1/payment_intents/{INTENT}":
                    self._send(200, stub.intent)
                else:
                    self._send(404, {"error": {"type": "invalid_request_error"}})

            def do_POST(self):
                size = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(size).decode())
                key = self.headers.get("Idempotency-Key", "")
                action = self.path.rsplit("/", 1)[-1]
                stub.requests.append(("POST", self.path, key))
                status, body = stub.post(action, key, form)
                self._send(status, body)

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_stub")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, action, key, form):
        with self.lock:
            if key in self.answers:
                return self.answers[key]
            if self.busy.get(action):
                self.busy[action] -= 1
                if self.finish_meanwhile.get(action) and not self.busy[action]:
                    self.answers[key] = self.apply(action, form)  # the other request's answer
                return 409, IN_PROGRESS
            self.answers[key] = self.apply(action, form)
            return self.answers[key]

    def apply(self, action, form):
        intent = self.intent
        if intent["status"] != "requires_capture":
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": f"This PaymentIntent could not be {action}d because it has a "
                    f"status of {intent['status']}.",
                    "payment_intent": dict(intent),
                }
            }
        if action == "capture":
            taken = int(form.get("amount_to_capture", [intent["amount_capturable"]])[0])
            intent.update(status="succeeded", amount_received=taken, amount_capturable=0)
        else:
            intent.update(status="canceled", amount_capturable=0, cancellation_reason="requested")
        return 200, dict(intent)

    def posts(self, action):
        return [r for r in self.requests if r[0] == "POST" and r[1].endswith(f"/{action}")]


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    stub = StripeStub()
    gateway = StripeGateway("sk_test_stub")
    gateway.client = stripe.StripeClient(
        "sk_test_stub", base_addresses={"api": stub.url}, max_network_retries=2
    )
    monkeypatch.setattr("billing.services.payments.get_gateway", lambda: gateway)
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def held(prop, charger):
    """A finished session costing 10.00 EUR and its guest payment, 100.00 held on INTENT."""
    unit_rate(prop)
    session = finished_session(charger, wh=10000)
    payment = Payment.objects.create(
        organization=prop.organization,
        session=session,
        email="guest@example.com",
        currency="EUR",
        amount_held=Decimal("100.00"),
        reference=INTENT,
        status="authorized",
        gateway="stripe",
    )
    return session, payment


def _charges(payment):
    return LedgerTransaction.objects.filter(kind="guest_charge", payment=payment)


def test_a_capture_answered_409_that_the_other_request_made_is_booked_once(stub, held):
    session, payment = held
    stub.busy["capture"] = 3  # the request and the client's two retries
    stub.finish_meanwhile["capture"] = True
    settled = guest_payment_settle(payment=payment, session=session)

    assert (settled.status, settled.amount_captured) == ("captured", Decimal("10.00"))
    assert settled.last_error == ""
    assert [c.amount for c in _charges(payment)] == [Decimal("10.00")]
    assert {r[2] for r in stub.posts("capture")} == {f"capture-capture:{INTENT}"}
    assert len(stub.posts("capture")) == 3

    # The sweep settles it again: nothing more asked, nothing booked twice.
    again = guest_payment_settle(payment=Payment.objects.get(pk=payment.pk), session=session)
    assert again.status == "captured" and len(stub.posts("capture")) == 3
    assert _charges(payment).count() == 1
    assert stub.intent["amount_received"] == 1000


def test_a_capture_answered_409_still_in_progress_stays_held_and_the_same_key_books_it(stub, held):
    session, payment = held
    stub.busy["capture"] = 3
    with pytest.raises(GatewayError):
        guest_payment_settle(payment=payment, session=session)
    payment.refresh_from_db()
    assert payment.status == "authorized" and payment.amount_captured == 0
    assert "did not complete the capture" in payment.last_error
    assert "never done twice" in payment.last_error
    assert not _charges(payment).exists()

    # The sweep asks again with the same key once the processor has finished.
    settled = guest_payment_settle(payment=payment, session=session)
    assert (settled.status, settled.amount_captured, settled.last_error) == (
        "captured",
        Decimal("10.00"),
        "",
    )
    assert [c.amount for c in _charges(payment)] == [Decimal("10.00")]
    assert {r[2] for r in stub.posts("capture")} == {f"capture-capture:{INTENT}"}
    assert stub.intent["amount_received"] == 1000


def test_a_release_answered_409_that_the_other_request_made_is_released(stub, held):
    _session, payment = held
    stub.busy["cancel"] = 3
    stub.finish_meanwhile["cancel"] = True
    released = guest_payment_release(payment=payment, reason="guest start: start_failed")
    assert (released.status, released.release_reason, released.last_error) == (
        "released",
        "guest start: start_failed",
        "",
    )
    assert stub.intent["status"] == "canceled"
    assert not LedgerTransaction.objects.filter(payment=payment).exists()
    # Released again (a second sweep): nothing asked.
    guest_payment_release(payment=released, reason="again")
    assert len(stub.posts("cancel")) == 3


def test_a_release_answered_409_still_in_progress_stays_held_and_the_same_key_releases(stub, held):
    _session, payment = held
    stub.busy["cancel"] = 3
    with pytest.raises(GatewayError):
        guest_payment_release(payment=payment, reason="cancelled")
    payment.refresh_from_db()
    assert payment.status == "authorized"
    assert "did not complete the release" in payment.last_error

    released = guest_payment_release(payment=payment, reason="cancelled")
    assert (released.status, released.last_error) == ("released", "")
    assert {r[2] for r in stub.posts("cancel")} == {f"release-release:{INTENT}"}
    assert not LedgerTransaction.objects.filter(payment=payment).exists()


def test_a_release_of_an_intent_already_captured_is_not_recorded_released(stub, held):
    """The processor captured it (the capture's answer lost, or the dashboard): the payment is
    not marked released, and says what happened and what to do."""
    _session, payment = held
    stub.intent.update(status="succeeded", amount_received=1000, amount_capturable=0)
    with pytest.raises(GatewayError):
        guest_payment_release(payment=payment, reason="cancelled")
    payment.refresh_from_db()
    assert payment.status == "authorized"
    assert "already captured 10.00 EUR" in payment.last_error and "refund" in payment.last_error


def test_a_capture_of_an_intent_canceled_meanwhile_is_released_with_nothing_booked(stub, held):
    session, payment = held
    stub.intent.update(status="canceled", amount_capturable=0)
    settled = guest_payment_settle(payment=payment, session=session)
    assert settled.status == "released" and "expired, or was canceled" in settled.release_reason
    assert not _charges(payment).exists()
