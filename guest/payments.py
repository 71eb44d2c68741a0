"""The guest app's only door into billing (the contract in docs/guest.md), imported lazily.

Billing sits below guest in the layers, but it is built in parallel: importing it inside these
functions keeps the guest pages that need no money (prompts, labels) working without it, and
gives tests one seam to replace.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


def available() -> bool:
    """True when the billing app provides the payment gateway (guest starts need it)."""
    try:
        from billing import gateways, services  # noqa: F401
    except ImportError:
        return False
    return True


def rate_for_charger(charger, at: datetime):
    try:
        from billing.selectors import rate_for_charger as select
    except ImportError:
        return None
    return select(charger, at)


def gateway_info() -> tuple[str, bool]:
    """Return (gateway name, is_sandbox)."""
    from billing.gateways import get_gateway

    gateway = get_gateway()
    name = getattr(gateway, "name", type(gateway).__name__)
    sandbox = bool(getattr(gateway, "sandbox", "sandbox" in str(name).lower()))
    return str(name), sandbox


def hold_amount(charger, at: datetime) -> Decimal | None:
    """The hold for a guest session here: the rate's price of the session ceiling (None: no rate)."""
    from billing.services import guest_hold_amount

    rate = rate_for_charger(charger, at)
    return None if rate is None else guest_hold_amount(rate)


def hold_create(
    *,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
    description: str = "",
    payment_method: str = "",
    return_url: str = "",
):
    """Create the manual-capture PaymentIntent (never inside a database transaction)."""
    from billing.gateways import get_gateway

    return get_gateway().hold_create(
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        metadata=metadata,
        description=description,
        payment_method=payment_method,
        return_url=return_url,
    )


def hold_get(reference: str):
    from billing.gateways import get_gateway

    return get_gateway().hold_get(reference)


def publishable_key() -> str:
    from billing.gateways import get_gateway

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
    from billing.models import Payment
    from billing.services import guest_payment_record

    return guest_payment_record(
        session_id=None,
        organization_id=organization_id,
        amount_held=amount_held,
        currency=currency,
        reference=reference,
        email=email,
        status=Payment.Status.PENDING if pending else Payment.Status.AUTHORIZED,
    )


def authorized(*, reference: str, amount_held: Decimal, card_last4: str):
    from billing.services import guest_payment_authorized

    return guest_payment_authorized(
        reference=reference, amount_held=amount_held, card_last4=card_last4
    )


def _payment(payment_id: int):
    from billing.models import Payment

    return Payment.objects.get(pk=payment_id)


def settle(*, payment_id: int, session):
    from billing.services import guest_payment_settle

    return guest_payment_settle(payment=_payment(payment_id), session=session)


def release(*, payment_id: int, reason: str):
    from billing.services import guest_payment_release

    return guest_payment_release(payment=_payment(payment_id), reason=reason)


def payment_summary(payment_id: int | None) -> dict | None:
    """Return what the receipt shows of the payment: captured, held, status."""
    if payment_id is None:
        return None
    try:
        payment = _payment(payment_id)
    except Exception:  # billing missing or row gone: the receipt still shows the session
        return None
    return {
        "amount_held": payment.amount_held,
        "amount_captured": getattr(payment, "amount_captured", None),
        "amount_refunded": getattr(payment, "amount_refunded", None),
        "status": getattr(payment, "status", ""),
        "last_error": getattr(payment, "last_error", ""),
        "currency": payment.currency,
    }


def session_cost(session):
    from billing.services import session_cost as cost

    return cost(session)
