"""Closing a 1.6 session (StopTransaction), both ways: `close_orm` one stop at a time through the
ORM, `close_batched` the stops waiting at one moment in one statement on PostgreSQL. The rules
they share are in chargers.sessions.rules; a session a newer start replaced is closed here too
(`close_as_superseded`).

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

from django.db import transaction
from django.utils import timezone

from backoffice import async_pg, db
from chargers.messagelog import meter_values
from chargers.models import ChargingSession, MeterValue, OrphanStop
from chargers.ocpp.energy import register_wh
from chargers.ocpp.tolerant import MeterReading
from chargers.plumbing.batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from chargers.sessions import rules
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


def last_register_wh(session: ChargingSession) -> tuple[Decimal | None, datetime | None]:
    """Return the session's last energy register reading in Wh (exact) and its time, if any."""
    sample = (
        MeterValue.objects.filter(
            session=session, measurand="Energy.Active.Import.Register", phase=""
        )
        .exclude(value=None)
        .order_by("-timestamp", "-id")
        .first()
    )
    if sample is None:
        return None, None
    return register_wh(sample.value, sample.unit), sample.timestamp


@transaction.atomic
def close_as_superseded(session: ChargingSession) -> None:
    """End a session a newer one replaced on its connector, at its last meter reading."""
    meter_wh, when = last_register_wh(session)
    session.meter_stop_wh = rules.meter_stop_floor(meter_wh, session.meter_start_wh)
    session.stopped_at = when or session.started_at
    session.stop_reason = rules.SUPERSEDED
    session.status = ChargingSession.Status.COMPLETED
    session.received_stop_at = timezone.now()
    session.save(
        update_fields=["meter_stop_wh", "stopped_at", "stop_reason", "status", "received_stop_at"]
    )
    session_announce_on_commit("finished", session.pk)
    session_flag_no_reading_on_commit(session)
    logger.warning(
        "Closed session %s on %s/%s: a newer transaction started",
        session.transaction_id,
        session.charger_id,
        session.connector_id,
    )


# -- one by one, through the ORM -----------------------------------------------------------------


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


# -- in batches, on PostgreSQL -------------------------------------------------------------------

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
