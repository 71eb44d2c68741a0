"""Every close of a session lives here (issue 50 item 3), each with its ORM path and, where the
hot path needs one, its batched PostgreSQL path beside it, over the rules of
chargers.sessions.rules:

- a 1.6 StopTransaction: `close_orm` one stop at a time, `close_batched` the stops waiting at one
  moment in one statement (below);
- at the session's last reading, when no stop will tell us where it ended: a newer start
  replaced it (`close_as_superseded`), or a 2.0.1 charger says a transaction with no Ended is over
  (`close_at_last_reading`, from chargers.devices.stale);
- a 2.0.1 Ended: through the full path, the fold's end set on the session it saves
  (`close_by_fold`); the Ended of a steady transaction appended in a batch, `close_ended_orm` and
  `close_ended_copy` (the appends in chargers.sessions.transactions call them).

The parity test (tests/chargers/test_session_write_parity.py) runs every close reason through
both paths.

A restart storm brings back thousands of chargers that each stop the transaction they had
running. One by one, each stop was a hop into the database pool for a select-for-update and a
save, and compiling those two ORM queries was the largest single cost of the storm's reconnect
(py-spy, docs/performance.md "Session 8"). The batch closes its sessions in one
`UPDATE ... FROM unnest(...)` and their readings go in by COPY, in one transaction on an async
connection (as the connection state's writes, chargers.state.charger).

The batch takes the common stop only: a running (or superseded) session of ours with a usable
meterStop, the first stop of its transaction in the batch. Everything else, an unknown
transaction (orphan stop), a resent stop, an unusable meterStop, goes through `close_orm` after
the batch, in arrival order. Either way the stop is committed, and the session announced as
finished, before the charger is answered.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from backoffice import async_pg, db
from chargers.messagelog import meter_values
from chargers.models import ChargingSession, MeterValue, OrphanStop
from chargers.ocpp.energy import register_wh
from chargers.ocpp.tolerant import MeterReading
from chargers.plumbing.batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from chargers.sessions import rules
from chargers.sessions import v201_transactions as tx
from chargers.sessions.services import (
    session_announce_on_commit,
    session_flag_no_reading_on_commit,
    sessions_announce,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StopRequest:
    """A StopTransaction, as both paths take it."""

    charger_id: int
    transaction_id: int
    meter_stop: Decimal | None  # Wh, exact
    stopped_at: datetime
    reason: str = ""
    id_tag: str = ""
    transaction_data: list | None = None
    payload: dict | None = None
    readings: list[MeterReading] = field(default_factory=list)


def register_readings(session: Any) -> QuerySet[MeterValue]:
    """The session's energy register readings (the whole meter, not one phase), newest first.
    `session` may be an OuterRef: the sessions page reads the last one of many at once."""
    return (
        MeterValue.objects.filter(
            session=session, measurand="Energy.Active.Import.Register", phase=""
        )
        .exclude(value=None)
        .order_by("-timestamp", "-id")
    )


def last_register_wh(session: ChargingSession) -> tuple[Decimal | None, datetime | None]:
    """Return the session's last energy register reading in Wh (exact) and its time, if any."""
    sample = register_readings(session).first()
    if sample is None:
        return None, None
    return register_wh(sample.value, sample.unit), sample.timestamp


# -- at the last reading -------------------------------------------------------------------------


def close_at_last_reading(session: ChargingSession, reason: str) -> None:
    """End a running session (locked by the caller, in its transaction) where its last energy
    register reading says, at that reading's time (its start when it has none), announced as
    finished once committed."""
    meter_wh, when = last_register_wh(session)
    session.meter_stop_wh = rules.meter_stop_floor(meter_wh, session.meter_start_wh)
    session.stopped_at = when or session.started_at
    session.stop_reason = reason
    session.status = ChargingSession.Status.COMPLETED
    session.received_stop_at = timezone.now()
    session.save(
        update_fields=["meter_stop_wh", "stopped_at", "stop_reason", "status", "received_stop_at"]
    )
    session_announce_on_commit("finished", session.pk)
    session_flag_no_reading_on_commit(session)


@transaction.atomic
def close_as_superseded(session: ChargingSession) -> None:
    """End a session a newer one replaced on its connector, at its last meter reading."""
    close_at_last_reading(session, rules.SUPERSEDED)
    logger.warning(
        "Closed session %s on %s/%s: a newer transaction started",
        session.transaction_id,
        session.charger_id,
        session.connector_id,
    )


# -- a 1.6 stop, one by one through the ORM ------------------------------------------------------


