"""Settling what pricing held: the sweep that prices sessions still unpriced and releases
the guest payments of sessions whose hold was lifted, and support's waiver of a held settlement."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from chargers.models import ChargingSession

from ..models import (
    Payment,
    SessionCharge,
)
from .payments import guest_payment_settle
from .refunds import overcharges_refund
from .sessions import session_price, sessions_price

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def sessions_price_missing(*, limit: int = 1000, since: datetime | None = None) -> int:
    """Price completed sessions without a snapshot, or whose snapshot is older than the stop
    (a late StopTransaction). Returns how many were priced. The periodic sweep calls this; a
    session whose pricing fails is logged and left for the next sweep, the others are priced."""
    since = since or timezone.now() - timedelta(days=35)
    queryset = ChargingSession.objects.filter(
        status=ChargingSession.Status.COMPLETED,
        charger__property__isnull=False,
        received_stop_at__gte=since,
    ).filter(
        Q(charge__isnull=True)
        | Q(charge__final=False)
        | Q(charge__priced_at__lt=F("received_stop_at"))
        # Held: priced again until the signature verifies (a key registered) or the policy
        # changes; then the guest payment held for it is captured.
        | Q(charge__held=True)
    )
    ids = list(queryset.values_list("pk", flat=True)[:limit])
    held = set(
        SessionCharge.objects.filter(session_id__in=ids, held=True).values_list(
            "session_id", flat=True
        )
    )
    priced = sessions_price(ids)
    if held:
        settlements_released(held)
    overcharges_refund(ids)  # a late stop priced here, its pricing task lost
    return priced


def settlement_hold_waive(*, session_id: int, user: Any) -> SessionCharge | None:
    """Support's decision on a held settlement: bill the measured energy (the signed readings
    stay as they are, shown as not verified). Re-prices the session and captures a guest
    payment held for it. Idempotent; None when the session has no held charge."""
    with transaction.atomic():
        charge = SessionCharge.objects.select_for_update().filter(session_id=session_id).first()
        if charge is None or (not charge.held and charge.hold_waived_at is None):
            return None
        if charge.hold_waived_at is None:
            charge.hold_waived_at = timezone.now()
            charge.hold_waived_by = user
            charge.save(update_fields=["hold_waived_at", "hold_waived_by"])
    session_price(session_id=session_id)
    settlements_released({session_id})
    return SessionCharge.objects.get(session_id=session_id)


def settlements_released(session_ids: set[int]) -> int:
    """Capture the guest payments of sessions whose hold was lifted; return how many."""
    released = SessionCharge.objects.filter(session_id__in=session_ids, held=False)
    payments = Payment.objects.filter(
        session_id__in=released.values("session_id"), status=Payment.Status.AUTHORIZED
    ).select_related("session")
    done = 0
    for payment in payments:
        try:
            assert payment.session is not None
            guest_payment_settle(payment=payment, session=payment.session)
            done += 1
        except Exception:
            logger.exception("Settling payment %s after its hold was lifted failed", payment.pk)
    return done
