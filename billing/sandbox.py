"""SANDBOX: an offline stand-in for Stripe. No real money moves.

It keeps PaymentIntents in the database (models.SandboxIntent) in Stripe's shapes and states,
confirms them from the browser's sandbox test-card element through the sandbox endpoint
(sandbox_views.py, playing api.stripe.com), asks for "3-D Secure" on Stripe's authentication
test card, and sends signed `Stripe-Signature` webhooks to the same receiver as Stripe's.

The browser element turns a Stripe test card number into Stripe's test PaymentMethod id before
anything is sent (static/guest/sandbox-card.js), so no card number reaches the server here
either. Test cards (docs.stripe.com/testing):
  4242 4242 4242 4242  pm_card_visa                            approved
  4000 0000 0000 0002  pm_card_chargeDeclined                  declined
  4000 0000 0000 9995  pm_card_chargeDeclinedInsufficientFunds declined (insufficient funds)
  4000 0027 6000 3184  pm_card_authenticationRequired          3-D Secure, then approved or failed
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse

from .gateways import (
    GatewayError,
    Intent,
    PaymentGateway,
    PaymentResult,
    RefundMade,
    SavedCard,
    SetupIntent,
    intent_from,
    saved_card_from,
    setup_intent_from,
)
from .money import from_minor, to_minor

API_VERSION = "2025-06-30.basil"

# Stripe's test PaymentMethods: (last4, decline code, message). None = approved.
TEST_METHODS: dict[str, tuple[str, str | None, str]] = {
    "pm_card_visa": ("4242", None, ""),
    "pm_card_chargeDeclined": ("0002", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "9995",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_authenticationRequired": ("3184", None, ""),
}
NEEDS_3DS = {"pm_card_authenticationRequired"}


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header: t=<unix time>,v1=HMAC-SHA256(secret, "t.payload")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _refund_id(idempotency_key: str) -> str:
    return "re_sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def intent_json(row: Any) -> dict[str, Any]:
    """The sandbox intent as Stripe's PaymentIntent object."""
    next_action = None
    if row.status == "requires_action":
        next_action = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": reverse("billing:sandbox-3ds", args=[row.id]),
                "return_url": row.return_url,
            },
        }
    charge = None
    if row.last4 and row.status in ("requires_capture", "succeeded"):
        charge = {
            "id": f"ch_{row.id[3:]}",
            "object": "charge",
            "amount": row.amount,
            "amount_captured": row.amount_received,
            "amount_refunded": row.amount_refunded,
            "refunded": bool(row.amount_refunded and row.amount_refunded >= row.amount_received),
            "payment_intent": row.id,
            "currency": row.currency.lower(),
            "payment_method_details": {
                "type": "card",
                "card": {"brand": "visa", "last4": row.last4},
            },
        }
    return {
        "id": row.id,
        "object": "payment_intent",
        "amount": row.amount,
        "currency": row.currency.lower(),
        "amount_capturable": row.amount_capturable,
        "amount_received": row.amount_received,
        "capture_method": "manual",
        "client_secret": row.client_secret,
        "confirmation_method": "automatic",
        "created": int(row.created_at.timestamp()) if row.created_at else int(time.time()),
        "description": row.description or None,
        "last_payment_error": row.last_error,
        "latest_charge": charge,
        "livemode": False,
        "metadata": row.metadata,
        "next_action": next_action,
        "payment_method": row.payment_method or None,
        "payment_method_types": ["card"],
        "status": row.status,
    }


def emit(event_type: str, obj: dict[str, Any]) -> None:
    """Send a signed event in Stripe's format to our webhook receiver (the same code path as
    an HTTP delivery from Stripe: the signature is checked before anything is read)."""
    from .webhooks import receive, sandbox_webhook_secret

    event = {
        "id": "evt_sbx_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
        "request": {"id": None, "idempotency_key": None},
    }
    payload = json.dumps(event).encode()
    receive(payload, sign(payload, sandbox_webhook_secret()))


