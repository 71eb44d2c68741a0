"""StopTransaction in batches: on PostgreSQL one statement on the event loop's own connection.

A restart storm brings back thousands of chargers that each stop the transaction they had
running. One by one, each stop was a hop into the database pool for a select-for-update and a
save, and compiling those two ORM queries was the largest single cost of the storm's reconnect
(py-spy, docs/performance.md "Session 8"). Here the stops waiting at one moment close their
sessions in one `UPDATE ... FROM unnest(...)` and their readings go in by COPY, in one
transaction on an async connection (as the connection state's writes, chargers.connection_state).

The batch takes the common stop only: a running (or superseded) session of ours with a usable
meterStop. Everything else, an unknown transaction (orphan stop), a repeated stop, an unusable
meterStop, the same transaction twice in one batch, goes through `services.session_stop` after
the batch, in arrival order, exactly as before. Either way the stop is committed, and the
session announced as finished, before the charger is answered.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from backoffice import async_pg, db

from . import services
from .batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from .message_log import copy_meter_values
from .models import ChargingSession
from .ocpp.tolerant import MeterReading
from .storable import clean_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StopRequest:
    """A StopTransaction as `services.session_stop` takes it."""

    charger_id: int
    transaction_id: int
    meter_stop: int | None
    stopped_at: datetime
    reason: str = ""
    id_tag: str = ""
    transaction_data: list | None = None
    payload: dict | None = None
    readings: list[MeterReading] = field(default_factory=list)


def _stop_one(item: StopRequest) -> ChargingSession | None:
    return services.session_stop(
        charger_id=item.charger_id,
        transaction_id=item.transaction_id,
        meter_stop=item.meter_stop,
        stopped_at=item.stopped_at,
        reason=item.reason,
        id_tag=item.id_tag,
        transaction_data=item.transaction_data,
        payload=item.payload,
        readings=item.readings,
    )


def _stops_pool(items: list[StopRequest]) -> list[ChargingSession | None]:
    return [_stop_one(item) for item in items]


_pg = async_pg.LoopConnection("ocpp-session-stop")
_FIELDS = ChargingSession._meta.concrete_fields
_NAMES = [f.attname for f in _FIELDS]
_TABLE = ChargingSession._meta.db_table
_UPDATE = (
    f'UPDATE "{_TABLE}" AS s SET meter_stop_wh = v.meter_stop, stopped_at = v.stopped_at, stop_reason = v.reason, '
    "stop_id_tag = v.id_tag, status = %s, received_stop_at = %s, transaction_data = v.data::jsonb "
    "FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], %s::text[]) "
    "WITH ORDINALITY AS v(charger_id, transaction_id, meter_stop, stopped_at, reason, id_tag, data, ord) "
    "WHERE s.charger_id = v.charger_id AND s.transaction_id = v.transaction_id "
    # What session_stop replaces: a running session, or our estimate of a superseded one.
    "AND (s.status = %s OR s.stop_reason = %s) "
    "RETURNING v.ord, " + ", ".join(f's."{f.column}"' for f in _FIELDS)
)


async def _stops_pg(items: list[StopRequest]) -> list[ChargingSession | None]:
    batched: list[int] = []  # indexes of the items the statement takes
    keys: set[tuple[int, int]] = set()
    for index, item in enumerate(items):
        key = (item.charger_id, item.transaction_id)
        if item.meter_stop is not None and key not in keys:
            keys.add(key)
            batched.append(index)
    stopped: dict[int, ChargingSession] = {}
    if batched:
        chosen = [items[i] for i in batched]
        async with _pg.use() as conn, conn.transaction():
            cursor = await conn.execute(
                _UPDATE,
                [
                    ChargingSession.Status.COMPLETED,
                    timezone.now(),
                    [i.charger_id for i in chosen],
                    [i.transaction_id for i in chosen],
                    [i.meter_stop for i in chosen],
                    [i.stopped_at for i in chosen],
                    [(i.reason or "Local")[:20] for i in chosen],
                    [i.id_tag[:36] for i in chosen],
                    [
                        json.dumps(i.transaction_data) if i.transaction_data else None
                        for i in chosen
                    ],
                    ChargingSession.Status.ACTIVE,
                    services.SUPERSEDED,
                ],
            )
            for row in await cursor.fetchall():
                stopped[batched[row[0] - 1]] = ChargingSession.from_db("default", _NAMES, row[1:])
            readings = [
                (
                    session.charger_id,
                    session.pk,
                    session.connector_id,
                    reading.timestamp,
                    clean_text(s.measurand),
                    clean_text(s.phase),
                    clean_text(s.unit),
                    clean_text(s.context),
                    clean_text(s.location),
                    clean_text(s.value),
                )
                for index, session in stopped.items()
                for reading in items[index].readings
                for s in reading.samples
            ]
            if readings:
                async with conn.cursor() as cur:
                    await copy_meter_values(cur, readings)
        if stopped:
            # Committed: announced before the chargers are answered, as session_stop does.
            await db.run(services.sessions_announce, "finished", [s.pk for s in stopped.values()])
    return await the_rest_one_by_one(stopped, items, _stop_one)


_stops: Coalescer[StopRequest, ChargingSession | None] = Coalescer(
    "session-stop", apply_async=on_pg_or_pool(_stops_pg, _stops_pool)
)


async def stop(item: StopRequest) -> ChargingSession | None:
    """Close the session of a StopTransaction (`services.session_stop`); None for an orphan stop."""
    return await _stops.submit(item)


def batches() -> int:
    """How many batches the stops took (tests)."""
    return _stops.batches
