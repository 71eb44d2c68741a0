"""Batched, bounded writer for the OCPP message log, meter values and last-seen times.

The websocket path never waits for a database round trip to log a frame: frames are
appended to an in-process buffer and written by one background task in batches every few
milliseconds. What this writer guarantees (docs/ocpp.md, "Durability"):

- Any frame is storable: text PostgreSQL cannot hold (NUL, lone surrogates, NaN) is cleaned
  before buffering and the frame kept losslessly, JSON-escaped, with `escaped=True`.
- A row the database still refuses never stalls the writer: the batch is split until the bad
  row is alone, the rest is written, and the bad row goes to OcppDeadLetter.
- Last-seen times are written in their own statement, never behind a failing log batch.
- Buffers are bounded in bytes, per charger and in total: a charger over its share waits
  (its reads slow down); the others go on.
- Meter values are acknowledged only once committed (`store_meter_samples` returns after
  the batch holding them commits: group commit).
- When the database is unreachable, buffered frames are appended to the local journal
  (chargers.plumbing.journal) instead of being retried in memory, and replayed when it is back.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice import async_pg, db
from backoffice.db import update_many
from chargers.messagelog import meter_values
from chargers.ocpp.storable import (
    clean_text,
    clean_value,
    escaped_raw,
    may_need_cleaning,
    text_is_clean,
)
from chargers.plumbing.journal import TRANSIENT_RETRIES, is_outage, is_transient, journal
from chargers.plumbing.live import connector_watch_key
from chargers.plumbing.watching import WatchedSet

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.005
MAX_BATCH = 2000
MAX_BATCH_BYTES = 8 * 1024 * 1024
LAST_SEEN_WRITE_EVERY_S = 15.0  # default of settings.CHARGER_LAST_SEEN_WRITE_EVERY_S
LOG_WATCH_TTL_S = 60
CONNECTOR_WATCH_REFRESH_S = 2.0
RETRY_PAUSE_S = 0.5


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def last_seen_write_every_s() -> float:
    """How often at most a charger's last-seen time is written (CHARGER_LAST_SEEN_WRITE_EVERY_S):
    read at each scan, so a deployment (or a test's server) sets it in its environment."""
    return float(getattr(settings, "CHARGER_LAST_SEEN_WRITE_EVERY_S", LAST_SEEN_WRITE_EVERY_S))


def log_group(charger_id: int) -> str:
    return f"logs.{charger_id}"


def log_watch_key(charger_id: int) -> str:
    return f"logwatch:{charger_id}"


class DatabaseUnavailable(Exception):
    """The batch holding these rows could not reach the database (journal them instead)."""


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


# A buffered log row: (charger_id, timestamp, direction, message_type, unique_id, action,
# id_tag, payload as JSON text or None, raw, escaped, violation)
# (charger_id, timestamp, direction, message_type, unique_id, action, id_tag, payload JSON, raw,
#  escaped, violation, backoffice_id): the column order of COLUMNS.
Row = tuple[int, datetime, str, int | None, str, str, str, str | None, str, bool, str, int | None]
COLUMNS = (
    "charger_id, timestamp, direction, message_type, unique_id, action, id_tag, payload, raw, escaped, violation, "
    "backoffice_id"
)


def _id_tag_of(payload: Any) -> str:
    """The card of a frame, for Logs search: 1.6 `idTag`, 2.0.1 `idToken.idToken` (Authorize,
    TransactionEvent, RequestStartTransaction)."""
    if isinstance(payload, dict):
        tag = payload.get("idTag")
        if tag is None and isinstance(payload.get("idToken"), dict):
            tag = payload["idToken"].get("idToken")
        if isinstance(tag, str):
            return tag[:36]
    return ""


def make_row(
    *,
    charger_id: int,
    direction: str,
    message_type: int | None,
    unique_id: str,
    action: str,
    payload: Any,
    raw: str = "",
    text: str | None = None,
    violation: str = "",
    timestamp: datetime | None = None,
    backoffice_id: int | None = None,
    text_suspect: bool | None = None,
    payload_json: str | None = None,
) -> tuple[Row, int]:
    """Build a storable row (and its size in bytes) from a frame, whatever it holds.
    `text_suspect`: may_need_cleaning(text), when the caller has already asked.
    `payload_json`: the payload as compact JSON when the caller already has it; used only when
    the payload needs no cleaning (the text is not suspect), so it is what would be written."""
    escaped = False
    if text_suspect is None and text is not None:
        text_suspect = may_need_cleaning(text)
    if text is not None and text_suspect:
        payload, changed = clean_value(payload)
        unique_id, uid_changed = clean_value(unique_id)
        action, action_changed = clean_value(action)
        if changed or uid_changed or action_changed:
            escaped = True
    elif text is None and not raw and payload is not None:
        # A CALL of ours logged without its text (e.g. a DataTransfer from the API whose data
        # holds a NUL): cleaned the same way, the payload as sent kept in `raw`.
        original = payload
        payload, changed = clean_value(payload)
        if changed:
            escaped, text = True, json.dumps(original)
    if raw and not text_is_clean(raw):
        escaped = True
    if escaped:
        raw = escaped_raw(text if text is not None else raw)
    if payload is None:
        payload_json = None
    elif payload_json is None or escaped or text_suspect is not False:
        payload_json = json.dumps(payload, separators=(",", ":"))
    row: Row = (
        charger_id,
        timestamp or timezone.now(),
        direction,
        message_type,
        str(unique_id)[:64],
        str(action)[:64],
        clean_text(_id_tag_of(payload)),
        payload_json,
        raw,
        escaped,
        clean_text(violation[:500]),
        backoffice_id,
    )
    return row, len(payload_json or "") + len(raw) + 200


class MessageLogWriter:
    def __init__(self) -> None:
        # (row, its size, the future of a caller waiting for it to be durable, or None)
        self._messages: deque[tuple[Row, int, asyncio.Future[None] | None]] = deque()
        self._meters: deque[tuple[list[MeterSample], asyncio.Future[None]]] = deque()
        self._seen: dict[int, tuple[datetime, bool]] = {}
        self._seen_written: dict[int, float] = {}
        self.batches_written = 0  # group commits of frames and readings (tests, the bench)
        self._bytes = 0
        self._bytes_by_charger: dict[int, int] = {}
        self._wakeup: asyncio.Event | None = None
        self._drained: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._log_watch = WatchedSet(log_watch_key)  # which chargers have a Logs tab open
        # Connector-event watchers (chargers.plumbing.live markers), refreshed for all chargers at once
        # every CONNECTOR_WATCH_REFRESH_S instead of one cache round trip per charger.
        self._connector_interest: set[int] = set()
        self._connector_watched: set[int] = set()
        self._connector_known: set[int] = set()
        self._connector_watch = WatchedSet(connector_watch_key)
        self._connector_refreshed = 0.0
        self._pg_conn = async_pg.LoopConnection("ocpp-message-log")
        self._seen_scanned = 0.0
        # Last-seen times go on their own connection, beside the log batches: a write of thousands
        # of chargers' times must not hold back meter values waiting for their commit.
        self._seen_pg = async_pg.LoopConnection("ocpp-last-seen")
        # The readings of a batch go on their own connection, beside its frame rows.
        self._meter_pg = async_pg.LoopConnection("ocpp-meter-values")
        self._seen_task: asyncio.Task[None] | None = None
        self._sessions: dict[tuple[int, int], int] = {}  # (charger, transactionId) -> session pk
        self.dead_letters = 0

    # -- producers (event loop) ------------------------------------------------------------

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            if self._loop is not loop:
                self._seen_task = None  # its loop is gone
                self._close_pg()
                self._sessions.clear()
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._drained = loop.create_future()
            self._flush_lock = asyncio.Lock()
            self._task = loop.create_task(self._run(), name="ocpp-message-log")

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    @property
    def buffered_frames(self) -> int:
        return len(self._messages)

    async def add_message(
        self,
        *,
        charger_id: int,
        direction: str,
        message_type: int | None,
        unique_id: str,
        action: str,
        payload: Any,
        raw: str = "",
        text: str | None = None,
        violation: str = "",
        timestamp: datetime | None = None,
        backoffice_id: int | None = None,
        text_suspect: bool | None = None,
        payload_json: str | None = None,
        durable: bool = False,
    ) -> None:
        """Buffer one frame for the log; waits only while this charger is over its byte share.

        `durable`: return only once the row is committed (or journaled, or kept as a dead
        letter), for a frame whose answer says its data is stored: its Logs row must survive a
        kill -9 as its data does. It shares the writer's next group commit."""
        self._ensure_running()
        row, size = make_row(
            charger_id=charger_id,
            direction=direction,
            message_type=message_type,
            unique_id=unique_id,
            action=action,
            payload=payload,
            raw=raw,
            text=text,
            violation=violation,
            timestamp=timestamp,
            backoffice_id=backoffice_id,
            text_suspect=text_suspect,
            payload_json=payload_json,
        )
        # Backpressure on this charger only: it waits while it holds more than its share (or the
        # whole buffer is full and it holds some of it), which slows down reading its socket.
        while self._over_share(charger_id, size):
            assert self._wakeup is not None and self._drained is not None
            self._wakeup.set()
            await asyncio.shield(self._drained)
        future = self._enqueue(row, size, charger_id, durable=durable)
        if future is not None:
            await future

    def add_message_now(self, **fields: Any) -> asyncio.Future[None] | None:
        """`add_message(durable=True, ...)` without waiting: the row is queued now, if this
        charger is within its share, and the future of its commit returned (None: over its
        share, call `add_message`). A handler queues its frame's row this way beside the data
        it writes (`store_meter_samples(alongside=...)`), so one group commit holds both."""
        self._ensure_running()
        row, size = make_row(**fields)
        if self._over_share(fields["charger_id"], size):
            return None
        return self._enqueue(row, size, fields["charger_id"], durable=True)

    def _over_share(self, charger_id: int, size: int) -> bool:
        per_charger = _limit("OCPP_LOG_BUFFER_BYTES_PER_CHARGER", 4 * 1024 * 1024)
        total = _limit("OCPP_LOG_BUFFER_BYTES", 256 * 1024 * 1024)
        held = self._bytes_by_charger.get(charger_id, 0)
        return held > 0 and (held + size > per_charger or self._bytes + size > total)

    def _enqueue(
        self, row: Row, size: int, charger_id: int, *, durable: bool
    ) -> asyncio.Future[None] | None:
        future = self._loop.create_future() if durable and self._loop is not None else None
        self._messages.append((row, size, future))
        self._bytes += size
        self._bytes_by_charger[charger_id] = self._bytes_by_charger.get(charger_id, 0) + size
        assert self._wakeup is not None
        self._wakeup.set()  # cheap when already set; wakes an idle writer on the first frame
        return future

    async def store_meter_samples(
        self, samples: list[MeterSample], *, alongside: Callable[[], object] | None = None
    ) -> None:
        """Buffer the samples of one message and return once they are committed.

        `alongside`: called once the samples are queued, before waiting: what it queues
        (the frame's own Logs row, `add_message_now`) shares their group commit.
        Raises DatabaseUnavailable when the database cannot be reached: the caller journals them.
        """
        if not samples:
            return
        self._ensure_running()
        assert self._loop is not None and self._wakeup is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._meters.append((samples, future))
        self._wakeup.set()
        if alongside is not None:
            alongside()
        await future

    def touch(
        self, charger_id: int, *, heartbeat: bool = False, now: datetime | None = None
    ) -> None:
        """Note that a charger was heard from; written at most every few seconds per charger."""
        now = now or timezone.now()
        previous = self._seen.get(charger_id)
        self._seen[charger_id] = (now, heartbeat or (previous[1] if previous else False))

    def heard(self, charger_id: int) -> None:
        """`touch` with no frame to write beside it (a websocket pong): an idle writer waits for
        work, so it is woken."""
        self.touch(charger_id)
        self._ensure_running()
        assert self._wakeup is not None
        self._wakeup.set()

    def forget(self, charger_id: int) -> None:
        self._seen_written.pop(charger_id, None)
        self._connector_interest.discard(charger_id)
        self._connector_known.discard(charger_id)
        self._connector_watched.discard(charger_id)
        self._connector_watch.forget(charger_id)
        self._log_watch.forget(charger_id)

    def connector_watched(self, charger_id: int) -> bool | None:
        """Whether a browser follows this charger's connectors, from the batched refresh;
        None until the first refresh that covered this charger (then ask chargers.plumbing.live)."""
        self._ensure_running()
        self._connector_interest.add(charger_id)
        if charger_id not in self._connector_known:
            return None
        return charger_id in self._connector_watched

    def _refresh_connector_watch(self, charger_ids: set[int]) -> set[int]:
        return self._connector_watch.refresh(charger_ids)

    async def flush(self, *, with_last_seen: bool = False) -> None:
        """Write every buffered frame and meter value (and all last-seen times if asked)."""
        if self._task is None or self._loop is not asyncio.get_running_loop():
            await db.run(self._write_everything_sync)
            return
        assert self._flush_lock is not None
        async with self._flush_lock:
            while self._messages or self._meters:
                await self._flush_once(force_seen=False)
            if with_last_seen:
                await self._flush_once(force_seen=True)

    async def close(self) -> None:
        try:
            await self.flush(with_last_seen=True)
        finally:
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
        assert self._wakeup is not None and self._flush_lock is not None
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
                if (
                    self._connector_interest
                    and time.monotonic() - self._connector_refreshed > CONNECTOR_WATCH_REFRESH_S
                ):
                    self._connector_refreshed = time.monotonic()
                    ids = set(self._connector_interest)
                    self._connector_watched = await db.run(self._refresh_connector_watch, ids)
                    self._connector_known |= ids
            except asyncio.CancelledError:
                raise
            except Exception:  # keep logging alive whatever happens; rows are never dropped
                logger.exception("Writing the OCPP message log failed; retrying")
                await asyncio.sleep(RETRY_PAUSE_S)

    def _take(
        self,
    ) -> tuple[
        list[Row], list[tuple[list[MeterSample], asyncio.Future[None]]], list[asyncio.Future[None]]
    ]:
        messages: list[Row] = []
        waiting: list[asyncio.Future[None]] = []
        taken_bytes = 0
        while (
            self._messages
            and len(messages) < MAX_BATCH
            and (not messages or taken_bytes < MAX_BATCH_BYTES)
        ):
            row, size, future = self._messages.popleft()
            messages.append(row)
            if future is not None:
                waiting.append(future)
            taken_bytes += size
            self._release(row[0], size)
        meters: list[tuple[list[MeterSample], asyncio.Future[None]]] = []
        count = 0
        while self._meters and (not meters or count < MAX_BATCH):
            item = self._meters.popleft()
            meters.append(item)
            count += len(item[0])
        return messages, meters, waiting

    def _release(self, charger_id: int, size: int) -> None:
        self._bytes -= size
        left = self._bytes_by_charger.get(charger_id, 0) - size
        if left > 0:
            self._bytes_by_charger[charger_id] = left
        else:
            self._bytes_by_charger.pop(charger_id, None)

    def _signal_drained(self) -> None:
        if self._drained is not None and self._loop is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = self._loop.create_future()

    def _due_seen(self, force: bool, every_s: float) -> dict[int, tuple[datetime, bool]]:
        now = time.monotonic()
        due = {}
        for charger_id, seen in list(self._seen.items()):
            last = self._seen_written.get(charger_id)  # None: never written by this process
            if force or last is None or now - last >= every_s:
                due[charger_id] = seen
                self._seen_written[charger_id] = now
                del self._seen[charger_id]
        return due

    async def _flush_once(self, *, force_seen: bool) -> None:
        messages, meters, waiting = self._take()
        self._signal_drained()  # producers waiting for their share re-check now
        try:
            if messages or meters:
                await self._write_rows(messages, meters)
        except BaseException as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(DatabaseUnavailable(f"log row not stored: {exc!r}"))
            raise
        else:
            # Written, journaled or dead-lettered: durable in every case.
            for future in waiting:
                if not future.done():
                    future.set_result(None)
        finally:
            # Last-seen times never wait behind the log: their own statement, every second; on
            # PostgreSQL in a task of their own, so the log's next batches do not wait for them.
            # Scanned every second, or every period when that is shorter.
            now = time.monotonic()
            every_s = last_seen_write_every_s()
            if force_seen and self._seen_task is not None:
                await asyncio.wait([self._seen_task])
            if (force_seen or now - self._seen_scanned >= min(1.0, every_s)) and (
                self._seen_task is None or self._seen_task.done()
            ):
                self._seen_scanned = now
                seen = self._due_seen(force_seen, every_s)
                if seen and self._use_async_pg() and not force_seen:
                    assert self._loop is not None
                    self._seen_task = self._loop.create_task(
                        self._write_seen_logged(seen), name="ocpp-last-seen"
                    )
                elif seen:
                    await self._write_seen(seen, wait=force_seen)

    async def _write_seen(
        self, seen: dict[int, tuple[datetime, bool]], *, wait: bool = False
    ) -> None:
        """Write last-seen times; on failure they wait in memory for the next scan."""
        if journal.engaged:
            for charger_id, value in seen.items():
                self._seen.setdefault(charger_id, value)
            return
        try:
            if self._use_async_pg():
                # A charger's row locked by its connection or boot batch (or deleted): its time
                # waits for its next turn (CHARGER_LAST_SEEN_WRITE_EVERY_S).
                for charger_id in await _write_seen_async(self._seen_pg, seen, wait=wait):
                    self._seen.setdefault(charger_id, seen[charger_id])
            else:
                await db.run(_write_seen, seen)
        except Exception as exc:
            for charger_id, value in seen.items():
                self._seen.setdefault(charger_id, value)
            if not is_outage(exc):
                raise

    async def _write_seen_logged(self, seen: dict[int, tuple[datetime, bool]]) -> None:
        try:
            await self._write_seen(seen)
        except Exception:  # kept for the next scan; a task has nobody else to tell
            logger.exception("Writing chargers' last-seen times failed; retrying")

    async def _write_rows(
        self, messages: list[Row], meters: list[tuple[list[MeterSample], asyncio.Future[None]]]
    ) -> None:
        """Write one batch: its frame rows and its readings side by side, each part on its own
        connection and each retried, isolated or spilled on its own. Returns once both are
        durable (written, journaled, dead-lettered or handed back to their handlers)."""
        if journal.engaged:
            await self._spill(messages, meters, "journal engaged")
            return
        if messages and meters and self._use_async_pg():
            # Two round trips at once instead of four in a row (BEGIN, COPY, COPY, COMMIT):
            # on a busy loop each round trip waits for a turn of the loop, and every MeterValues
            # in the batch waits for all of them (docs/performance.md, "Two parts at once").
            outcomes = await asyncio.gather(
                self._write_part(messages, []), self._write_part([], meters), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        else:
            await self._write_part(messages, meters)
        self.batches_written += 1

    async def _write_part(
        self, messages: list[Row], meters: list[tuple[list[MeterSample], asyncio.Future[None]]]
    ) -> None:
        samples = [sample for batch, _ in meters for sample in batch]
        try:
            started = time.monotonic()
            for attempt in range(TRANSIENT_RETRIES + 1):
                try:
                    published = await self._write_batch(messages, samples)
                    break
                except Exception as exc:  # a deadlock rolled the batch back: write it again
                    if not is_transient(exc) or attempt == TRANSIENT_RETRIES:
                        raise
            logger.debug(
                "Wrote %d frames, %d meter values in %.1f ms; %d frames still buffered",
                len(messages),
                len(samples),
                1000 * (time.monotonic() - started),
                len(self._messages),
            )
        except Exception as exc:
            if is_outage(exc):
                journal.engage(exc)
                await self._spill(messages, meters, exc)
                return
            # Not an outage: some row is poison. Isolate it; everything else is written.
            logger.warning("A log batch was refused (%s); isolating the bad rows", exc)
            done: set[int] = set()  # id() of the rows and samples written or dead-lettered
            try:
                published = await self._write_isolating(messages, samples, done)
            except Exception as outage:
                # The database went away while the bad rows were being isolated (or even a dead
                # letter was refused): what is not written yet is journaled (frames) or handed
                # back (meter values, whose handlers journal their message), as in an outage,
                # and the journal's replay stores it later; nothing waits for ever.
                journal.engage(outage)
                await self._spill(
                    [row for row in messages if id(row) not in done],
                    [
                        (batch, future)
                        for batch, future in meters
                        if not all(id(s) in done for s in batch)
                    ],
                    outage,
                )
                for _, future in meters:
                    if not future.done():
                        future.set_result(None)
                return
        for _, future in meters:
            if not future.done():
                future.set_result(None)
        if published:
            await _publish(published)

    async def _spill(
        self,
        messages: list[Row],
        meters: list[tuple[list[MeterSample], asyncio.Future[None]]],
        reason: Any,
    ) -> None:
        """The database is unreachable: journal the log rows, hand meter values back."""
        for _, future in meters:
            if not future.done():
                future.set_exception(DatabaseUnavailable(str(reason)))
        if messages:
            await journal.append([_journal_entry(messages)])

    async def _write_isolating(
        self, messages: list[Row], samples: list[MeterSample], done: set[int]
    ) -> dict[int, list[dict[str, Any]]]:
        """Write what can be written; a row refused on its own goes to the dead-letter table.
        Adds the id() of every row and sample written (or dead-lettered) to `done`; an outage
        is raised as is, for the caller to spill what is not in `done`."""
        if len(messages) + len(samples) <= 1:
            try:
                result = await self._write_batch(messages, samples)
            except Exception as exc:
                if is_outage(exc):
                    raise
                await db.run(_dead_letter, messages, samples, exc)
                self.dead_letters += 1
                result = {}
            done.update(id(row) for row in (*messages, *samples))
            return result
        published: dict[int, list[dict[str, Any]]] = {}
        for part_messages, part_samples in _halves(messages, samples):
            try:
                result = await self._write_batch(part_messages, part_samples)
                done.update(id(row) for row in (*part_messages, *part_samples))
            except Exception as exc:
                if is_outage(exc):
                    raise
                result = await self._write_isolating(part_messages, part_samples, done)
            for charger_id, rows in result.items():
                published.setdefault(charger_id, []).extend(rows)
        return published

    async def _write_batch(
        self, messages: list[Row], samples: list[MeterSample]
    ) -> dict[int, list[dict[str, Any]]]:
        if self._use_async_pg():
            return await self._write_batch_async(messages, samples)
        return await db.run(_write_batch_orm, messages, samples, self._watched_memo)

    # -- PostgreSQL: COPY on an async connection in the event loop ----------------------------
    #
    # A writer on a database thread holds the GIL while it formats thousands of rows, and
    # the event loop then waits for the GIL after every socket write (the convoy effect:
    # the server sat at 30-60 % CPU with 1 s round trips). psycopg's async COPY formats
    # rows in C on the loop itself and never blocks it on I/O.

    def _use_async_pg(self) -> bool:
        return async_pg.enabled()

    def _close_pg(self) -> None:
        """Drop the log connections (idle writer, or its event loop is gone)."""
        self._pg_conn.close()
        self._meter_pg.close()
        if self._seen_task is None or self._seen_task.done():
            self._seen_pg.close()

    async def _write_batch_async(
        self, messages: list[Row], samples: list[MeterSample]
    ) -> dict[int, list[dict[str, Any]]]:
        from chargers.models import ChargingSession, OcppMessage

        watched: set[int] | None = set()
        if messages:
            ids = {m[0] for m in messages}
            watched = self._watched_if_fresh(ids)
            if watched is None:
                watched = await db.run(self._watched_memo, ids)
        assert watched is not None
        published: dict[int, list[dict[str, Any]]] = {}
        columns = COLUMNS
        # One COPY commits by itself (the connections are autocommit): a part that is one
        # statement needs no BEGIN and COMMIT round trips. The readings' session lookup only reads.
        together = bool(messages) and (bool(samples) or bool(watched & {m[0] for m in messages}))
        pg = self._pg_conn if messages else self._meter_pg
        try:
            async with (
                pg.use() as conn,
                conn.transaction() if together else contextlib.nullcontext(),
                conn.cursor() as cur,
            ):
                if any(m[0] not in watched for m in messages):
                    async with cur.copy(
                        f"COPY {OcppMessage._meta.db_table} ({columns}) FROM STDIN"
                    ) as copy:
                        for row in messages:
                            if row[0] not in watched:
                                await copy.write_row(row)
                for row in messages:
                    if row[0] not in watched:
                        continue
                    await cur.execute(
                        f"INSERT INTO {OcppMessage._meta.db_table} ({columns}) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                        list(row),
                    )
                    fetched = await cur.fetchone()
                    published.setdefault(row[0], []).append(_serialize_row(fetched[0], row))
                if samples:
                    wanted = {
                        (m.charger_id, m.transaction_id)
                        for m in samples
                        if m.transaction_id is not None
                    }
                    missing = {key[1] for key in wanted if key not in self._sessions}
                    if missing:
                        await cur.execute(
                            f"SELECT id, charger_id, transaction_id FROM {ChargingSession._meta.db_table} "
                            "WHERE transaction_id = ANY(%s)",
                            [list(missing)],
                        )
                        if len(self._sessions) > 100_000:
                            self._sessions.clear()
                        for pk, charger_id, tx in await cur.fetchall():
                            self._sessions[(charger_id, tx)] = pk
                    sessions = self._sessions
                    await meter_values.store_copy(cur, _meter_rows(samples, sessions))
        except Exception:  # the connection was dropped by use()
            self._sessions.clear()  # a stale session id must not poison the retry
            raise
        return published

    def _watched_if_fresh(self, charger_ids: set[int]) -> set[int] | None:
        """Return the watched ones among these chargers if the view is under 2 s old and
        covers them all (no cache round trip), else None."""
        return self._log_watch.known(charger_ids)

    def _watched_memo(self, charger_ids: set[int]) -> set[int]:
        """Return which of these chargers have a Logs tab open somewhere (chargers.plumbing.watching):
        a charger missing from earlier batches is asked about, never taken for unwatched."""
        return self._log_watch.refresh(charger_ids)

    def _write_everything_sync(self) -> None:
        """Process exit or another event loop: write (or journal) everything, synchronously."""
        while self._messages or self._meters or self._seen:
            messages, meters, _ = self._take()  # its waiters' event loop is gone
            samples = [sample for batch, _ in meters for sample in batch]
            seen = self._due_seen(True, 0.0)
            try:
                if journal.engaged:
                    raise DatabaseUnavailable("journal engaged")
                _write_batch_orm(messages, samples, None)
                if seen:
                    _write_seen(seen)
            except Exception as exc:
                if not (isinstance(exc, DatabaseUnavailable) or is_outage(exc)):
                    raise
                # Meter values here were never acknowledged (their handler is gone); the log
                # rows are kept in the journal for the next start.
                if messages:
                    journal.append_sync([_journal_entry(messages)])
                return


def _journal_entry(messages: list[Row]) -> dict[str, Any]:
    """Log rows the database could not take, as one journal entry (replayed by services)."""
    return {"kind": "log", "charger_id": None, "rows": [list(row) for row in messages]}


def store_journaled_rows(rows: list[list[Any]]) -> None:
    """Replay a journal entry's log rows (rows of many chargers: a spilled batch) inside the
    caller's transaction. A row the database refuses is isolated as the live writer does, by
    halving the rows under savepoints, and kept as a dead letter; all others are stored. One bad
    row used to send the whole entry to the dead letters (7-10 % of healthy chargers' rows after
    an outage). An outage is raised as is: the entry is replayed again later."""
    from django.utils.dateparse import parse_datetime

    _store_isolating(
        [
            (
                *row[:1],
                (parse_datetime(row[1]) if isinstance(row[1], str) else row[1]) or timezone.now(),
                *row[2:11],
                row[11] if len(row) > 11 else None,
            )
            for row in rows
        ]
    )


def _store_isolating(rows: list[Any]) -> None:
    from chargers.models import OcppMessage

    try:
        with transaction.atomic():  # a savepoint: a refusal undoes these rows only
            OcppMessage.objects.bulk_create([_message_model(row) for row in rows])
        return
    except Exception as exc:
        if is_outage(exc):
            raise
        if len(rows) == 1:
            _dead_letter(rows, [], exc)
            return
    middle = len(rows) // 2
    _store_isolating(rows[:middle])
    _store_isolating(rows[middle:])


def _halves(
    messages: list[Row], samples: list[MeterSample]
) -> list[tuple[list[Row], list[MeterSample]]]:
    """Split a batch of two or more rows into two non-empty parts."""
    if len(messages) >= 2:
        mid = len(messages) // 2
        return [(messages[:mid], []), (messages[mid:], samples)]
    if messages:
        return [(messages, []), ([], samples)]
    mid = len(samples) // 2
    return [([], samples[:mid]), ([], samples[mid:])]


async def _write_seen_async(
    pg: async_pg.LoopConnection, seen: dict[int, tuple[datetime, bool]], *, wait: bool = False
) -> set[int]:
    """`_write_seen` as one statement on an async connection, beside the other writers of charger
    rows (connections, boots): it takes only the rows it can lock at once and never waits, so it
    cannot deadlock with them. Returns the ids it did not write (locked: try again later).
    With `wait` (the last write before the process stops) it waits for the locks instead."""
    from chargers.models import Charger

    table = Charger._meta.db_table
    ids = sorted(seen)
    skip = "" if wait else " SKIP LOCKED"
    async with pg.use() as conn:
        cursor = await conn.execute(
            f'UPDATE "{table}" AS c SET last_seen_at = v.at, '
            "last_heartbeat_at = CASE WHEN v.heartbeat THEN v.at ELSE c.last_heartbeat_at END "
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::bool[]) AS v(id, at, heartbeat) "
            f'WHERE c.id = v.id AND c.id IN (SELECT id FROM "{table}" WHERE id = ANY(%s) FOR NO KEY UPDATE{skip}) '
            "RETURNING c.id",
            [ids, [seen[pk][0] for pk in ids], [seen[pk][1] for pk in ids], ids],
        )
        written = {pk for (pk,) in await cursor.fetchall()}
    return set(ids) - written


def _write_seen(seen: dict[int, tuple[datetime, bool]]) -> None:
    from chargers.models import Charger

    with transaction.atomic():
        update_many(
            Charger,
            ["last_seen_at", "last_heartbeat_at"],
            ["id"],
            [(when, when, pk) for pk, (when, hb) in seen.items() if hb],
        )
        update_many(
            Charger,
            ["last_seen_at"],
            ["id"],
            [(when, pk) for pk, (when, hb) in seen.items() if not hb],
        )


def _dead_letter(messages: list[Row], samples: list[MeterSample], exc: BaseException) -> None:
    from chargers.models import OcppDeadLetter

    for row in messages:
        OcppDeadLetter.objects.create(
            charger_id=row[0],
            received_at=row[1],
            kind="message",
            error=repr(exc)[:2000],
            row=ascii(row)[:1_000_000],
        )
        logger.error(
            "Log row of charger %s refused by the database, kept as a dead letter: %s", row[0], exc
        )
    for sample in samples:
        OcppDeadLetter.objects.create(
            charger_id=sample.charger_id,
            received_at=sample.timestamp,
            kind="meter_value",
            error=repr(exc)[:2000],
            row=ascii(sample)[:100_000],
        )
        logger.error(
            "Meter value of charger %s refused by the database, kept as a dead letter: %s",
            sample.charger_id,
            exc,
        )


def _message_model(row: Row) -> Any:
    from chargers.models import OcppMessage

    (
        charger_id,
        ts,
        direction,
        mtype,
        uid,
        action,
        id_tag,
        payload,
        raw,
        escaped,
        violation,
        backoffice_id,
    ) = row
    return OcppMessage(
        charger_id=charger_id,
        timestamp=ts,
        direction=direction,
        message_type=mtype,
        unique_id=uid,
        action=action,
        id_tag=id_tag,
        # The row holds the payload as JSON text (it was bound for COPY).
        payload=json.loads(payload) if isinstance(payload, str) else payload,
        raw=raw,
        escaped=escaped,
        violation=violation,
        backoffice_id=backoffice_id,
    )


def _write_batch_orm(
    messages: list[Row], samples: list[MeterSample], watched_of: Any
) -> dict[int, list[dict[str, Any]]]:
    from chargers.models import OcppMessage

    with transaction.atomic():
        rows = (
            OcppMessage.objects.bulk_create([_message_model(m) for m in messages])
            if messages
            else []
        )
        if samples:
            sessions = _session_ids(samples)
            meter_values.store_orm(_meter_rows(samples, sessions))
    if watched_of is None or not rows:
        return {}
    watched = watched_of({row.charger_id for row in rows})
    published: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row.charger_id in watched and row.pk is not None:
            published.setdefault(row.charger_id, []).append(serialize_message(row))
    return published


def _meter_rows(
    samples: list[MeterSample], sessions: dict[tuple[int, int], int]
) -> Iterator[meter_values.MeterRow]:
    """The samples' rows (both writers' paths), each with the session of the transaction its
    charger named."""
    for m in samples:
        yield meter_values.MeterRow(
            m.charger_id,
            sessions.get((m.charger_id, m.transaction_id))
            if m.transaction_id is not None
            else None,
            m.connector_id,
            m.timestamp,
            m.measurand,
            m.phase,
            m.unit,
            m.context,
            m.location,
            m.raw_value,
        )


def _session_ids(samples: list[MeterSample]) -> dict[tuple[int, int], int]:
    from chargers.models import ChargingSession

    keys = {(m.charger_id, m.transaction_id) for m in samples if m.transaction_id is not None}
    sessions: dict[tuple[int, int], int] = {}
    if keys:
        for pk, charger_id, tx in ChargingSession.objects.filter(
            transaction_id__in={tx for _, tx in keys}
        ).values_list("pk", "charger_id", "transaction_id"):
            sessions[(charger_id, tx)] = pk
    return sessions


MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}


def serialize_message(row: Any) -> dict[str, Any]:
    return {
        "id": row.pk,
        "timestamp": row.timestamp.isoformat(),
        "direction": row.direction,
        "message_type": MESSAGE_TYPES.get(row.message_type, "INVALID"),
        "unique_id": row.unique_id,
        "action": row.action,
        "id_tag": row.id_tag,
        "payload": row.payload,
        "escaped": row.escaped,
        "violation": row.violation,
        "backoffice_id": row.backoffice_id,
        # The frame as received: when it was not JSON, or (escaped) JSON-escaped when it held text
        # the database cannot store.
        "raw": row.raw,
    }


def _serialize_row(pk: int, row: Row) -> dict[str, Any]:
    message = _message_model(row)
    message.pk = pk
    return serialize_message(message)


async def _publish(published: dict[int, list[dict[str, Any]]]) -> None:
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