def _once(key: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Replay the first answer to an idempotency key (Stripe keeps them 24 h)."""
    from .models import SandboxRequest

    stored = SandboxRequest.objects.filter(key=key).first()
    if stored is not None:
        return stored.response
    response = make()
    try:
        with transaction.atomic():
            SandboxRequest.objects.create(key=key, response=response)
    except IntegrityError:  # a concurrent twin answered first: its answer is the answer
        return SandboxRequest.objects.get(key=key).response
    return response


def _forget_replies(object_id: str) -> None:
    """Drop the stored idempotent replies that mention a deleted customer or card (they copy the
    card's last 4); a replayed key then simply finds nothing to replay."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from .models import SandboxRequest

    SandboxRequest.objects.annotate(text=Cast("response", TextField())).filter(
        text__contains=object_id
    ).delete()


def _saved_method(reference: str) -> tuple[str, str | None, str] | None:
    """A card saved through a sandbox SetupIntent behaves like the test card it was made from."""
    from .models import SandboxPaymentMethod

    row = SandboxPaymentMethod.objects.filter(pk=reference, customer__isnull=False).first()
    if row is None or row.test_method not in TEST_METHODS:
        return None
    _, decline, message = TEST_METHODS[row.test_method]
    return row.last4, decline, message


def setup_intent_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "setup_intent",
        "client_secret": row.client_secret,
        "customer": row.customer_id,
        "status": row.status,
        "payment_method": row.payment_method or None,
        "last_setup_error": row.last_error,
        "usage": "off_session",
        "payment_method_types": ["card"],
        "livemode": False,
    }


def payment_method_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "payment_method",
        "type": "card",
        "customer": row.customer_id,
        "card": {
            "brand": row.brand,
            "last4": row.last4,
            "exp_month": row.exp_month,
            "exp_year": row.exp_year,
        },
        "livemode": False,
    }


def typed_expiry(month: Any, year: Any) -> tuple[int, int] | None:
    """The expiry the person typed in the card element (Stripe keeps it on the PaymentMethod),
    or None when absent or not a month and a 4-digit year."""
    try:
        month_n, year_n = int(month), int(year)
    except (TypeError, ValueError):
        return None
    return (month_n, year_n) if 1 <= month_n <= 12 and 2000 <= year_n <= 2099 else None


def setup_confirm(
    setup_id: str,
    *,
    payment_method: str,
    client_secret: str | None = None,
    expiry: tuple[int, int] | None = None,
) -> dict:
    """Confirm a SetupIntent with a test PaymentMethod: save it on the customer (what Stripe.js's
    confirmSetup does). A declining test card fails the setup, as Stripe's card check does.
    Stripe's 3-D Secure test card is saved without the challenge (the sandbox skips it here)."""
    from .models import SandboxPaymentMethod, SandboxSetupIntent

    with transaction.atomic():
        row = SandboxSetupIntent.objects.select_for_update().filter(pk=setup_id).first()
        if row is None or (
            client_secret is not None and not hmac.compare_digest(client_secret, row.client_secret)
        ):
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": "No such setup_intent.",
                }
            }
        if row.status != "requires_payment_method":
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "setup_intent_unexpected_state",
                    "message": f"This SetupIntent's status is {row.status}.",
                    "setup_intent": setup_intent_json(row),
                }
            }
        method = TEST_METHODS.get(payment_method)
        if method is None:
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "payment_method",
                    "message": "The sandbox accepts only Stripe's test cards.",
                }
            }
        last4, decline, message = method
        if decline:
            row.last_error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline,
                "message": message,
            }
            row.save()
            return {"error": {**row.last_error, "setup_intent": setup_intent_json(row)}}
        saved = SandboxPaymentMethod.objects.create(
            id="pm_sbx_" + secrets.token_hex(12),
            customer_id=row.customer_id,
            test_method=payment_method,
            last4=last4,
            # The expiry typed (11/30 stays 11/30), else the test card's own.
            **({"exp_month": expiry[0], "exp_year": expiry[1]} if expiry else {}),
        )
        row.status, row.payment_method, row.last_error = "succeeded", saved.id, None
        row.save()
        return setup_intent_json(row)


