"""Processor webhooks: the source of truth for what happened to a payment.

receive() checks the `Stripe-Signature` header (t=<time>,v1=<HMAC-SHA256 of "t.payload">, five
minutes' tolerance) with the official stripe package before reading anything, stores each
event once by its id (Stripe delivers at least once, sometimes out of order) and brings the
Payment or Payout it names up to date. Both gateways deliver here: Stripe over HTTP
(views.stripe_webhook), the sandbox in-process with the same signed bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice.env import env_secret

from .models import Payment, Payout, WebhookEvent
from .money import from_minor
from .services.payouts import payout_mark_failed, payout_mark_paid
from .signals import hold_authorized

logger = logging.getLogger(__name__)

TOLERANCE_S = 300


def webhook_secret() -> str:
    """The signing secret of the webhook endpoint (whsec_…); the sandbox derives its own."""
    if settings.PAYMENT_GATEWAY == "stripe":
        return env_secret("STRIPE_WEBHOOK_SECRET")
    return sandbox_webhook_secret()


def sandbox_webhook_secret() -> str:
    """A per-installation signing secret for sandbox webhooks (derived, never configured)."""
    digest = hashlib.sha256(f"sandbox-webhook:{settings.SECRET_KEY}".encode()).hexdigest()[:32]
    return f"whsec_sandbox_{digest}"


class WebhookRejected(ValueError):
    """The request is not a genuine, well-formed event (answer 400, Stripe retries)."""


class MalformedEvent(ValueError):
    """A genuine event whose object cannot be applied (a permanent problem: stored, answered 200)."""


# Stripe's largest amount is 99,999,999 minor units; this bound also fits every MONEY column.
MAX_MINOR = 9_999_999_999
BAD_SIGNATURE = "The Stripe-Signature header is missing, wrong or too old."


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")  # 1e400: the JSON column cannot store it
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def verify(payload: bytes, signature_header: str, secret: str) -> dict[str, Any]:
    """Return the event if the signature is valid and recent; raise WebhookRejected otherwise."""
    import stripe

    if not secret:
        raise WebhookRejected("No webhook signing secret is configured.")
    # stripe decodes the body as UTF-8 and compares the signatures as str: other bytes would raise.
    if not signature_header.isascii():
        raise WebhookRejected(BAD_SIGNATURE)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected("The body is not UTF-8.") from exc
    try:
        stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance=TOLERANCE_S)
    except stripe.SignatureVerificationError as exc:
        # The library's words stay in the log, not in the answer.
        logger.info("Webhook signature refused: %s", exc.user_message or exc)
        raise WebhookRejected(BAD_SIGNATURE) from exc
    try:
        event = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except ValueError as exc:
        raise WebhookRejected("The body is not JSON.") from exc
    event = _without_nul(event)  # signed as sent; stored without what no text column keeps
    if not _is_event(event):
        raise WebhookRejected("The body is not an event.")
    return event


def _without_nul(value: Any) -> Any:
    """The event with NUL characters (JSON \\u0000) dropped from every key and text: PostgreSQL
    stores none, and refusing the delivery made the processor retry it for days."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _is_event(event: Any) -> bool:
    """The envelope receive() stores: an id that fits, a type, and data.object an object."""
    if not isinstance(event, dict) or event.get("object") != "event":
        return False
    event_id, data = event.get("id"), event.get("data")
    return (
        isinstance(event_id, str)
        and 0 < len(event_id) <= 100
        and isinstance(event.get("type", ""), str)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    )


def receive(payload: bytes, signature_header: str) -> WebhookEvent | None:
    """Verify, store once and apply an event. Returns None for a replayed event id."""
    return _store_and_apply(verify(payload, signature_header, webhook_secret()))


def _store_and_apply(event: dict[str, Any]) -> WebhookEvent | None:
    """Store a genuine event once by its id and apply it; None when its id is already stored."""
    obj = event["data"]["object"]
    # One transaction: a handler that fails leaves no trace, the 500 makes Stripe retry.
    with transaction.atomic():
        try:
            with transaction.atomic():
                stored = WebhookEvent.objects.create(
                    event_id=str(event["id"]),
                    type=str(event.get("type", ""))[:60],
                    livemode=bool(event.get("livemode")),
                    object_id=str(obj.get("id", ""))[:100],
                    payload=event,
                )
        except IntegrityError:
            return None
        handler = _handler(stored.type, event)
        if handler is not None:
            _apply(stored, handler, obj)
    return stored


def _handler(kind: str, event: dict[str, Any]) -> Callable[[dict], None] | None:
    """What applies an event of this type; a payout event also answers for its Connect account."""
    if kind in ("payout.paid", "payout.failed"):
        account = event.get("account")
        return lambda obj: on_payout(obj, paid=kind == "payout.paid", account=account)
    return HANDLERS.get(kind)


