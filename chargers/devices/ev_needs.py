"""A car's charging needs (ISO 15118 on OCPP 2.0.1, K15-K17, docs/power.md): the TxProfile that
answers NotifyEVChargingNeeds within the site's allowance, sent right after the answer, and the
car's own schedule (NotifyEVChargingSchedule) checked against what we sent.

The allowance is the power app's (the provider `session power limit`: the amperes per phase
its allocation gives the session, or None where the site shares no budget); the profile has the
power app's session-limit id and stack level, so its later limits replace this one."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from backoffice import db
from backoffice.providers import Provider
from chargers.devices import commands
from chargers.models import Charger, ChargingSession, Command
from chargers.ocpp import v201_ev_needs

logger = logging.getLogger(__name__)

# Our SetChargingProfile follows our NotifyEVChargingNeedsResponse on the wire (K15 step 3).
FOLLOW_UP_DELAY_S = 0.05
PHASES = 3


class SessionPowerLimit(Protocol):
    def __call__(self, session_id: int) -> Decimal | None: ...


session_power_limit: Provider[SessionPowerLimit] = Provider("session power limit")  # power


def needs_transaction(*, charger_id: int, evse_id: int) -> tuple[int, str] | None:
    """(session id, the charger's transactionId) of the transaction running on `evse_id`."""
    return (
        ChargingSession.objects.filter(
            charger_id=charger_id,
            connector_id=evse_id,
            status=ChargingSession.Status.ACTIVE,
        )
        .exclude(ocpp_transaction_id="")
        .order_by("-pk")
        .values_list("pk", "ocpp_transaction_id")
        .first()
    )


def allowance(session_id: int) -> Decimal | None:
    try:
        return session_power_limit.call(session_id)
    except ImproperlyConfigured:  # no power app installed: no shared budget
        return None


def needs_payload(
    *,
    evse_id: int,
    transaction_id: str,
    session_id: int,
    needs: dict[str, Any],
    start: datetime | None = None,
) -> dict[str, Any]:
    """The SetChargingProfileRequest for the car's needs within the session's allowance
    (`start`: Absolute from then, for a charger that refuses Relative profiles)."""
    unit, limit = v201_ev_needs.schedule_limit(needs, allowance(session_id), PHASES)
    return v201_ev_needs.needs_profile(evse_id, transaction_id, unit, limit, start)


def last_sent(*, charger_id: int, evse_id: int, transaction_id: str) -> dict[str, Any] | None:
    """The TxProfile in force for this transaction (ours or the power app's): the newest the
    charger accepted, or a newer one whose answer is on its way. A charger tells the car's
    schedule right after accepting our profile (K15.FR.10, TC_K_55), and its answer is recorded
    by the CALL's own task while that next frame is already being handled, so a profile sent
    within the call timeout and still pending is the one the car's schedule answers."""
    from django.conf import settings
    from django.utils import timezone

    in_flight = timezone.now() - timedelta(seconds=float(settings.OCPP_CALL_TIMEOUT) + 2)
    rows = Command.objects.filter(
        charger_id=charger_id,
        action="SetChargingProfile",
        status__in=(Command.Status.ANSWERED, Command.Status.PENDING),
        payload__evseId=evse_id,
        payload__chargingProfile__transactionId=transaction_id,
    ).order_by("-created_at", "-pk")
    for row in rows[:20]:
        if row.status == Command.Status.PENDING:
            if row.created_at >= in_flight:
                return dict(row.payload)
        elif row.result_status == "Accepted":
            return dict(row.payload)
    return None


async def profile_send(charger_id: int, payload: dict[str, Any]) -> None:
    """Send a TxProfile once the answer that promised it is out."""
    await asyncio.sleep(FOLLOW_UP_DELAY_S)
    try:
        charger = await db.run(Charger.objects.get, pk=charger_id)
        await commands.send_command(charger, "SetChargingProfile", payload, source="csms")
    except (commands.ChargerOffline, commands.CommandTimeout, commands.InvalidCommand) as exc:
        logger.info("The TxProfile for a car's needs did not reach charger %s: %s", charger_id, exc)