def confirm(
    intent_id: str, *, payment_method: str, client_secret: str | None = None, return_url: str = ""
) -> dict:
    """Confirm an intent with a test PaymentMethod (what Stripe.js's confirmPayment does).

    Returns the PaymentIntent object, or {"error": {...}} in Stripe's error shape.
    """
    from .models import SandboxIntent

    with transaction.atomic():
        row = SandboxIntent.objects.select_for_update().filter(pk=intent_id).first()
        if row is None or (
            client_secret is not None and not hmac.compare_digest(client_secret, row.client_secret)
        ):
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": "No such payment_intent.",
                }
            }
        if row.status not in ("requires_payment_method", "requires_confirmation"):
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": f"This PaymentIntent's status is {row.status}.",
                    "payment_intent": intent_json(row),
                }
            }
        method = TEST_METHODS.get(payment_method) or _saved_method(payment_method)
        if method is None:
            return {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "payment_method",
                    "message": "The sandbox accepts only Stripe's test cards.",
                }
            }
        last4, decline, message = method
        row.payment_method, row.last4, row.return_url = (
            payment_method,
            last4,
            return_url or row.return_url,
        )
        if decline:
            row.status = "requires_payment_method"
            row.last_error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline,
                "message": message,
            }
            event = "payment_intent.payment_failed"
        elif payment_method in NEEDS_3DS:
            row.status, row.last_error, event = (
                "requires_action",
                None,
                "payment_intent.requires_action",
            )
        else:
            row.status, row.last_error, row.amount_capturable = "requires_capture", None, row.amount
            event = "payment_intent.amount_capturable_updated"
        row.save()
        body = intent_json(row)
    emit(event, body)
    if decline:
        return {"error": {**(row.last_error or {}), "payment_intent": body}}
    return body


def authenticate(intent_id: str, *, approve: bool) -> dict:
    """Finish the sandbox's 3-D Secure challenge for an intent in requires_action."""
    from .models import SandboxIntent

    with transaction.atomic():
        row = SandboxIntent.objects.select_for_update().get(pk=intent_id)
        if row.status != "requires_action":
            return intent_json(row)
        if approve:
            row.status, row.amount_capturable, event = (
                "requires_capture",
                row.amount,
                "payment_intent.amount_capturable_updated",
            )
        else:
            row.status, event = "requires_payment_method", "payment_intent.payment_failed"
            row.last_error = {
                "type": "card_error",
                "code": "payment_intent_authentication_failure",
                "message": "We are unable to authenticate your payment method. Please choose a "
                "different payment method and try again.",
            }
        row.save()
        body = intent_json(row)
    emit(event, body)
    return body