def _apply(stored: WebhookEvent, handler: Callable[[dict], None], obj: dict) -> None:
    try:
        with transaction.atomic():
            handler(obj)
    except MalformedEvent as exc:
        # A retry would fail the same way for days: keep the event with the reason, answer 200.
        logger.error("Webhook event %s not applied: %s", stored.event_id, exc)
        stored.error = str(exc)[:300]
        stored.save(update_fields=["error"])
        return
    stored.processed_at = timezone.now()
    stored.save(update_fields=["processed_at"])


def _part(obj: dict, key: str) -> dict:
    """The nested object under key ({} when absent); anything else is a malformed event."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} is not an object.")
    return value


def _minor(obj: dict, key: str) -> int:
    """An amount in minor units (0 when absent): Stripe sends a non-negative integer."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise MalformedEvent(f"{key} is not an amount in minor units.")
    return value


def _object_id(obj: dict, key: str = "id") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{key} is not an id.")
    return value


def _payment(reference: str) -> Payment | None:
    return Payment.objects.select_for_update().filter(reference=reference).first()


def _last4(obj: dict) -> str:
    charge = obj.get("latest_charge")
    if isinstance(charge, dict):
        return str(_part(_part(charge, "payment_method_details"), "card").get("last4", ""))[:4]
    return ""


def on_capturable(obj: dict) -> None:
    payment = _payment(_object_id(obj))
    if payment is None:
        return
    if payment.status == Payment.Status.PENDING:
        payment.status = Payment.Status.AUTHORIZED
        payment.amount_held = from_minor(
            _minor(obj, "amount_capturable") or _minor(obj, "amount"), payment.currency
        )
        payment.last_error = ""
        payment.card_last4 = _last4(obj) or payment.card_last4
        payment.save(update_fields=["status", "amount_held", "last_error", "card_last4"])
        reference = payment.reference
        transaction.on_commit(lambda: hold_authorized.send(sender=Payment, reference=reference))


def on_failed(obj: dict) -> None:
    payment = _payment(_object_id(obj))
    if payment is None:
        return
    message = str(_part(obj, "last_payment_error").get("message") or "The card was declined.")[:300]
    payment.last_error = message
    payment.save(update_fields=["last_error"])


def on_succeeded(obj: dict) -> None:
    payment = _payment(_object_id(obj))
    if payment is None:
        return
    received = from_minor(_minor(obj, "amount_received"), payment.currency)
    if payment.status in (Payment.Status.PENDING, Payment.Status.AUTHORIZED):
        # Booking the ledger is settle's job (it knows the session); the sweep finishes it.
        payment.status = Payment.Status.CAPTURED
        payment.amount_captured = received
        payment.settled_at = payment.settled_at or timezone.now()
        payment.save(update_fields=["status", "amount_captured", "settled_at"])
    elif payment.status == Payment.Status.CAPTURED and payment.amount_captured != received:
        logger.error(
            "Payment %s: captured %s here, %s at the processor",
            payment.reference,
            payment.amount_captured,
            received,
        )


def on_canceled(obj: dict) -> None:
    payment = _payment(_object_id(obj))
    if payment is None or payment.status not in (Payment.Status.PENDING, Payment.Status.AUTHORIZED):
        return
    payment.status = Payment.Status.RELEASED
    reason = str(obj.get("cancellation_reason") or "no reason given")[:150]
    payment.release_reason = payment.release_reason or f"Canceled at the processor ({reason})."
    payment.settled_at = payment.settled_at or timezone.now()
    payment.save(update_fields=["status", "release_reason", "settled_at"])


def on_refunded(obj: dict) -> None:
    payment = _payment(str(obj.get("payment_intent") or ""))
    if payment is None:
        return
    refunded = from_minor(_minor(obj, "amount_refunded"), payment.currency)
    if refunded > payment.amount_refunded:
        # A refund made outside this product (the processor's dashboard): say so, keep the truth.
        logger.warning(
            "Payment %s: %s refunded at the processor, %s here",
            payment.reference,
            refunded,
            payment.amount_refunded,
        )
        payment.amount_refunded = min(refunded, payment.amount_captured or refunded)
        payment.save(update_fields=["amount_refunded"])


