"""Payment gateways: hold (authorize), capture, release and refund card payments.

get_gateway() returns the sandbox gateway unless PAYMENT_GATEWAY=stripe (with
STRIPE_SECRET_KEY). Every call carries an idempotency key, so a retried request never
moves money twice.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from .money import from_minor, round_money, to_minor


class GatewayError(RuntimeError):
    """The processor refused or failed an operation on an existing payment."""


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    reference: str = ""
    decline_reason: str = ""
    amount: Decimal | None = None
    raw: dict = field(default_factory=dict)


class PaymentGateway:
    name = "base"

    def authorize(self, amount: Decimal, currency: str, card_number: str, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError

    def release(self, reference: str, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError


def _digits(card_number: str) -> str:
    return "".join(ch for ch in str(card_number or "") if ch.isdigit())


SANDBOX_APPROVE = "4242424242424242"
SANDBOX_DECLINE = "4000000000000002"


class SandboxGateway(PaymentGateway):
    """SANDBOX: no real money moves. 4242 4242 4242 4242 approves, 4000 0000 0000 0002 declines.

    Any other number declines with a reason. State lives in process memory, keyed by
    idempotency key, so replays return the first answer.
    """

    name = "sandbox"
    sandbox = True
    _lock = threading.Lock()
    _answers: dict[str, PaymentResult] = {}
    _holds: dict[str, dict] = {}

    @classmethod
    def reset(cls) -> None:
        """Forget every hold and answer (tests)."""
        with cls._lock:
            cls._answers.clear()
            cls._holds.clear()

    def _once(self, key: str, make) -> PaymentResult:
        with self._lock:
            if key in self._answers:
                return self._answers[key]
            result = make()
            self._answers[key] = result
            return result

    def authorize(self, amount, currency, card_number, idempotency_key):
        def make():
            digits = _digits(card_number)
            if digits == SANDBOX_DECLINE:
                return PaymentResult(False, decline_reason="Your card was declined (sandbox test card).")
            if digits != SANDBOX_APPROVE:
                return PaymentResult(
                    False, decline_reason="Sandbox payments accept only the test card 4242 4242 4242 4242."
                )
            if Decimal(amount) <= 0:
                return PaymentResult(False, decline_reason="The amount to hold must be positive.")
            reference = "sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
            self._holds[reference] = {"amount": round_money(amount, currency), "currency": currency,
                                      "captured": None, "released": False, "refunded": Decimal(0)}
            return PaymentResult(True, reference=reference, amount=round_money(amount, currency))

        return self._once(f"auth:{idempotency_key}", make)

    def _hold(self, reference: str) -> dict:
        hold = self._holds.get(reference)
        if hold is None and reference.startswith("sbx_"):
            # Holds made by another process (the server) are unknown here: trust the reference.
            hold = {"amount": None, "currency": "", "captured": None, "released": False, "refunded": Decimal(0)}
            self._holds[reference] = hold
        return hold

    def capture(self, reference, amount, idempotency_key):
        def make():
            hold = self._hold(reference)
            if hold is None:
                return PaymentResult(False, reference, "Unknown payment.")
            if hold["released"]:
                return PaymentResult(False, reference, "The hold was released.")
            if hold["amount"] is not None and Decimal(amount) > hold["amount"]:
                return PaymentResult(False, reference, "Capture exceeds the amount held.")
            hold["captured"] = Decimal(amount)
            return PaymentResult(True, reference, amount=Decimal(amount))

        return self._once(f"capture:{idempotency_key}", make)

    def release(self, reference, idempotency_key):
        def make():
            hold = self._hold(reference)
            if hold is None:
                return PaymentResult(False, reference, "Unknown payment.")
            if hold["captured"] is not None:
                return PaymentResult(False, reference, "Already captured.")
            hold["released"] = True
            return PaymentResult(True, reference)

        return self._once(f"release:{idempotency_key}", make)

    def refund(self, reference, amount, idempotency_key):
        def make():
            hold = self._hold(reference)
            if hold is None:
                return PaymentResult(False, reference, "Unknown payment.")
            if hold["captured"] is not None and hold["refunded"] + Decimal(amount) > hold["captured"]:
                return PaymentResult(False, reference, "Refund exceeds the captured amount.")
            hold["refunded"] += Decimal(amount)
            return PaymentResult(True, "sbx_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20],
                                 amount=Decimal(amount))

        return self._once(f"refund:{idempotency_key}", make)


# Stripe test cards stand in for raw numbers: the API takes payment method ids, never PANs.
STRIPE_TEST_METHODS = {SANDBOX_APPROVE: "pm_card_visa", SANDBOX_DECLINE: "pm_card_chargeDeclined"}


class StripeGateway(PaymentGateway):
    """Manual-capture PaymentIntents through the official `stripe` client."""

    name = "stripe"
    sandbox = False

    def __init__(self, api_key: str, http_client=None):
        import stripe

        self._stripe = stripe
        kwargs = {"http_client": http_client} if http_client is not None else {}
        self.client = stripe.StripeClient(api_key, max_network_retries=2, **kwargs)

    def _payment_method(self, card_number: str) -> str:
        value = str(card_number or "").strip()
        if value.startswith("pm_"):
            return value
        return STRIPE_TEST_METHODS.get(_digits(value), value)

    def _fail(self, exc, reference="") -> PaymentResult:
        message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
        return PaymentResult(False, reference, message)

    def authorize(self, amount, currency, card_number, idempotency_key):
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": to_minor(amount, currency), "currency": currency.lower(),
                    "capture_method": "manual", "confirm": True,
                    "payment_method": self._payment_method(card_number),
                    "payment_method_types": ["card"],
                },
                options={"idempotency_key": f"auth-{idempotency_key}"},
            )
        except self._stripe.StripeError as exc:
            return self._fail(exc)
        if intent.status != "requires_capture":
            return PaymentResult(False, intent.id, f"Payment not authorized ({intent.status}).")
        return PaymentResult(True, intent.id, amount=from_minor(intent.amount, currency))

    def capture(self, reference, amount, idempotency_key):
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
            currency = intent.currency.upper()
            intent = self.client.v1.payment_intents.capture(
                reference, params={"amount_to_capture": to_minor(amount, currency)},
                options={"idempotency_key": f"capture-{idempotency_key}"},
            )
        except self._stripe.StripeError as exc:
            return self._fail(exc, reference)
        if intent.status != "succeeded":
            return PaymentResult(False, reference, f"Capture did not succeed ({intent.status}).")
        return PaymentResult(True, reference, amount=from_minor(intent.amount_received, currency))

    def release(self, reference, idempotency_key):
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, options={"idempotency_key": f"release-{idempotency_key}"}
            )
        except self._stripe.StripeError as exc:
            return self._fail(exc, reference)
        return PaymentResult(intent.status == "canceled", reference,
                             "" if intent.status == "canceled" else f"Not released ({intent.status}).")

    def refund(self, reference, amount, idempotency_key):
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
            refund = self.client.v1.refunds.create(
                params={"payment_intent": reference, "amount": to_minor(amount, intent.currency.upper())},
                options={"idempotency_key": f"refund-{idempotency_key}"},
            )
        except self._stripe.StripeError as exc:
            return self._fail(exc, reference)
        ok = refund.status in ("succeeded", "pending")
        return PaymentResult(ok, refund.id, "" if ok else f"Refund {refund.status}.",
                             amount=from_minor(refund.amount, intent.currency.upper()))


_sandbox = SandboxGateway()


def get_gateway() -> PaymentGateway:
    """Return the configured gateway: Stripe when PAYMENT_GATEWAY=stripe, else the sandbox."""
    choice = os.environ.get("PAYMENT_GATEWAY", "sandbox").strip().lower()
    if choice == "stripe":
        key = os.environ.get("STRIPE_SECRET_KEY", "")
        if not key and os.environ.get("STRIPE_SECRET_KEY_FILE"):
            with open(os.environ["STRIPE_SECRET_KEY_FILE"]) as handle:
                key = handle.read().strip()
        if not key:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY.")
        return StripeGateway(key)
    return _sandbox