def close_orm(item: StopRequest) -> ChargingSession | None:
    """Close the session. Never refuses: an unknown transaction becomes an orphan stop for review.

    Returns the session, or None for an orphan stop. A resent stop changes nothing.
    """
    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update()
            .filter(charger_id=item.charger_id, transaction_id=item.transaction_id)
            .first()
        )
        if session is None:
            OrphanStop.objects.get_or_create(
                charger_id=item.charger_id,
                transaction_id=item.transaction_id,
                stopped_at=item.stopped_at,
                meter_stop_wh=item.meter_stop if item.meter_stop is not None else Decimal(0),
                defaults={
                    "id_tag": item.id_tag[: rules.ID_TAG_MAX],
                    "reason": item.reason[: rules.STOP_REASON_MAX],
                    "payload": item.payload or {},
                },
            )
            logger.warning(
                "Orphan StopTransaction %s from charger %s kept for review",
                item.transaction_id,
                item.charger_id,
            )
            return None
        if not rules.stop_replaces(session.status, session.stop_reason):
            return session
        meter_stop = item.meter_stop
        if meter_stop is None:  # unusable meterStop: the last reading we have
            meter_stop = rules.meter_stop_floor(
                last_register_wh(session)[0], session.meter_start_wh
            )
        for name, value in _stopped_row(item, meter_stop).items():
            setattr(session, name, value)
        session.status = ChargingSession.Status.COMPLETED
        session.received_stop_at = timezone.now()
        session.save()
        meter_values.store_orm(
            meter_values.rows_of(item.charger_id, session.connector_id, session.pk, item.readings)
        )
        session_announce_on_commit("finished", session.pk)
        return session


def _stopped_row(item: StopRequest, meter_stop: Decimal | None) -> dict:
    return rules.stopped_row(
        meter_stop_wh=meter_stop,
        stopped_at=item.stopped_at,
        reason=item.reason,
        id_tag=item.id_tag,
        transaction_data=item.transaction_data,
    )


def _close_pool(items: list[StopRequest]) -> list[ChargingSession | None]:
    return [close_orm(item) for item in items]


# -- 1.6 stops in batches, on PostgreSQL ---------------------------------------------------------

_pg = async_pg.LoopConnection("ocpp-session-stop")
_FIELDS = ChargingSession._meta.concrete_fields
_NAMES = [f.attname for f in _FIELDS]
_TABLE = ChargingSession._meta.db_table
_UPDATE = (
    f'UPDATE "{_TABLE}" AS s SET meter_stop_wh = v.meter_stop, stopped_at = v.stopped_at, stop_reason = v.reason, '
    "stop_id_tag = v.id_tag, status = %s, received_stop_at = %s, transaction_data = v.data::jsonb "
    "FROM unnest(%s::bigint[], %s::int[], %s::numeric[], %s::timestamptz[], %s::text[], %s::text[], %s::text[]) "
    "WITH ORDINALITY AS v(charger_id, transaction_id, meter_stop, stopped_at, reason, id_tag, data, ord) "
    f"WHERE s.charger_id = v.charger_id AND s.transaction_id = v.transaction_id AND {rules.STOP_REPLACES} "
    "RETURNING v.ord, " + ", ".join(f's."{f.column}"' for f in _FIELDS)
)


def _stop_params(items: list[StopRequest]) -> list:
    rows = [_stopped_row(item, item.meter_stop) for item in items]
    return [
        ChargingSession.Status.COMPLETED,
        timezone.now(),
        [item.charger_id for item in items],
        [item.transaction_id for item in items],
        [row["meter_stop_wh"] for row in rows],
        [row["stopped_at"] for row in rows],
        [row["stop_reason"] for row in rows],
        [row["stop_id_tag"] for row in rows],
        [json.dumps(row["transaction_data"]) if row["transaction_data"] else None for row in rows],
        *rules.STOP_REPLACES_PARAMS,
    ]


async def close_batched(items: list[StopRequest]) -> list[ChargingSession | None]:
    """`close_orm` of each item, the common ones in one statement (see the module's doc)."""
    batched = [
        index
        for index in rules.first_in_batch([[(i.charger_id, i.transaction_id)] for i in items])
        if rules.stop_in_batch(items[index].meter_stop)
    ]
    stopped: dict[int, ChargingSession] = {}
    if batched:
        async with _pg.use() as conn, conn.transaction():
            cursor = await conn.execute(_UPDATE, _stop_params([items[i] for i in batched]))
            for row in await cursor.fetchall():
                stopped[batched[row[0] - 1]] = ChargingSession.from_db("default", _NAMES, row[1:])
            readings = [
                row
                for index, session in stopped.items()
                for row in meter_values.rows_of(
                    session.charger_id, session.connector_id, session.pk, items[index].readings
                )
            ]
            if readings:
                async with conn.cursor() as cur:
                    await meter_values.store_copy(cur, readings)
        if stopped:
            # Committed: announced before the chargers are answered, as close_orm does.
            await db.run(sessions_announce, "finished", [s.pk for s in stopped.values()])
    return await the_rest_one_by_one(stopped, items, close_orm)


