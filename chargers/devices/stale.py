"""Stale transactions: sessions that stay open although the charger has ended them.

2.0.1 (E14): a session whose charger has sent nothing about it for a while is asked about with
GetTransactionStatus, and closed when the charger says it has ended.

A 2.0.1 charger that lost its Ended event (a crash, a full queue, a swapped controller) leaves its
session open forever: billing never prices it and the connector looks busy. Every
`OCPP_STALE_TRANSACTION_CHECK_SECONDS` a beat task finds active 2.0.1 sessions of online chargers
with no TransactionEvent for `OCPP_STALE_TRANSACTION_SECONDS` (not asked within that time either)
and asks their charger. The answer (E14.FR.02-.04):

- `ongoingIndicator` true: still running (a long session with no meter values); nothing changes.
- `messagesInQueue` true: the charger still has events of it queued; they will come, we wait.
- neither: the transaction is over and no Ended will come: the session is closed at its last
  reading with stop reason `NoEndedEvent` (priced like any finished session). Should the Ended
  still arrive, the session is recomputed from it as for any late event.

1.6 has no such question. A 1.6 session stays open when its StopTransaction is lost (a charger
that forgets it over a reboot, or drops it after its retries): it then holds a share of the
site's power, never gets priced and shows charging forever. Its connector says otherwise: a
connector reports Available only when no transaction runs on it (OCPP 1.6 §4.9). So a session
of a charger online now whose connector went Available after the session started, at least
`OCPP_STALE_16_AVAILABLE_SECONDS` (900) ago, is still Available and took no meter value since,
is closed at its last reading with stop reason `NoStopTransaction`. That is an estimate: should
the StopTransaction still come, it replaces it (chargers.sessions.rules.stop_replaces), as the
stop of a superseded session does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from backoffice import db
from chargers.devices import commands
from chargers.models import (
    Charger,
    ChargingSession,
    Command,
    Connector,
    MeterValue,
    StatusEvent,
    TransactionEvent,
)
from chargers.sessions import closing, rules

logger = logging.getLogger(__name__)

NO_ENDED_EVENT = "NoEndedEvent"
CHECK_TIMEOUT_S = 10


def stale_after_s() -> int:
    return int(getattr(settings, "OCPP_STALE_TRANSACTION_SECONDS", 3600))


def stale_sessions(*, now: datetime | None = None, limit: int = 200) -> list[ChargingSession]:
    """Return active 2.0.1 sessions of online chargers nothing was heard about for too long."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s())
    sessions = (
        ChargingSession.objects.filter(
            status=ChargingSession.Status.ACTIVE,
            charger__ocpp_version__in=Charger.V2_VERSIONS,
            received_start_at__lt=cutoff,
        )
        .exclude(ocpp_transaction_id="")
        .annotate(last_event=Max("transaction_events__received_at"))
        .filter(Q(last_event__lt=cutoff) | Q(last_event__isnull=True))
        .select_related("charger")
        .order_by("last_event")[: limit * 2]
    )
    result: list[ChargingSession] = []
    for session in sessions:
        asked = Command.objects.filter(
            charger_id=session.charger_id,
            action="GetTransactionStatus",
            created_at__gte=cutoff,
            payload__transactionId=session.ocpp_transaction_id,
        ).exists()
        if not asked and session.charger.is_online():
            result.append(session)
        if len(result) >= limit:
            break
    return result


@dataclass(frozen=True)
class Verdict:
    outcome: str  # ongoing | queued | ended | no_answer
    closed: bool = False


def _locked_if_active(session_id: int) -> ChargingSession | None:
    """The session, locked for the caller's transaction, while it is still running."""
    return (
        ChargingSession.objects.select_for_update()
        .filter(pk=session_id, status=ChargingSession.Status.ACTIVE)
        .first()
    )


def transaction_status_apply(*, session_id: int, response: Any) -> Verdict:
    """Act on a GetTransactionStatus answer about a session (E14)."""
    if not isinstance(response, dict):
        return Verdict("no_answer")
    if response.get("messagesInQueue"):
        return Verdict("queued")
    if response.get("ongoingIndicator", False):
        return Verdict("ongoing")
    with transaction.atomic():
        session = _locked_if_active(session_id)
        if session is None:
            return Verdict("ended")  # its Ended arrived meanwhile
        if TransactionEvent.objects.filter(session=session, event_type="Ended").exists():
            return Verdict("ended")
        closing.close_at_last_reading(session, NO_ENDED_EVENT)
    logger.warning(
        "Closed 2.0.1 session %s on %s: the charger says it ended, no Ended event came",
        session.transaction_id,
        session.charger_id,
    )
    return Verdict("ended", closed=True)