def on_payout(obj: dict, *, paid: bool, account: Any) -> None:
    """A payout paid or failed at the processor. The payout is found by the reference we gave it,
    but only the event of its organization's own connected account (the event's `account`)
    may change it: a reference can be copied into any account's payout metadata."""
    reference = str(_part(obj, "metadata").get("payout_reference") or "")
    payout = Payout.objects.filter(reference=reference).first() if reference else None
    if payout is None:
        logger.info(
            "Payout event %s matches no payout here (reconcile with the payout report)",
            obj.get("id"),
        )
        return
    _same_account(payout, account)
    expected = payout.net
    reported = from_minor(_minor(obj, "amount"), str(obj.get("currency") or payout.currency))
    if paid:
        if reported != Decimal(expected):
            logger.error("Payout %s: %s expected, %s paid", payout.reference, expected, reported)
        payout_mark_paid(payout=payout)
    else:
        payout_mark_failed(
            payout=payout, reason=str(obj.get("failure_message") or obj.get("failure_code") or "")
        )


def _same_account(payout: Payout, account: Any) -> None:
    from .models import BillingSettings

    expected = (
        BillingSettings.objects.filter(organization_id=payout.organization_id)
        .values_list("payout_account_id", flat=True)
        .first()
    )
    if not isinstance(account, str) or not account:
        raise MalformedEvent(
            f"The event names no connected account: payout {payout.reference} unchanged."
        )
    if account != expected:
        raise MalformedEvent(
            f"The event's connected account {account[:60]} is not the payout account of payout "
            f"{payout.reference}'s organization: the payout is unchanged."
        )


def on_account_updated(obj: dict) -> None:
    from .models import BillingSettings

    ready = bool(obj.get("details_submitted") and obj.get("payouts_enabled"))
    BillingSettings.objects.filter(payout_account_id=str(obj.get("id") or "")).update(
        payout_account_ready=ready, payout_account_checked_at=timezone.now()
    )


HANDLERS: dict[str, Callable[[dict], None]] = {
    "account.updated": on_account_updated,
    "payment_intent.amount_capturable_updated": on_capturable,
    "payment_intent.payment_failed": on_failed,
    "payment_intent.succeeded": on_succeeded,
    "payment_intent.canceled": on_canceled,
    "charge.refunded": on_refunded,
    # payout.paid and payout.failed: _handler (they also read the event's Connect account).
}


# The event backfill: events the processor sent while we could not take them are lost once its
# retries run out (Stripe retries for up to three days). The backfill lists the processor's
# events since it last listed (its own mark per account, minus an overlap for events that show
# late in the list) and passes each one not stored yet through the same store-and-apply as a
# delivery, so an event applies once whichever way it came.
BACKFILL_FIRST = timedelta(days=3)  # the first run: as far back as the processor retries
BACKFILL_OVERLAP = timedelta(minutes=10)
BACKFILL_KEPT = timedelta(days=30)  # Stripe lists 30 days of events


def backfill(*, now: datetime | None = None) -> dict[str, int]:
    """List the events missed since the last backfill (the platform's and each host's payout
    account's) and apply those not received; {"listed", "applied", "failed"}. An account whose
    events could not all be listed or applied keeps its mark, so the next run lists them again.
    Called with no transaction open (it calls the processor)."""
    from .gateways import GatewayError, get_gateway
    from .models import BillingSettings, WebhookBackfill

    now = now or timezone.now()
    gateway = get_gateway()
    accounts = [""] + sorted(
        set(
            BillingSettings.objects.exclude(payout_account_id="").values_list(
                "payout_account_id", flat=True
            )
        )
    )
    counts = {"listed": 0, "applied": 0, "failed": 0}
    for account in accounts:
        mark = WebhookBackfill.objects.filter(account=account).first()
        since = mark.listed_until - BACKFILL_OVERLAP if mark else now - BACKFILL_FIRST
        since = max(since, now - BACKFILL_KEPT + timedelta(hours=1))
        try:
            events = gateway.events_list(created_gte=int(since.timestamp()), account=account)
        except GatewayError as exc:
            logger.warning("Event backfill of %s: the processor did not list (%s)", account, exc)
            counts["failed"] += 1
            continue
        complete = True
        for event in events:
            counts["listed"] += 1
            event = _without_nul(event)
            if not _is_event(event):
                logger.error("Event backfill of %s: not an event: %.200r", account, event)
                continue
            if WebhookEvent.objects.filter(event_id=str(event["id"])).exists():
                continue  # delivered (or backfilled) already
            try:
                stored = _store_and_apply(event)
            except Exception:
                logger.exception("Event backfill: event %s not applied", event.get("id"))
                counts["failed"] += 1
                complete = False
                continue
            counts["applied"] += stored is not None
        if complete:
            WebhookBackfill.objects.update_or_create(
                account=account, defaults={"listed_until": now, "run_at": now}
            )
    if counts["applied"]:
        logger.warning("Event backfill applied %s event(s) never delivered", counts["applied"])
    return counts