class SandboxGateway(PaymentGateway):
    """SANDBOX: Stripe's PaymentIntent flow, offline. See the module docstring for test cards."""

    name = "sandbox"
    sandbox = True
    publishable_key = "pk_sandbox"

    def hold_create(
        self,
        *,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str = "",
        payment_method: str = "",
        return_url: str = "",
        customer: str = "",
    ) -> Intent:
        from .models import SandboxIntent

        minor = to_minor(Decimal(amount), currency)
        if minor <= 0:
            raise ValueError("The amount to hold must be positive.")

        def make() -> dict:
            row = SandboxIntent.objects.create(
                id="pi_sbx_" + secrets.token_hex(12),
                amount=minor,
                currency=currency.upper(),
                client_secret="",
                metadata={k: str(v) for k, v in metadata.items()},
                description=description[:200],
                return_url=return_url,
            )
            row.client_secret = f"{row.id}_secret_{secrets.token_hex(12)}"
            row.save(update_fields=["client_secret"])
            emit("payment_intent.created", intent_json(row))
            if payment_method:
                answer = confirm(row.id, payment_method=payment_method, return_url=return_url)
                return answer.get("error", {}).get("payment_intent") or answer
            return intent_json(row)

        return intent_from(_once(f"hold-{idempotency_key}", make))

    def hold_get(self, reference: str) -> Intent:
        from .models import SandboxIntent

        row = SandboxIntent.objects.filter(pk=reference).first()
        if row is None:
            raise GatewayError("No such payment_intent.")
        return intent_from(intent_json(row))

    def holds_find(self, *, metadata_key: str, value: str) -> list[Intent]:
        from .models import SandboxIntent

        rows = SandboxIntent.objects.filter(**{f"metadata__{metadata_key}": value})
        return [intent_from(intent_json(row)) for row in rows]

    def _write(self, reference: str, key: str, change: Callable[[Any], tuple[str, str]]) -> dict:
        """Apply `change` to the locked intent once per key; it returns (error, event type).

        The answer is stored under the key in the transaction that holds the intent's lock, so
        a twin request with the same key (a double submit, two workers) waits for the first and
        replays its answer, as Stripe does, instead of applying the change a second time."""
        from .models import SandboxIntent, SandboxRequest

        stored = SandboxRequest.objects.filter(key=key).first()
        if stored is not None:
            return stored.response
        with transaction.atomic():
            row = SandboxIntent.objects.select_for_update().filter(pk=reference).first()
            stored = SandboxRequest.objects.filter(key=key).first()
            if stored is not None:
                return stored.response
            event, body = "", {}
            if row is None:
                answer: dict[str, Any] = {"error": {"message": "No such payment_intent."}}
            else:
                error, event = change(row)
                if error:
                    answer = {"error": {"message": error}, "intent": intent_json(row)}
                else:
                    row.save()
                    body = intent_json(row)
                    answer = {"intent": body}
            SandboxRequest.objects.create(key=key, response=answer)
        if event and "error" not in answer:
            emit(
                event, body if event.startswith("payment_intent") else body["latest_charge"] or body
            )
        return answer

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        def change(row: Any) -> tuple[str, str]:
            minor = to_minor(Decimal(amount), row.currency)
            if row.status != "requires_capture":
                return (
                    f"This PaymentIntent could not be captured because it has a status of {row.status}.",
                    "",
                )
            if minor > row.amount_capturable:
                return "The amount to capture is greater than the amount capturable.", ""
            row.status, row.amount_received, row.amount_capturable = "succeeded", minor, 0
            return "", "payment_intent.succeeded"

        answer = self._write(reference, f"capture-{idempotency_key}", change)
        if "error" in answer:
            return PaymentResult(False, reference, answer["error"]["message"])
        body = answer["intent"]
        return PaymentResult(
            True, reference, amount=from_minor(body["amount_received"], body["currency"])
        )

    def release(self, reference: str, idempotency_key: str) -> PaymentResult:
        def change(row: Any) -> tuple[str, str]:
            if row.status in ("succeeded", "canceled"):
                return (
                    ""
                    if row.status == "canceled"
                    else "A captured PaymentIntent cannot be canceled."
                ), ""
            row.status, row.amount_capturable = "canceled", 0
            return "", "payment_intent.canceled"

        answer = self._write(reference, f"release-{idempotency_key}", change)
        if "error" in answer:
            return PaymentResult(False, reference, answer["error"]["message"])
        return PaymentResult(True, reference)

    def events_list(self, *, created_gte: int, account: str = "") -> list[dict[str, Any]]:
        # The sandbox hands each event to the receiver in-process as it happens (emit): none
        # can be missed, so there is nothing to list.
        return []

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        def change(row: Any) -> tuple[str, str]:
            minor = to_minor(Decimal(amount), row.currency)
            if row.status != "succeeded":
                return "This PaymentIntent has no successful charge to refund.", ""
            if row.amount_refunded + minor > row.amount_received:
                return "Refund amount is greater than the unrefunded amount on the charge.", ""
            row.amount_refunded += minor
            return "", "charge.refunded"

        key = f"refund-{idempotency_key}"
        answer = self._write(reference, key, change)
        if "error" in answer:
            return PaymentResult(False, reference, answer["error"]["message"])
        if "refund" not in answer:  # kept with the answer, for refunds_list
            from .models import SandboxRequest

            refund = {"amount": to_minor(Decimal(amount), answer["intent"]["currency"])}
            SandboxRequest.objects.filter(key=key).update(response={**answer, "refund": refund})
        body = answer["intent"]
        return PaymentResult(True, _refund_id(idempotency_key), amount=Decimal(amount), raw=body)

    def refunds_list(self, reference: str) -> list[RefundMade]:
        """Each refund made on the intent, from the answers kept per key."""
        from .models import SandboxRequest

        made = []
        for row in SandboxRequest.objects.filter(key__startswith="refund-").order_by(
            "-created_at", "-key"
        ):
            intent = row.response.get("intent") or {}
            if "error" in row.response or intent.get("id") != reference:
                continue
            key = row.key.removeprefix("refund-")
            made.append(
                RefundMade(
                    reference=_refund_id(key),
                    amount=from_minor(
                        int((row.response.get("refund") or {}).get("amount") or 0),
                        str(intent.get("currency") or ""),
                    ),
                    status="succeeded",
                    key=key,
                    created=int(row.created_at.timestamp()),
                )
            )
        return made  # newest first, as Stripe lists them

    # -- Saved cards ------------------------------------------------------------------------------

    def customer_create(self, *, email: str, idempotency_key: str) -> str:
        from .models import SandboxCustomer

        def make() -> dict:
            row = SandboxCustomer.objects.create(id="cus_sbx_" + secrets.token_hex(8), email=email)
            return {"id": row.id, "object": "customer"}

        return str(_once(f"customer-{idempotency_key}", make)["id"])

    def customer_delete(self, customer: str) -> None:
        """Delete the customer and what the processor keeps of its cards (Stripe deletes the
        customer's PaymentMethods with it), including the card digits on past intents."""
        from .models import SandboxCustomer, SandboxIntent, SandboxPaymentMethod

        with transaction.atomic():
            methods = list(
                SandboxPaymentMethod.objects.filter(customer_id=customer).values_list(
                    "id", flat=True
                )
            )
            SandboxIntent.objects.filter(payment_method__in=methods).update(
                last4="", payment_method=""
            )
            for method in methods:
                _forget_replies(method)
            SandboxPaymentMethod.objects.filter(id__in=methods).delete()
            _forget_replies(customer)
            SandboxCustomer.objects.filter(pk=customer).delete()

    def setup_intent_create(self, *, customer: str, idempotency_key: str) -> SetupIntent:
        from .models import SandboxSetupIntent

        def make() -> dict:
            sid = "seti_sbx_" + secrets.token_hex(12)
            row = SandboxSetupIntent.objects.create(
                id=sid, customer_id=customer, client_secret=f"{sid}_secret_{secrets.token_hex(12)}"
            )
            return setup_intent_json(row)

        return setup_intent_from(_once(f"setup-{idempotency_key}", make))

    def setup_intent_get(self, reference: str) -> SetupIntent:
        from .models import SandboxSetupIntent

        row = SandboxSetupIntent.objects.filter(pk=reference).first()
        if row is None:
            raise GatewayError("No such setup_intent.")
        return setup_intent_from(setup_intent_json(row))

    def payment_method_get(self, reference: str) -> SavedCard:
        from .models import SandboxPaymentMethod

        row = SandboxPaymentMethod.objects.filter(pk=reference).first()
        if row is None:
            raise GatewayError("No such PaymentMethod.")
        return saved_card_from(payment_method_json(row))

    def payment_method_detach(self, reference: str) -> None:
        from .models import SandboxIntent, SandboxPaymentMethod

        # A detached PaymentMethod can never be used again; the sandbox forgets it entirely.
        with transaction.atomic():
            SandboxIntent.objects.filter(payment_method=reference).update(
                last4="", payment_method=""
            )
            _forget_replies(reference)
            SandboxPaymentMethod.objects.filter(pk=reference).delete()

    def charge_saved(
        self,
        *,
        amount: Decimal,
        currency: str,
        customer: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str = "",
    ) -> PaymentResult:
        from .models import SandboxPaymentMethod

        if not SandboxPaymentMethod.objects.filter(
            pk=payment_method, customer_id=customer
        ).exists():
            return PaymentResult(
                False, "", "The saved card is no longer attached to this customer."
            )
        intent = self.hold_create(
            amount=amount,
            currency=currency,
            idempotency_key=f"charge-{idempotency_key}",
            metadata=metadata,
            description=description,
            payment_method=payment_method,
        )
        if not intent.held:
            return PaymentResult(
                False, intent.reference, intent.decline_reason or f"Not charged ({intent.status})."
            )
        return self.capture(intent.reference, amount, idempotency_key=f"charge-{idempotency_key}")

    # -- Connect (payout accounts) ---------------------------------------------------------------

    def connect_account_create(self, *, email: str, country: str, idempotency_key: str) -> str:
        from .models import SandboxAccount

        def make() -> dict:
            row = SandboxAccount.objects.create(id="acct_sbx_" + secrets.token_hex(8), email=email)
            return {"id": row.id, "object": "account"}

        return str(_once(f"account-{idempotency_key}", make)["id"])

    def connect_onboarding_link(self, *, account: str, refresh_url: str, return_url: str) -> str:
        from urllib.parse import urlencode

        return (
            reverse("billing:sandbox-onboarding", args=[account])
            + "?"
            + urlencode({"return_url": return_url})
        )

    def connect_account_ready(self, account: str) -> bool:
        from .models import SandboxAccount

        row = SandboxAccount.objects.filter(pk=account).first()
        return bool(row and row.details_submitted and row.payouts_enabled)


def onboard(account: str, *, bank_last4: str) -> dict:
    """Finish the sandbox's hosted onboarding and send Stripe's `account.updated` event."""
    from .models import SandboxAccount

    row = SandboxAccount.objects.get(pk=account)
    row.details_submitted, row.payouts_enabled, row.bank_last4 = True, True, bank_last4[-4:]
    row.save()
    body = {
        "id": row.id,
        "object": "account",
        "details_submitted": True,
        "payouts_enabled": True,
        "charges_enabled": True,
        "email": row.email,
        "external_accounts": {
            "object": "list",
            "data": [{"object": "bank_account", "last4": row.bank_last4}],
        },
    }
    emit("account.updated", body)
    return body
