"""Payment gateways: hold (a manual-capture PaymentIntent), capture, release and refund.

The flow is Stripe's (docs.stripe.com/payments/place-a-hold-on-a-payment-method): the server
creates a PaymentIntent with `capture_method=manual` and hands its client secret to the
browser; the card is collected and confirmed in the browser (Stripe's Payment Element, or the
sandbox's test-card element), so no card number ever reaches this server; 3-D Secure runs
through the intent's `next_action` and the `return_url`; the server captures the real amount
at the end or cancels the intent (release). Webhooks tell the outcome (billing/webhooks.py).

get_gateway() returns the gateway settings.PAYMENT_GATEWAY names (validated in backoffice/env.py:
"stripe" with STRIPE_SECRET_KEY, or "sandbox").
Every write carries an idempotency key, so a retried request never moves money twice. No
method here may be called inside a database transaction: call, then record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from backoffice.env import env_secret, env_str
from backoffice.providers import Provider

from .money import from_minor, to_minor

logger = logging.getLogger(__name__)

# Said in place of the processor's own words, which are written for developers (request ids,
# "No such customer: 'cus_…'", "Invalid API Key provided: sk_live_…"); those go to the log.
PROCESSOR_FAILED = "The payment processor did not complete the request. Try again in a few minutes."

# The metadata field of a refund that holds the idempotency key it was asked with.
REFUND_KEY = "refund_key"


class GatewayError(RuntimeError):
    """The processor refused or failed an operation on an existing payment."""


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    reference: str = ""
    decline_reason: str = ""
    amount: Decimal | None = None
    raw: dict = field(default_factory=dict)
    # False when the processor's answer never arrived (network, its 5xx): the charge may or may
    # not have happened, so the caller retries with the SAME idempotency key, never a new one.
    answered: bool = True


@dataclass(frozen=True)
class RefundMade:
    """A refund the processor holds for a payment, as its list of the payment's refunds says."""

    reference: str
    amount: Decimal
    status: str  # pending | requires_action | succeeded | failed | canceled
    key: str = ""  # the idempotency key it was asked with (its metadata), "" when made elsewhere
    created: int = 0  # Unix seconds

    @property
    def made(self) -> bool:
        """Whether the money goes back (or is on its way): not failed nor canceled."""
        return self.status not in ("failed", "canceled")


@dataclass(frozen=True)
class Intent:
    """What we use of a PaymentIntent (Stripe's object, parsed the same for both gateways)."""

    reference: str
    status: (
        str  # requires_payment_method | requires_action | requires_capture | succeeded | canceled …
    )
    amount: Decimal
    currency: str
    client_secret: str = ""
    amount_capturable: Decimal = Decimal(0)
    amount_received: Decimal = Decimal(0)
    last4: str = ""
    decline_reason: str = ""
    next_action_url: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return self.status == "requires_capture"


def intent_from(obj: dict[str, Any]) -> Intent:
    """Parse a PaymentIntent in Stripe's documented JSON shape."""
    currency = str(obj.get("currency") or "").upper()
    error = obj.get("last_payment_error") or {}
    action = obj.get("next_action") or {}
    redirect = action.get("redirect_to_url") or {}
    charge = obj.get("latest_charge")
    last4 = ""
    if isinstance(charge, dict):
        last4 = ((charge.get("payment_method_details") or {}).get("card") or {}).get("last4", "")
    return Intent(
        reference=str(obj["id"]),
        status=str(obj.get("status", "")),
        amount=from_minor(int(obj.get("amount") or 0), currency),
        currency=currency,
        client_secret=str(obj.get("client_secret") or ""),
        amount_capturable=from_minor(int(obj.get("amount_capturable") or 0), currency),
        amount_received=from_minor(int(obj.get("amount_received") or 0), currency),
        last4=str(last4 or (obj.get("metadata") or {}).get("sandbox_last4", "")),
        decline_reason=str(error.get("message") or ""),
        next_action_url=str(redirect.get("url") or ""),
        metadata=dict(obj.get("metadata") or {}),
    )


