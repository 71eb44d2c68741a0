"""The guest app's only door into billing (the contract in docs/guest.md).

Billing sits below guest in the layers, so this module imports it plainly; guest pages call
these few functions and nothing else of billing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from billing import price_shown
from billing import services as billing_services
from billing.gateways import GatewayError as GatewayError  # guest catches refusals by this name
from billing.gateways import get_gateway
from billing.models import Payment
from billing.selectors import rate_for_charger as _rate_for_charger


def rate_for_charger(charger, at: datetime):
    return _rate_for_charger(charger, at)


def gateway_info() -> tuple[str, bool]:
    """Return (gateway name, is_sandbox)."""
    gateway = get_gateway()
    name = getattr(gateway, "name", type(gateway).__name__)
    sandbox = bool(getattr(gateway, "sandbox", "sandbox" in str(name).lower()))
    return str(name), sandbox


def hold_amount_for(rate) -> Decimal:
    return billing_services.guest_hold_amount(rate)


def hold_amount(charger, at: datetime) -> Decimal | None:
    """The hold for a guest session here: the rate's price of the session ceiling (None: no rate)."""
    rate = rate_for_charger(charger, at)
    return None if rate is None else billing_services.guest_hold_amount(rate)


def hold_create(
    *,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
    description: str = "",
    payment_method: str = "",
    return_url: str = "",
    customer: str = "",
):
    """Create the manual-capture PaymentIntent (never inside a database transaction)."""
    return get_gateway().hold_create(
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        metadata=metadata,
        description=description,
        payment_method=payment_method,
        return_url=return_url,
        customer=customer,
    )


def hold_get(reference: str):
    return get_gateway().hold_get(reference)


def publishable_key() -> str:
    return str(getattr(get_gateway(), "publishable_key", "") or "")


def record(
    *,
    organization_id: int,
    amount_held: Decimal,
    currency: str,
    reference: str,
    email: str,
    pending: bool = False,
):
    return billing_services.guest_payment_record(
        session_id=None,
        organization_id=organization_id,
        amount_held=amount_held,
        currency=currency,
        reference=reference,
        email=email,
        status=Payment.Status.PENDING if pending else Payment.Status.AUTHORIZED,
    )


def authorized(*, reference: str, amount_held: Decimal, card_last4: str):
    return billing_services.guest_payment_authorized(
        reference=reference, amount_held=amount_held, card_last4=card_last4
    )


def _payment(payment_id: int):
    return Payment.objects.get(pk=payment_id)


def settle(*, payment_id: int, session):
    return billing_services.guest_payment_settle(payment=_payment(payment_id), session=session)


def release(*, payment_id: int, reason: str):
    """Release the hold; raises GatewayError (re-exported here) when the processor refuses."""
    return billing_services.guest_payment_release(payment=_payment(payment_id), reason=reason)


def release_unrecorded(*, guest_session_key: str) -> int:
    """Cancel the holds made for this guest session that were never recorded (GatewayError)."""
    return billing_services.holds_unrecorded_release(guest_session_key=guest_session_key)


def unreleased(payment_ids: list[int]) -> list[int]:
    """Those of the payments whose hold is still on the card (pending or authorized)."""
    return list(
        Payment.objects.filter(
            pk__in=payment_ids, status__in=(Payment.Status.PENDING, Payment.Status.AUTHORIZED)
        ).values_list("pk", flat=True)
    )


def payment_summary(payment_id: int | None) -> dict | None:
    """Return what the receipt shows of the payment: captured, held, status."""
    if payment_id is None:
        return None
    try:
        payment = _payment(payment_id)
    except Payment.DoesNotExist:  # row gone: the receipt still shows the session
        return None
    captured = getattr(payment, "amount_captured", None)
    refunded = getattr(payment, "amount_refunded", None) or 0
    return {
        "amount_held": payment.amount_held,
        "amount_captured": captured,
        "amount_refunded": refunded,
        # Each refund (an agent's or the host's) with its reason, and what the guest paid net.
        "refunds": [
            {"amount": r.amount, "reason": r.reason, "created_at": r.created_at}
            for r in payment.refunds.order_by("created_at", "pk")
        ],
        "net": (captured - refunded) if captured is not None else None,
        "status": getattr(payment, "status", ""),
        "last_error": getattr(payment, "last_error", ""),
        "currency": payment.currency,
    }


def session_cost(session):
    return billing_services.session_cost(session)


def receipt_issue(session_id: int, *, buyer_company: str = "", buyer_vat_id: str = ""):
    """The session's numbered receipt in the seller's (the host's) name; issued on first ask."""
    from billing.receipts import receipt_issue as issue

    return issue(session_id=session_id, buyer_company=buyer_company, buyer_vat_id=buyer_vat_id)


def receipt_issued_facts(receipt):
    """What the receipt said when issued (billing.receipts); None: show the session as it is."""
    from billing.receipts import receipt_issued_facts as issued

    return issued(receipt)


def price_version_key(rate) -> str:
    return price_shown.version_key(rate)


def price_shown_record(*, charger, rate, driver: bool, guest_session_id: int, at: datetime):
    """Store the price the guest (or signed-in driver) was shown and agreed to for this start."""
    source = price_shown.PriceShown.Source.DRIVER if driver else price_shown.PriceShown.Source.GUEST
    return price_shown.price_shown_record(
        charger=charger, rate=rate, source=source, reference=f"guest:{guest_session_id}", at=at
    )


def price_shown_attach(*, guest_session_id: int, session_id: int) -> None:
    price_shown.price_shown_attach(reference=f"guest:{guest_session_id}", session_id=session_id)


def price_version(session):
    return price_shown.price_version(session)


def billed_rate(session):
    """The rate the session is billed with: its stored price version's, else (a session from
    before versions were stored) the one in force at its start."""
    return price_shown.session_rate(session)[0]


def billed_tariff_text(session) -> str | None:
    """The rate the session is billed with, in one line for a charger's display; None: no rate."""
    from billing.pricing import tariff_text

    rate = billed_rate(session)
    return None if rate is None else tariff_text(billing_services.rate_terms(rate))


def price_for_guest(guest_session_id: int, session=None):
    """The price version of a guest's start (stored when they started), else its session's."""
    shown = price_shown.PriceShown.objects.filter(reference=f"guest:{guest_session_id}").first()
    if shown is None and session is not None:
        shown = price_shown.price_version(session)
    return shown