_stops: Coalescer[StopRequest, ChargingSession | None] = Coalescer(
    "session-stop", apply_async=on_pg_or_pool(close_batched, _close_pool)
)


async def stop(item: StopRequest) -> ChargingSession | None:
    """Close the session of a StopTransaction, batched with the others waiting; None for an
    orphan stop."""
    return await _stops.submit(item)


def batches() -> int:
    """How many batches the stops took (tests)."""
    return _stops.batches


# -- a 2.0.1 Ended -------------------------------------------------------------------------------


def end_facts(session: ChargingSession) -> tuple:
    """What an end sets that a late event may change (`close_by_fold`'s `before`)."""
    return (session.meter_stop_wh, session.stopped_at, session.stop_reason, session.meter_start_wh)


def close_by_fold(
    session: ChargingSession, state: tx.TxState, was_completed: bool, before: tuple
) -> bool:
    """The full path's close: set the fold's end on the session the caller saves. Returns whether
    it newly ended or a late event changed the end (`before`: `end_facts` as they were before the
    fold was applied); the caller then announces it finished."""
    if not state.ended:
        return False
    session.status = ChargingSession.Status.COMPLETED
    session.stopped_at = state.stopped_at
    session.meter_stop_wh = state.meter_stop_wh
    session.stop_reason = state.stop_reason
    session.stop_id_tag = state.stop_id_token
    if was_completed and end_facts(session) == before:
        return False
    # Newly ended, or a late event changed an ended session: price it (again).
    session.received_stop_at = timezone.now()
    return True


@dataclass(frozen=True)
class TxEnd:
    """What the Ended of a steady transaction sets on its session: its fold, known without
    reading the other events when the Ended is in order, names no new driver and carries the
    newest energy reading (rules.appendable)."""

    stopped_at: datetime
    meter_stop_wh: Decimal  # the Ended's last register; the session's meter start if that is higher
    reason: str
    stop_id_tag: str = ""  # the card that stopped it (the Ended's idToken)


def tx_end_of(event: tx.TxEvent) -> TxEnd:
    """The end an in-order Ended of a steady transaction sets (`rules.appendable` holds: it
    carries its register)."""
    meter_stop = tx.end_register_wh(event)
    assert meter_stop is not None
    # E06: stoppedReason is left out when it is "Local" (v201_transactions.fold).
    return TxEnd(event.timestamp, meter_stop, event.stopped_reason or "Local", event.id_token)


def ended_row(end: TxEnd, meter_start_wh: Decimal | None) -> dict:
    """The columns an appended Ended sets on its session (besides status and
    received_stop_at), as its fold would."""
    return dict(
        stopped_at=end.stopped_at,
        meter_stop_wh=rules.meter_stop_floor(end.meter_stop_wh, meter_start_wh),
        stop_reason=end.reason,
        stop_id_tag=end.stop_id_tag,
    )


def close_ended_orm(ended: list[tuple[int, dict]]) -> None:
    """Complete the sessions of appended Ended events, (session id, `ended_row`) each, in the
    caller's transaction (their sessions locked by it); announced finished once committed."""
    now = timezone.now()
    for session_id, row in ended:
        ChargingSession.objects.filter(pk=session_id).update(
            status=ChargingSession.Status.COMPLETED, received_stop_at=now, **row
        )
        session_announce_on_commit("finished", session_id)


_END = (
    f'UPDATE "{_TABLE}" AS s SET status = %s, received_stop_at = %s, '
    "stopped_at = v.stopped_at, meter_stop_wh = v.meter_stop, stop_reason = v.reason, "
    "stop_id_tag = v.stop_id_tag FROM unnest(%s::bigint[], %s::timestamptz[], %s::numeric[], %s::text[], %s::text[]) "
    "AS v(id, stopped_at, meter_stop, reason, stop_id_tag) WHERE s.id = v.id"
)


async def close_ended_copy(cur: Any, ended: list[tuple[int, dict]]) -> None:
    """`close_ended_orm` in one statement on an async cursor (in the caller's transaction, their
    sessions locked by it). The caller announces them finished once committed
    (`sessions_announce`), before the chargers are answered."""
    await cur.execute(
        _END,
        [
            ChargingSession.Status.COMPLETED.value,
            timezone.now(),
            [session_id for session_id, _ in ended],
            [row["stopped_at"] for _, row in ended],
            [row["meter_stop_wh"] for _, row in ended],
            [row["stop_reason"] for _, row in ended],
            [row["stop_id_tag"] for _, row in ended],
        ],
    )