@dataclass(frozen=True)
class SetupIntent:
    """What we use of a SetupIntent: saving a card for later charges without charging it."""

    reference: str
    status: str  # requires_payment_method | requires_action | succeeded | canceled …
    client_secret: str = ""
    payment_method: str = ""
    customer: str = ""
    error: str = ""


@dataclass(frozen=True)
class SavedCard:
    """A PaymentMethod of type card: only the brand, last 4 and expiry ever reach us."""

    reference: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer: str = ""


def setup_intent_from(obj: dict[str, Any]) -> SetupIntent:
    error = obj.get("last_setup_error") or {}
    method = obj.get("payment_method") or ""
    if isinstance(method, dict):
        method = method.get("id", "")
    customer = obj.get("customer") or ""
    if isinstance(customer, dict):
        customer = customer.get("id", "")
    return SetupIntent(
        reference=str(obj["id"]),
        status=str(obj.get("status", "")),
        client_secret=str(obj.get("client_secret") or ""),
        payment_method=str(method),
        customer=str(customer),
        error=str(error.get("message") or ""),
    )


def saved_card_from(obj: dict[str, Any]) -> SavedCard:
    card = obj.get("card") or {}
    customer = obj.get("customer") or ""
    if isinstance(customer, dict):
        customer = customer.get("id", "")
    return SavedCard(
        reference=str(obj["id"]),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        customer=str(customer),
    )


