"""Batched, bounded writer for the OCPP message log, meter values and last-seen times.

The websocket path never waits for a database round trip to log a frame: frames are
appended to an in-process buffer and written by one background task with bulk inserts
every few milliseconds. The buffer is bounded, so a stalled database slows chargers
down (backpressure) instead of eating memory, and it is flushed when a charger
disconnects and when the process shuts down, so no frame is dropped on SIGTERM.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from backoffice import db

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.005
MAX_BATCH = 2000
MAX_BUFFERED = 50_000
LAST_SEEN_WRITE_EVERY_S = 15.0
LOG_WATCH_TTL_S = 60
WATCH_MEMO_S = 2.0  # how long "is a Logs tab open for this charger?" is remembered
CONNECTOR_WATCH_REFRESH_S = 2.0


def log_group(charger_id: int) -> str:
    return f"logs.{charger_id}"


def log_watch_key(charger_id: int) -> str:
    return f"logwatch:{charger_id}"


@dataclass(slots=True)
class MeterSample:
    charger_id: int
    connector_id: int
    transaction_id: int | None
    timestamp: datetime
    measurand: str
    phase: str
    unit: str
    context: str
    location: str
    raw_value: str


def _id_tag_of(action: str, payload) -> str:
    if isinstance(payload, dict):
        tag = payload.get("idTag")
        if isinstance(tag, str):
            return tag[:36]
    return ""


class MessageLogWriter:
    def __init__(self) -> None:
        self._messages: deque = deque()
        self._meters: deque = deque()
        self._seen: dict[int, tuple[datetime, bool]] = {}
        self._seen_written: dict[int, float] = {}
        self._wakeup: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._watch_memo: dict[int, tuple[float, bool]] = {}  # charger id -> (checked at, watched)
        # Connector-event watchers (chargers.live markers), refreshed for all chargers at once
        # every CONNECTOR_WATCH_REFRESH_S instead of one cache round trip per charger.
        self._connector_interest: set[int] = set()
        self._connector_watched: set[int] = set()
        self._connector_known: set[int] = set()
        self._connector_refreshed = 0.0
        self._pg_conn = None
        self._seen_scanned = 0.0
        self._sessions: dict[tuple[int, int], int] = {}  # (charger, transactionId) -> session pk

    # -- producers (event loop) ------------------------------------------------------------

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            if self._loop is not loop:
                self._close_pg()
                self._sessions.clear()
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._space = asyncio.Event()
            self._flush_lock = asyncio.Lock()
            self._task = loop.create_task(self._run(), name="ocpp-message-log")

    async def add_message(
        self, *, charger_id: int, direction: str, message_type: int | None, unique_id: str,
        action: str, payload, raw: str = "", timestamp: datetime | None = None,
    ) -> None:
        self._ensure_running()
        if len(self._messages) >= MAX_BUFFERED:
            self._space.clear()
            self._wakeup.set()
            await self._space.wait()
        self._messages.append(
            (charger_id, timestamp or timezone.now(), direction, message_type, unique_id[:64],
             action[:64], _id_tag_of(action, payload), payload, raw)
        )
        self._wakeup.set()  # cheap when already set; wakes an idle writer on the first frame

    def add_meter_samples(self, samples: list[MeterSample]) -> None:
        self._ensure_running()
        self._meters.extend(samples)

    def touch(self, charger_id: int, *, heartbeat: bool = False, now: datetime | None = None) -> None:
        """Note that a charger was heard from; written at most every few seconds per charger."""
        now = now or timezone.now()
        previous = self._seen.get(charger_id)
        self._seen[charger_id] = (now, heartbeat or (previous[1] if previous else False))

    def forget(self, charger_id: int) -> None:
        self._seen.pop(charger_id, None)
        self._seen_written.pop(charger_id, None)
        self._connector_interest.discard(charger_id)
        self._connector_known.discard(charger_id)

    def connector_watched(self, charger_id: int) -> bool | None:
        """Whether a browser follows this charger's connectors, from the batched refresh;
        None until the first refresh that covered this charger (then ask chargers.live)."""
        self._ensure_running()
        self._connector_interest.add(charger_id)
        if charger_id not in self._connector_known:
            return None
        return charger_id in self._connector_watched

    def _refresh_connector_watch(self, charger_ids: set[int]) -> set[int]:
        from chargers.live import connector_watch_key

        found = cache.get_many([connector_watch_key(pk) for pk in charger_ids]) if charger_ids else {}
        return {int(key.rsplit(":", 1)[1]) for key in found}

    async def flush(self, *, with_last_seen: bool = False) -> None:
        """Write every buffered frame and meter value (and all last-seen times if asked)."""
        if self._task is None or self._loop is not asyncio.get_running_loop():
            await db.run(self._write_everything_sync)
            return
        async with self._flush_lock:
            while self._messages or self._meters:
                await self._flush_once(force_seen=False)
            if with_last_seen:
                await self._flush_once(force_seen=True)

    async def close(self) -> None:
        await self.flush(with_last_seen=True)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- consumer (background task) ----------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._run_forever()
        finally:
            self._close_pg()

    async def _run_forever(self) -> None:
        while True:
            try:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                if not (self._messages or self._meters or self._seen):
                    self._wakeup.clear()
                    if not self._wakeup.is_set() and not self._flush_lock.locked():
                        self._close_pg()  # nothing to write: hold no connection while idle
                    await self._wakeup.wait()
                async with self._flush_lock:
                    await self._flush_once(force_seen=False)
                if self._connector_interest and time.monotonic() - self._connector_refreshed > CONNECTOR_WATCH_REFRESH_S:
                    self._connector_refreshed = time.monotonic()
                    ids = set(self._connector_interest)
                    self._connector_watched = await db.run(self._refresh_connector_watch, ids)
                    self._connector_known |= ids
            except asyncio.CancelledError:
                raise
            except Exception:  # keep logging alive; the rows stay buffered and are retried
                logger.exception("Writing the OCPP message log failed; retrying")
                await asyncio.sleep(0.5)

    def _take(self):
        messages = [self._messages.popleft() for _ in range(min(len(self._messages), MAX_BATCH))]
        meters = [self._meters.popleft() for _ in range(min(len(self._meters), MAX_BATCH))]
        return messages, meters

    def _due_seen(self, force: bool) -> dict[int, tuple[datetime, bool]]:
        now = time.monotonic()
        due = {}
        for charger_id, seen in list(self._seen.items()):
            if force or now - self._seen_written.get(charger_id, 0.0) >= LAST_SEEN_WRITE_EVERY_S:
                due[charger_id] = seen
                self._seen_written[charger_id] = now
                del self._seen[charger_id]
        return due

    async def _flush_once(self, *, force_seen: bool) -> None:
        messages, meters = self._take()
        # Scanning every charger's last-seen entry costs O(chargers): once a second is enough
        # (they are written every LAST_SEEN_WRITE_EVERY_S anyway), not on every 5 ms tick.
        now = time.monotonic()
        if force_seen or now - self._seen_scanned >= 1.0:
            self._seen_scanned = now
            seen = self._due_seen(force_seen)
        else:
            seen = {}
        if not (messages or meters or seen):
            return
        try:
            started = time.monotonic()
            if self._use_async_pg():
                published = await self._write_batch_async(messages, meters, seen)
            else:
                published = await db.run(_write_batch, messages, meters, seen, self._watched_memo)
            logger.debug(
                "Wrote %d frames, %d meter values, %d last-seen in %.1f ms; %d frames still buffered",
                len(messages), len(meters), len(seen), 1000 * (time.monotonic() - started), len(self._messages),
            )
        except Exception:
            # Put the rows back in front so nothing is lost, then let the caller retry.
            self._messages.extendleft(reversed(messages))
            self._meters.extendleft(reversed(meters))
            for charger_id, value in seen.items():
                self._seen.setdefault(charger_id, value)
            raise
        if self._space is not None and len(self._messages) < MAX_BUFFERED:
            self._space.set()
        if published:
            await _publish(published)

    # -- PostgreSQL: COPY on an async connection in the event loop ----------------------------
    #
    # A writer on a database thread holds the GIL while it formats thousands of rows, and
    # the event loop then waits for the GIL after every socket write (the convoy effect:
    # the server sat at 30-60 % CPU with 1 s round trips). psycopg's async COPY formats
    # rows in C on the loop itself and never blocks it on I/O.

    def _use_async_pg(self) -> bool:
        from django.db import connections

        return getattr(settings, "OCPP_LOG_ASYNC_COPY", True) and connections["default"].vendor == "postgresql"

    async def _pg(self):
        import psycopg
        from django.db import connections

        if self._pg_conn is not None and not self._pg_conn.closed:
            return self._pg_conn
        params = connections["default"].settings_dict
        conninfo = {
            "dbname": params["NAME"], "user": params.get("USER") or None,
            "password": params.get("PASSWORD") or None, "host": params.get("HOST") or None,
            "port": str(params["PORT"]) if params.get("PORT") else None,
            "application_name": "ocpp-message-log",
        }
        for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options"):
            if params.get("OPTIONS", {}).get(key) is not None:
                conninfo[key] = str(params["OPTIONS"][key])
        self._pg_conn = await psycopg.AsyncConnection.connect(
            **{k: v for k, v in conninfo.items() if v is not None}, autocommit=True
        )
        return self._pg_conn

    def _close_pg(self) -> None:
        """Drop the log connection (idle writer, or its event loop is gone)."""
        conn, self._pg_conn = self._pg_conn, None
        if conn is not None and not conn.closed:
            try:
                conn.pgconn.finish()  # synchronous: works even when the loop is closed
            except Exception:
                pass

    async def _write_batch_async(self, messages, meters, seen) -> dict[int, list[dict]]:
        from chargers.models import Charger, ChargingSession, MeterValue, OcppMessage

        watched: set[int] = set()
        if messages:
            ids = {m[0] for m in messages}
            watched = self._watched_if_fresh(ids)
            if watched is None:
                watched = await db.run(self._watched_memo, ids)
        dumps = json.dumps
        published: dict[int, list[dict]] = {}
        conn = await self._pg()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                if len(watched) == 0 or any(m[0] not in watched for m in messages):
                    async with cur.copy(
                        f"COPY {OcppMessage._meta.db_table} (charger_id, timestamp, direction, message_type, "
                        "unique_id, action, id_tag, payload, raw) FROM STDIN"
                    ) as copy:
                        write = copy.write_row
                        for charger_id, ts, direction, mtype, uid, action, id_tag, payload, raw in messages:
                            if charger_id not in watched:
                                await write((charger_id, ts, direction, mtype, uid, action, id_tag,
                                             None if payload is None else dumps(payload), raw))
                for message in messages:
                    if message[0] not in watched:
                        continue
                    charger_id, ts, direction, mtype, uid, action, id_tag, payload, raw = message
                    await cur.execute(
                        f"INSERT INTO {OcppMessage._meta.db_table} (charger_id, timestamp, direction, message_type, "
                        "unique_id, action, id_tag, payload, raw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "RETURNING id",
                        [charger_id, ts, direction, mtype, uid, action, id_tag,
                         None if payload is None else dumps(payload), raw],
                    )
                    (pk,) = await cur.fetchone()
                    published.setdefault(charger_id, []).append(serialize_message(OcppMessage(
                        pk=pk, charger_id=charger_id, timestamp=ts, direction=direction, message_type=mtype,
                        unique_id=uid, action=action, id_tag=id_tag, payload=payload,
                    )))
                if meters:
                    wanted = {(m.charger_id, m.transaction_id) for m in meters if m.transaction_id is not None}
                    missing = {tx for key in wanted if key not in self._sessions for tx in (key[1],)}
                    if missing:
                        await cur.execute(
                            f"SELECT id, charger_id, transaction_id FROM {ChargingSession._meta.db_table} "
                            "WHERE transaction_id = ANY(%s)", [list(missing)],
                        )
                        if len(self._sessions) > 100_000:
                            self._sessions.clear()
                        for pk, charger_id, tx in await cur.fetchall():
                            self._sessions[(charger_id, tx)] = pk
                    sessions = self._sessions
                    async with cur.copy(
                        f"COPY {MeterValue._meta.db_table} (charger_id, session_id, connector_id, timestamp, "
                        "measurand, phase, unit, context, location, value, raw_value) FROM STDIN"
                    ) as copy:
                        for m in meters:
                            await copy.write_row((
                                m.charger_id, sessions.get((m.charger_id, m.transaction_id)), m.connector_id,
                                m.timestamp, m.measurand[:50], m.phase[:10], m.unit[:10], m.context[:20],
                                m.location[:10], _to_decimal(m.raw_value), m.raw_value[:100],
                            ))
                if seen:
                    ids = list(seen)
                    await cur.execute(
                        f"UPDATE {Charger._meta.db_table} AS c SET last_seen_at = v.seen, "
                        "last_heartbeat_at = COALESCE(v.hb, c.last_heartbeat_at) "
                        "FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS seen, "
                        "unnest(%s::timestamptz[]) AS hb) AS v WHERE c.id = v.id",
                        [ids, [seen[i][0] for i in ids], [seen[i][0] if seen[i][1] else None for i in ids]],
                    )
        except Exception:
            self._close_pg()
            self._sessions.clear()  # a stale session id must not poison the retry
            raise
        return published

    def _watched_if_fresh(self, charger_ids: set[int]) -> set[int] | None:
        """Return the watched ones among these chargers if every answer is under 2 s old."""
        now = time.monotonic()
        watched = set()
        for pk in charger_ids:
            checked, is_watched = self._watch_memo.get(pk, (-WATCH_MEMO_S, False))
            if now - checked > WATCH_MEMO_S:
                return None
            if is_watched:
                watched.add(pk)
        return watched

    def _watched_memo(self, charger_ids: set[int]) -> set[int]:
        """Return which of these chargers have a Logs tab open somewhere (each answer kept 2 s).

        Asks the cache only for chargers whose answer is stale, so a watched charger is never
        taken for unwatched because it was missing from an earlier batch.
        """
        now = time.monotonic()
        stale = [pk for pk in charger_ids if now - self._watch_memo.get(pk, (-WATCH_MEMO_S, False))[0] > WATCH_MEMO_S]
        if stale:
            found = cache.get_many([log_watch_key(pk) for pk in stale])
            for pk in stale:
                self._watch_memo[pk] = (now, log_watch_key(pk) in found)
        return {pk for pk in charger_ids if self._watch_memo[pk][1]}

    def _write_everything_sync(self) -> None:
        while self._messages or self._meters or self._seen:
            messages, meters = self._take()
            _write_batch(messages, meters, self._due_seen(True), None)


def _to_decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and abs(value) < Decimal("1e15") else None


def _write_batch(messages, meters, seen, watched_of) -> dict[int, list[dict]]:
    from django.db import connection

    if connection.vendor == "postgresql":
        return _write_batch_copy(messages, meters, seen, watched_of)
    return _write_batch_orm(messages, meters, seen, watched_of)


def _session_ids(meters) -> dict[tuple[int, int], int]:
    from chargers.models import ChargingSession

    keys = {(m.charger_id, m.transaction_id) for m in meters if m.transaction_id is not None}
    sessions = {}
    if keys:
        for pk, charger_id, tx in ChargingSession.objects.filter(
            transaction_id__in={tx for _, tx in keys}
        ).values_list("pk", "charger_id", "transaction_id"):
            sessions[(charger_id, tx)] = pk
    return sessions


def _write_batch_copy(messages, meters, seen, watched_of) -> dict[int, list[dict]]:
    """PostgreSQL: COPY the rows (no model instances, no per-row Python in Django).

    Building thousands of model instances per batch on a database thread holds the GIL
    long enough to stall the event loop (py-spy showed the loop waiting for the GIL in
    websockets' frame writer); psycopg's COPY writes rows in C. Rows of chargers whose
    Logs tab is open go through bulk_create, which returns their ids for the live view.
    """
    from django.db import connection

    from chargers.models import Charger, MeterValue, OcppMessage

    watched = watched_of({m[0] for m in messages}) if (watched_of is not None and messages) else set()
    live = [m for m in messages if m[0] in watched]
    dumps = json.dumps
    with transaction.atomic():
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            if len(live) < len(messages):
                with cursor.copy(
                    f"COPY {OcppMessage._meta.db_table} (charger_id, timestamp, direction, message_type, unique_id, "
                    "action, id_tag, payload, raw) FROM STDIN"
                ) as copy:
                    write = copy.write_row
                    for charger_id, ts, direction, mtype, uid, action, id_tag, payload, raw in messages:
                        if charger_id in watched:
                            continue
                        write((charger_id, ts, direction, mtype, uid, action, id_tag,
                               None if payload is None else dumps(payload), raw))
            if meters:
                sessions = _session_ids(meters)
                with cursor.copy(
                    f"COPY {MeterValue._meta.db_table} (charger_id, session_id, connector_id, timestamp, measurand, "
                    "phase, unit, context, location, value, raw_value) FROM STDIN"
                ) as copy:
                    write = copy.write_row
                    for m in meters:
                        write((m.charger_id, sessions.get((m.charger_id, m.transaction_id)), m.connector_id,
                               m.timestamp, m.measurand[:50], m.phase[:10], m.unit[:10], m.context[:20],
                               m.location[:10], _to_decimal(m.raw_value), m.raw_value[:100]))
            if seen:
                ids = list(seen)
                cursor.execute(
                    f"UPDATE {Charger._meta.db_table} AS c SET last_seen_at = v.seen, "
                    "last_heartbeat_at = COALESCE(v.hb, c.last_heartbeat_at) "
                    "FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS seen, "
                    "unnest(%s::timestamptz[]) AS hb) AS v WHERE c.id = v.id",
                    [ids, [seen[i][0] for i in ids], [seen[i][0] if seen[i][1] else None for i in ids]],
                )
        rows = OcppMessage.objects.bulk_create([_message_row(m) for m in live]) if live else []
    published: dict[int, list[dict]] = {}
    for row in rows:
        if row.pk is not None:
            published.setdefault(row.charger_id, []).append(serialize_message(row))
    return published


def _message_row(message):
    from chargers.models import OcppMessage

    charger_id, ts, direction, mtype, uid, action, id_tag, payload, raw = message
    return OcppMessage(
        charger_id=charger_id, timestamp=ts, direction=direction, message_type=mtype,
        unique_id=uid, action=action, id_tag=id_tag, payload=payload, raw=raw,
    )


def _write_batch_orm(messages, meters, seen, watched_of) -> dict[int, list[dict]]:
    from chargers.models import Charger, MeterValue, OcppMessage

    with transaction.atomic():
        rows = OcppMessage.objects.bulk_create([_message_row(m) for m in messages])
        if meters:
            sessions = _session_ids(meters)
            MeterValue.objects.bulk_create(
                [
                    MeterValue(
                        charger_id=m.charger_id, session_id=sessions.get((m.charger_id, m.transaction_id)),
                        connector_id=m.connector_id, timestamp=m.timestamp, measurand=m.measurand[:50],
                        phase=m.phase[:10], unit=m.unit[:10], context=m.context[:20],
                        location=m.location[:10], value=_to_decimal(m.raw_value),
                        raw_value=m.raw_value[:100],
                    )
                    for m in meters
                ]
            )
        if seen:
            chargers = []
            for charger_id, (when, heartbeat) in seen.items():
                charger = Charger(pk=charger_id, last_seen_at=when)
                charger.last_heartbeat_at = when if heartbeat else None
                chargers.append(charger)
            with_hb = [c for c in chargers if c.last_heartbeat_at]
            without_hb = [c for c in chargers if not c.last_heartbeat_at]
            if with_hb:
                Charger.objects.bulk_update(with_hb, ["last_seen_at", "last_heartbeat_at"])
            if without_hb:
                Charger.objects.bulk_update(without_hb, ["last_seen_at"])
    if watched_of is None or not rows:
        return {}
    watched = watched_of({row.charger_id for row in rows})
    published: dict[int, list[dict]] = {}
    for row in rows:
        if row.charger_id in watched and row.pk is not None:
            published.setdefault(row.charger_id, []).append(serialize_message(row))
    return published


def serialize_message(row) -> dict:
    return {
        "id": row.pk,
        "timestamp": row.timestamp.isoformat(),
        "direction": row.direction,
        "message_type": {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}.get(row.message_type, "INVALID"),
        "unique_id": row.unique_id,
        "action": row.action,
        "id_tag": row.id_tag,
        "payload": row.payload,
    }


async def _publish(published: dict[int, list[dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for charger_id, rows in published.items():
        try:
            await layer.group_send(log_group(charger_id), {"type": "log.rows", "rows": rows})
        except Exception:  # a live view is best effort; the rows are stored either way
            logger.warning("Could not publish log rows for charger %s", charger_id, exc_info=True)


writer = MessageLogWriter()


@atexit.register
def _flush_at_exit() -> None:
    if writer._messages or writer._meters or writer._seen:
        try:
            writer._write_everything_sync()
        except Exception:
            logger.exception("Could not write the OCPP message log at exit")
