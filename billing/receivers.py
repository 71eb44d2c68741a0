"""Signal receivers: no rules here, only a hand-off to the pricing task on commit."""

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# A restart storm stops thousands of sessions within seconds, each on a database thread whose
# Celery publish held the GIL the event loop needs: finished sessions are priced in batches,
# one task per PRICING_BATCH_S.
PRICING_BATCH_S = 0.2


class PricingBatch:
    """Session ids waiting to be priced, published as one task a short moment after the first.

    Ids still here when the process is killed are priced by the periodic sweep
    (billing.sessions_price_missing, every BILLING_SWEEP_SECONDS), as is any failed publish."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, session_id: int) -> None:
        with self._lock:
            self._ids.append(session_id)
            if self._timer is None:
                self._timer = threading.Timer(PRICING_BATCH_S, self.publish)
                self._timer.daemon = True
                self._timer.start()

    def publish(self) -> None:
        from .tasks import sessions_price_task

        with self._lock:
            ids, self._ids = self._ids, []
            if self._timer is not None:
                self._timer.cancel()  # when called directly (tests, shutdown)
            self._timer = None
        if not ids:
            return
        try:
            sessions_price_task.delay(ids)
        except Exception:
            logger.exception(
                "Queueing the pricing of %d sessions failed; the periodic sweep will", len(ids)
            )


pricing_batch = PricingBatch()


def price_finished_session(sender, session_id: int, **kwargs) -> None:
    """Queue pricing on commit. A failure here must never break the charger's StopTransaction
    reply (tasks run in-process without a broker): it is logged and the sweep prices later."""
    from .tasks import session_price_task

    def queue() -> None:
        try:
            if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: priced here and now
                session_price_task.delay(session_id)
            else:
                pricing_batch.add(session_id)
        except Exception:
            logger.exception("Pricing session %s failed; the periodic sweep will retry", session_id)

    transaction.on_commit(queue)


def price_version_at_start(sender, session_id: int, **kwargs) -> None:
    """Store the price a session that nobody was shown a price for is billed with: the one in
    force now, on our clock (billing.price_shown). Inline: one read and one insert, and the
    session must never be priced before it. A failure never breaks the charger's start; the
    session is then priced by the rate in force at its start on the charger's clock."""
    from .price_shown import price_at_start

    try:
        price_at_start(session_id=session_id)
    except Exception:
        logger.exception("Storing the price version of session %s failed", session_id)


def session_price_so_far(session) -> dict | None:
    """Answer the session page: the session's price under its rate, so far (final once stopped)."""
    from .services.sessions import session_cost

    cost = session_cost(session)
    if not cost.lines:
        return None  # no rate: nothing is charged, say nothing
    return {"total": cost.total, "currency": cost.currency, "final": cost.final}


def tariff_text_for_charger(charger_id: int) -> str | None:
    """Answer a 2.0.1 charger's tariff text (chargers.devices.costs.tariff_text): the rate in
    force there now, in one line; None without a rate."""
    from django.utils import timezone

    from chargers.models import Charger

    from .pricing import tariff_text
    from .selectors import rate_for_charger
    from .services.sessions import rate_terms

    rate = rate_for_charger(Charger.objects.filter(pk=charger_id).first(), timezone.now())
    return None if rate is None else tariff_text(rate_terms(rate))


HELD_TEXT = (
    "Billing is held: the meter's signed readings do not verify. Nothing is charged until the "
    "signature checks out or support decides."
)


def session_settlement(session: Any) -> dict | None:
    """Answer the session API and page: is the session's charge held, waived, pending or
    settled (chargers.web.providers.SessionSettlement); None when nothing is charged."""
    return session_settlements([session])[session.pk]


def session_settlements(sessions: Any) -> dict[int, dict | None]:
    """`session_settlement` of each session (by pk) in two queries (the session list API)."""
    from decimal import Decimal

    from django.db.models import Q, Sum

    from .models import Payment, SessionCharge

    ids = [s.pk for s in sessions]
    charges = {
        c.session_id: c
        for c in SessionCharge.objects.filter(session_id__in=ids).only(
            "session_id", "held", "hold_reason", "hold_waived_at", "final", "total", "currency"
        )
    }
    # A hold released although the session cost something (it lapsed before the capture) counts
    # as 0 captured: nothing was collected, which the host must not read as "Billed.".
    took = Q(status=Payment.Status.CAPTURED)
    captured = {
        row["session_id"]: row["amount"] if row["amount"] is not None else Decimal(0)
        for row in Payment.objects.filter(
            session_id__in=ids, status__in=(Payment.Status.CAPTURED, Payment.Status.RELEASED)
        )
        .values("session_id")
        .annotate(amount=Sum("amount_captured", filter=took))
    }
    return {s.pk: _settlement(charges.get(s.pk), captured.get(s.pk)) for s in sessions}


def _settlement(charge: Any, captured: Any = None) -> dict | None:
    if charge is None:
        return None
    if charge.held:
        return {"status": "held", "reason": charge.hold_reason, "text": HELD_TEXT}
    if charge.hold_waived_at is not None:
        text = "Support decided to bill the measured energy although the signature does not verify."
        return {"status": "waived", "reason": "", "text": text}
    if not charge.final:
        return {"status": "pending", "reason": "", "text": "Not final yet."}
    if captured is not None and captured < charge.total:
        return {"status": "short", "reason": "", "text": _short_text(charge, captured)}
    return {"status": "settled", "reason": "", "text": "Billed."}


def _short_text(charge: Any, captured: Any) -> str:
    from .money import round_money

    cur = charge.currency
    if not captured:
        return (
            f"Nothing was charged to the guest's card ({round_money(charge.total, cur)} {cur} not "
            "collected): the hold on it expired, or was canceled at the processor, before the "
            "session ended."
        )
    return (
        f"The guest's card was charged {round_money(captured, cur)} {cur} of "
        f"{round_money(charge.total, cur)} {cur}: the hold on the card was smaller than the "
        "cost, or the charger's own stop arrived after the guest was charged on our estimate "
        "(the receipt says what was charged). The difference was not collected."
    )


def dashboard_revenue(*, organization_ids, since, until) -> list:
    """Answer the dashboard: guest charges minus refunds booked in [since, until), per currency."""
    from django.db.models import Case, DecimalField, F, Sum, When

    from .models import LedgerTransaction

    moves = LedgerTransaction.objects.filter(
        occurred_at__gte=since, occurred_at__lt=until, kind__in=["guest_charge", "refund"]
    )
    if organization_ids is not None:
        moves = moves.filter(organization_id__in=organization_ids)
    signed = Case(
        When(kind="refund", then=-F("amount")),
        default=F("amount"),
        output_field=DecimalField(max_digits=14, decimal_places=4),
    )
    rows = moves.values("currency").annotate(total=Sum(signed)).order_by("currency")
    from .money import exact_sum

    return [(row["currency"], exact_sum(row["total"])) for row in rows]
