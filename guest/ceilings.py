"""Sessions paid by a hold stop at the ceiling the hold was computed for.

A guest pays by a hold on their card before charging, and a payment terminal (OCPI 2.3.0
Payments, roaming.payments) preauthorizes the tariff's `preauthorize_amount`; both are the
price of the same largest session (billing.services.guest_session_ceiling: kWh and hours), and
the guest page promises exactly that session. The capture never exceeds the hold, so charging
past the ceiling would deliver energy nobody pays for. The CSMS stops such a session remotely
once its meter or its clock reaches the ceiling (OCPI 2.3.0 mod_payments "Transaction": the
session "can also be stopped by the CPO backend if the preauth limit is reached").
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.holds import ceiling_reached
from billing.services import guest_session_ceiling
from chargers.devices.commands import (
    ChargerOffline,
    CommandTimeout,
    InvalidCommand,
    send_command_sync,
)
from chargers.models import ChargingSession, Command

from .models import GuestSession
from .selectors import running_kwh

logger = logging.getLogger(__name__)

SOURCE = "ceiling"
# A stop the charger did not carry out is asked again after this long.
STOP_REPEAT_S = 120


def held_sessions_running() -> QuerySet[ChargingSession]:
    """The running sessions paid by a hold: a guest's card (paid) or a payment terminal."""
    return (
        ChargingSession.objects.filter(status=ChargingSession.Status.ACTIVE)
        .filter(Q(guest_session__paid_at__isnull=False) | Q(token__terminal_payment__isnull=False))
        .select_related("charger")
        .order_by("pk")
    )


def _asked_recently(session: ChargingSession, now: datetime) -> bool:
    recent = Command.objects.filter(
        charger_id=session.charger_id,
        source=SOURCE,
        created_at__gte=now - timedelta(seconds=STOP_REPEAT_S),
    ).values_list("payload", flat=True)
    return any(
        str((payload or {}).get("transactionId")) == str(session.transaction_id)
        for payload in recent
    )


def _stop(session: ChargingSession, reached: str, now: datetime) -> bool:
    # Claimed as the guest's own Stop claims it (guest.services.guest_cancel_or_stop), so a tap
    # meanwhile finds the stop under way; given back if it fails, so the guest's tap sends one.
    claimed = GuestSession.objects.filter(
        charging_session=session, stop_requested_at__isnull=True
    ).update(stop_requested_at=now)
    stopped = _stop_sent(session, reached)
    if not stopped and claimed:
        GuestSession.objects.filter(charging_session=session, stop_requested_at=now).update(
            stop_requested_at=None
        )
    return stopped


def _stop_sent(session: ChargingSession, reached: str) -> bool:
    logger.info(
        "Session %s at %s reached the paid session's ceiling (%s): stopping it",
        session.pk,
        session.charger.station_id,
        reached,
    )
    try:
        command = send_command_sync(
            session.charger,
            "RemoteStopTransaction",
            {"transactionId": session.transaction_id},
            source=SOURCE,
        )
    except (ChargerOffline, CommandTimeout, InvalidCommand) as exc:
        logger.warning("Could not stop session %s at its ceiling: %s", session.pk, exc)
        return False
    return command.status == Command.Status.ANSWERED and command.result_status == "Accepted"


def held_ceilings_enforce(*, now: datetime | None = None) -> list[int]:
    """Stop the running hold-paid sessions that reached the ceiling; return the ids stopped.

    Each session is asked once per STOP_REPEAT_S (the next sweep waits for the charger's stop);
    one session's failure never keeps the others from being checked.
    """
    now = now or timezone.now()
    ceiling = guest_session_ceiling()
    stopped: list[int] = []
    for session in held_sessions_running():
        try:
            hours = Decimal((now - session.started_at).total_seconds()) / 3600
            reached = ceiling_reached(ceiling, kwh=Decimal(str(running_kwh(session))), hours=hours)
            if not reached or _asked_recently(session, now):
                continue
            if _stop(session, reached, now):
                stopped.append(session.pk)
        except Exception:
            logger.exception("Checking session %s against its ceiling failed", session.pk)
    return stopped