class PaymentGateway:
    name = "base"
    sandbox = False

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
        """Create a manual-capture PaymentIntent; with `payment_method` (an id, never a card
        number) it is confirmed at once, as for a saved card or a test PaymentMethod."""
        raise NotImplementedError

    def hold_get(self, reference: str) -> Intent:
        raise NotImplementedError

    def holds_find(self, *, metadata_key: str, value: str) -> list[Intent]:
        """The PaymentIntents whose metadata[metadata_key] is value: a hold whose creation
        answer was lost is found by the guest session it was made for."""
        raise NotImplementedError

    def authorize(
        self, amount: Decimal, currency: str, payment_method: str, idempotency_key: str
    ) -> PaymentResult:
        """Hold with a PaymentMethod id confirmed server-side (subscriptions, tests)."""
        intent = self.hold_create(
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            metadata={},
            payment_method=payment_method,
        )
        if not intent.held:
            return PaymentResult(
                False,
                intent.reference,
                intent.decline_reason or f"Not authorized ({intent.status}).",
            )
        return PaymentResult(True, intent.reference, amount=intent.amount)

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError

    def release(self, reference: str, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        """Refund `amount` of the payment; the refund carries its key in its metadata
        (REFUND_KEY), so refunds_list finds it after the processor has forgotten the key."""
        raise NotImplementedError

    def refunds_list(self, reference: str) -> list[RefundMade]:
        """The refunds the processor holds for the payment, read from the processor itself (not
        from the webhooks we may have missed). Raises GatewayError when it does not answer."""
        raise NotImplementedError

    def events_list(self, *, created_gte: int, account: str = "") -> list[dict[str, Any]]:
        """The processor's events created at or after `created_gte` (Unix seconds), oldest
        first, in the webhook's JSON shape; `account` lists a connected account's own events.
        Stripe keeps 30 days of them. Raises GatewayError when the processor does not answer."""
        raise NotImplementedError

    # Saved cards (driver accounts): a Customer holds PaymentMethods saved through a SetupIntent
    # (docs.stripe.com/payments/save-and-reuse); the card is collected by the Payment Element in
    # the browser, exactly as for a hold. Monthly fees are charged off-session to the saved card.
    def customer_create(self, *, email: str, idempotency_key: str) -> str:
        raise NotImplementedError

    def customer_delete(self, customer: str) -> None:
        """Delete the customer at the processor (its saved cards go with it)."""
        raise NotImplementedError

    def setup_intent_create(self, *, customer: str, idempotency_key: str) -> SetupIntent:
        raise NotImplementedError

    def setup_intent_get(self, reference: str) -> SetupIntent:
        raise NotImplementedError

    def payment_method_get(self, reference: str) -> SavedCard:
        raise NotImplementedError

    def payment_method_detach(self, reference: str) -> None:
        raise NotImplementedError

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
        """Charge a saved card off-session (captured at once). ok=False with the decline reason."""
        raise NotImplementedError

    # Connect: the host's payout account. The processor's hosted onboarding collects the bank
    # account and identity; we keep only the account id and whether payouts are enabled.
    def connect_account_create(self, *, email: str, country: str, idempotency_key: str) -> str:
        raise NotImplementedError

    def connect_onboarding_link(self, *, account: str, refresh_url: str, return_url: str) -> str:
        raise NotImplementedError

    def connect_account_ready(self, account: str) -> bool:
        raise NotImplementedError


class StripeGateway(PaymentGateway):
    """Manual-capture PaymentIntents through the official `stripe` client (pinned in pyproject)."""

    name = "stripe"
    sandbox = False

    def __init__(self, api_key: str, http_client: Any = None, publishable_key: str = "") -> None:
        import stripe

        self._stripe = stripe
        self.publishable_key = publishable_key
        kwargs = {"http_client": http_client} if http_client is not None else {}
        self.client = stripe.StripeClient(api_key, max_network_retries=2, **kwargs)

    @staticmethod
    def _dict(obj: Any) -> dict:
        return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)

    def _words(self, exc: Exception) -> str:
        """What a page may say of a Stripe error: a card error's message is written for the
        person paying ("Your card was declined."); any other is ours, the processor's in the log."""
        message = getattr(exc, "user_message", None)
        if isinstance(exc, self._stripe.CardError) and message:
            return str(message)
        logger.warning("Stripe refused a request: %r", exc)
        return PROCESSOR_FAILED

    def _refused(self, exc: Exception) -> GatewayError:
        return GatewayError(self._words(exc))

    def _fail(self, exc: Exception, reference: str = "") -> PaymentResult:
        return PaymentResult(False, reference, self._words(exc))

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
        params: Any = {
            "amount": to_minor(amount, currency),
            "currency": currency.lower(),
            "capture_method": "manual",
            "metadata": metadata,
            "payment_method_types": ["card"],
        }
        if description:
            params["description"] = description
        if payment_method:
            params.update(confirm=True, payment_method=payment_method)
            if return_url:
                params["return_url"] = return_url
        if customer:  # a saved card is confirmed only on the intent of the customer it belongs to
            params["customer"] = customer
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"hold-{idempotency_key}"}
            )
        except self._stripe.CardError as exc:
            # A declined confirmation: the error carries the intent (requires_payment_method).
            body: Any = (exc.json_body or {}).get("error", {})  # type: ignore[attr-defined]
            if body.get("payment_intent"):
                data = dict(body["payment_intent"])
                data.setdefault("last_payment_error", {"message": self._words(exc)})
                return intent_from(data)
            raise self._refused(exc) from exc
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc
        return intent_from(self._dict(intent))

    def hold_get(self, reference: str) -> Intent:
        try:
            intent = self.client.v1.payment_intents.retrieve(
                reference, params={"expand": ["latest_charge"]}
            )
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc
        return intent_from(self._dict(intent))

    def holds_find(self, *, metadata_key: str, value: str) -> list[Intent]:
        # Stripe's Search API (docs.stripe.com/search): its index may lag about a minute.
        found = self._call(
            self.client.v1.payment_intents.search,
            params={"query": f"metadata['{metadata_key}']:'{value}'"},
        )
        return [intent_from(self._dict(intent)) for intent in found.data]

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
            currency = intent.currency.upper()
            intent = self.client.v1.payment_intents.capture(
                reference,
                params={"amount_to_capture": to_minor(amount, currency)},
                options={"idempotency_key": f"capture-{idempotency_key}"},
            )
        except self._stripe.StripeError as exc:
            return self._fail_or_unknown(exc, reference, "Capture")
        if intent.status != "succeeded":
            return PaymentResult(False, reference, f"Capture did not succeed ({intent.status}).")
        return PaymentResult(True, reference, amount=from_minor(intent.amount_received, currency))

    def release(self, reference: str, idempotency_key: str) -> PaymentResult:
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, options={"idempotency_key": f"release-{idempotency_key}"}
            )
        except self._stripe.StripeError as exc:
            return self._fail_or_unknown(exc, reference, "Release")
        return PaymentResult(
            intent.status == "canceled",
            reference,
            "" if intent.status == "canceled" else f"Not released ({intent.status}).",
        )

    def _unanswered(self, exc: Exception) -> bool:
        """Whether a failed request leaves its outcome unknown: no connection, Stripe's 5xx or
        429, or its 409 (another request with the same idempotency key still in progress; the
        client already retried it twice). Only the same key may ask again."""
        s = self._stripe
        return isinstance(
            exc, (s.APIConnectionError, s.APIError, s.RateLimitError, s.IdempotencyError)
        )

    def _fail_or_unknown(self, exc: Exception, reference: str, what: str) -> PaymentResult:
        """A refusal (answered), or a request whose outcome is unknown (answered=False: its 409,
        5xx, 429, no connection): then only the same key may ask again."""
        if self._unanswered(exc):
            logger.warning("%s of %s without an answer: %r", what, reference, exc)
            return PaymentResult(False, reference, PROCESSOR_FAILED, answered=False)
        return self._fail(exc, reference)

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentResult:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": reference,
                    "amount": to_minor(amount, intent.currency.upper()),
                    "metadata": {REFUND_KEY: idempotency_key},
                },
                options={"idempotency_key": f"refund-{idempotency_key}"},
            )
        except self._stripe.StripeError as exc:
            if self._unanswered(exc):
                logger.warning("Refund of %s without an answer: %r", reference, exc)
                return PaymentResult(False, reference, PROCESSOR_FAILED, answered=False)
            return self._fail(exc, reference)
        ok = refund.status in ("succeeded", "pending")
        return PaymentResult(
            ok,
            refund.id,
            "" if ok else f"Refund {refund.status}.",
            amount=from_minor(refund.amount, intent.currency.upper()),
        )

    def refunds_list(self, reference: str) -> list[RefundMade]:
        # GET /v1/refunds?payment_intent=…: every refund of the payment, newest first, with its
        # status and metadata (docs.stripe.com/api/refunds/list).
        made = []
        try:
            page = self.client.v1.refunds.list(params={"payment_intent": reference, "limit": 100})
            for refund in page.auto_paging_iter():
                data = self._dict(refund)
                currency = str(data.get("currency") or "").upper()
                made.append(
                    RefundMade(
                        reference=str(data["id"]),
                        amount=from_minor(int(data.get("amount") or 0), currency),
                        status=str(data.get("status") or ""),
                        key=str((data.get("metadata") or {}).get(REFUND_KEY) or ""),
                        created=int(data.get("created") or 0),
                    )
                )
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc
        return made

    def events_list(self, *, created_gte: int, account: str = "") -> list[dict[str, Any]]:
        options: Any = {"stripe_account": account} if account else {}
        events = []
        try:
            page = self.client.v1.events.list(
                params={"created": {"gte": created_gte}, "limit": 100}, options=options
            )
            for event in page.auto_paging_iter():  # newest first, page after page
                data = self._dict(event)
                if account:
                    data.setdefault("account", account)  # as a Connect webhook names it
                events.append(data)
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc
        return events[::-1]

    # -- Saved cards ----------------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc

    def customer_create(self, *, email: str, idempotency_key: str) -> str:
        customer = self._call(
            self.client.v1.customers.create,
            params={"email": email},
            options={"idempotency_key": f"customer-{idempotency_key}"},
        )
        return str(customer.id)

    def customer_delete(self, customer: str) -> None:
        try:
            self.client.v1.customers.delete(customer)
        except self._stripe.InvalidRequestError as exc:
            if getattr(exc, "code", "") != "resource_missing":  # already gone is what we want
                raise self._refused(exc) from exc
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc

    def setup_intent_create(self, *, customer: str, idempotency_key: str) -> SetupIntent:
        intent = self._call(
            self.client.v1.setup_intents.create,
            params={"customer": customer, "payment_method_types": ["card"], "usage": "off_session"},
            options={"idempotency_key": f"setup-{idempotency_key}"},
        )
        return setup_intent_from(self._dict(intent))

    def setup_intent_get(self, reference: str) -> SetupIntent:
        return setup_intent_from(
            self._dict(self._call(self.client.v1.setup_intents.retrieve, reference))
        )

    def payment_method_get(self, reference: str) -> SavedCard:
        return saved_card_from(
            self._dict(self._call(self.client.v1.payment_methods.retrieve, reference))
        )

    def payment_method_detach(self, reference: str) -> None:
        self._call(self.client.v1.payment_methods.detach, reference)

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
        params: Any = {
            "amount": to_minor(amount, currency),
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
        }
        if description:
            params["description"] = description
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"charge-{idempotency_key}"}
            )
        except self._stripe.CardError as exc:
            body: Any = (exc.json_body or {}).get("error", {})  # type: ignore[attr-defined]
            ref = str((body.get("payment_intent") or {}).get("id", ""))
            return PaymentResult(False, ref, exc.user_message or str(exc))
        except (
            self._stripe.APIConnectionError,
            self._stripe.RateLimitError,
            self._stripe.APIError,  # also Stripe's 409: the same key still in progress
            self._stripe.IdempotencyError,
        ) as exc:
            # The client already retried with this key; whether Stripe charged is unknown.
            return PaymentResult(
                False, "", f"No answer from Stripe: {exc.__class__.__name__}", answered=False
            )
        except self._stripe.StripeError as exc:
            return self._fail(exc)
        if intent.status != "succeeded":
            return PaymentResult(False, intent.id, f"Not charged ({intent.status}).")
        return PaymentResult(True, intent.id, amount=from_minor(intent.amount_received, currency))

    # -- Connect: a host's payout account -------------------------------------------------------

    def connect_account_create(self, *, email: str, country: str, idempotency_key: str) -> str:
        params: Any = {"type": "express", "capabilities": {"transfers": {"requested": True}}}
        if email:
            params["email"] = email
        if country:
            params["country"] = country
        # Through _call: Stripe's own errors (5xx, 429, no answer) are GatewayError in our words.
        account = self._call(
            self.client.v1.accounts.create,
            params=params,
            options={"idempotency_key": f"account-{idempotency_key}"},
        )
        return str(account.id)

    def connect_onboarding_link(self, *, account: str, refresh_url: str, return_url: str) -> str:
        link = self._call(
            self.client.v1.account_links.create,
            params={
                "account": account,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            },
        )
        return str(link.url)

    def connect_account_ready(self, account: str) -> bool:
        try:
            data = self.client.v1.accounts.retrieve(account)
        except self._stripe.StripeError as exc:
            raise self._refused(exc) from exc
        return bool(data.details_submitted and data.payouts_enabled)


def _secret(name: str) -> str:
    return env_secret(name)


# The sandbox sits above this module: it answers like Stripe and posts its signed events to our
# webhook receiver, which writes through billing/services/. So it is not imported here; it
# registers its gateway in BillingConfig.ready() (billing/apps.py).
sandbox_gateway: Provider[Callable[[], PaymentGateway]] = Provider("the sandbox payment gateway")


def sandbox_in_use() -> bool:
    """True when payments are simulated: pages then say "test mode"."""
    return settings.PAYMENT_GATEWAY == "sandbox"


def get_gateway() -> PaymentGateway:
    """Return the configured gateway: Stripe when PAYMENT_GATEWAY=stripe, else the sandbox."""
    if settings.PAYMENT_GATEWAY == "stripe":
        key = _secret("STRIPE_SECRET_KEY")
        if not key:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY.")
        return StripeGateway(key, publishable_key=env_str("STRIPE_PUBLISHABLE_KEY"))
    return sandbox_gateway.call()