def transaction_status_check(
    session: ChargingSession, *, timeout: float = CHECK_TIMEOUT_S
) -> Verdict:
    """Ask the session's charger about it (GetTransactionStatus) and act on the answer."""
    try:
        command = commands.send_command_sync(
            session.charger,
            "GetTransactionStatus",
            {"transactionId": session.ocpp_transaction_id},
            source="system",
            timeout=timeout,
        )
    except (commands.ChargerOffline, commands.CommandTimeout, commands.InvalidCommand):
        return Verdict("no_answer")
    if command.status != Command.Status.ANSWERED:
        return Verdict("no_answer")
    return transaction_status_apply(session_id=session.pk, response=command.response)


# A seqNo gap is asked about after the answer to the event that showed it went out.
GAP_CHECK_DELAY_S = 0.2


async def gap_check(charger_id: int, session_id: int, transaction_id: str) -> None:
    """A TransactionEvent skipped a seqNo (chargers.handlers.v201): ask the charger at once
    whether events of the transaction are still queued (GetTransactionStatus, E14) and act on the
    answer as for a stale session: queued ones will come; a transaction it says is over with
    nothing queued has lost its Ended, and its session is closed."""
    await asyncio.sleep(GAP_CHECK_DELAY_S)
    try:
        charger = await db.run(Charger.objects.get, pk=charger_id)
        command = await commands.send_command(
            charger,
            "GetTransactionStatus",
            {"transactionId": transaction_id},
            source="csms",
            timeout=CHECK_TIMEOUT_S,
        )
        if command.status == Command.Status.ANSWERED:
            verdict = await db.run(
                transaction_status_apply, session_id=session_id, response=command.response
            )
            logger.info("seqNo gap in %s of %s: %s", transaction_id, charger_id, verdict.outcome)
    except (commands.ChargerOffline, commands.CommandTimeout, commands.InvalidCommand):
        pass  # asked again by the stale check if the session goes quiet
    except Exception:
        logger.exception(
            "Could not ask charger %s about transaction %s", charger_id, transaction_id
        )


# -- 1.6: the connector says the transaction is over --------------------------------------------


def stale_16_after_s() -> int:
    return int(getattr(settings, "OCPP_STALE_16_AVAILABLE_SECONDS", 900))


def stale_sessions_16(*, now: datetime | None = None, limit: int = 200) -> list[ChargingSession]:
    """Return active 1.6 sessions of online chargers whose connector went Available after the
    session started, at least the grace time ago, and is Available still."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stale_16_after_s())
    here = {"charger_id": OuterRef("charger_id"), "connector_id": OuterRef("connector_id")}
    went_available = StatusEvent.objects.filter(
        **here,
        status="Available",
        # Along the (charger, connector, timestamp) index: only the events since the start.
        timestamp__gte=OuterRef("started_at"),
        received_at__gt=Coalesce(OuterRef("received_start_at"), OuterRef("started_at")),
        received_at__lte=cutoff,
    )
    sessions = (
        ChargingSession.objects.filter(
            status=ChargingSession.Status.ACTIVE, charger__ocpp_version=Charger.OcppVersion.V16
        )
        .filter(
            Exists(went_available), Exists(Connector.objects.filter(**here, status="Available"))
        )
        # Offline chargers' sessions never fill the batch ahead of online ones (is_online below).
        .exclude(charger__connection_id="")
        .select_related("charger")
        .order_by("started_at", "pk")[: limit * 2]
    )
    return [s for s in sessions if s.charger.is_online(now) and _no_reading_since_available(s)][
        :limit
    ]


def _no_reading_since_available(session: ChargingSession) -> bool:
    """No meter value of the session after its connector first went Available (a charger that
    still meters it still runs it, whatever its status says); both times on the charger's clock."""
    since = session.received_start_at or session.started_at
    available = (
        StatusEvent.objects.filter(
            charger_id=session.charger_id,
            connector_id=session.connector_id,
            status="Available",
            timestamp__gte=session.started_at,
            received_at__gt=since,
        )
        .order_by("received_at", "pk")
        .values_list("timestamp", flat=True)
        .first()
    )
    return (
        available is not None
        and not MeterValue.objects.filter(session=session, timestamp__gt=available).exists()
    )


def close_without_stop(session_id: int) -> bool:
    """Close an active 1.6 session at its last reading: its StopTransaction never came."""
    with transaction.atomic():
        session = _locked_if_active(session_id)
        if session is None:
            return False  # its StopTransaction arrived meanwhile
        closing.close_at_last_reading(session, rules.NO_STOP_TRANSACTION)
    logger.warning(
        "Closed 1.6 session %s on %s/%s: its connector is Available and no StopTransaction came",
        session.transaction_id,
        session.charger_id,
        session.connector_id,
    )
    return True


@shared_task(name="chargers.stale_transactions_check")
def stale_transactions_check_task() -> dict[str, int]:
    counts: dict[str, int] = {}
    for session in stale_sessions():
        verdict = transaction_status_check(session)
        counts[verdict.outcome] = counts.get(verdict.outcome, 0) + 1
    for session in stale_sessions_16():
        if close_without_stop(session.pk):
            counts["no_stop"] = counts.get("no_stop", 0) + 1
    return counts
