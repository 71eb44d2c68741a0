"""Local durable journal: what the central system acknowledged while the database was away.

When a write of a transaction message (StartTransaction, StopTransaction, MeterValues,
StatusNotification, BootNotification) or of the message log fails because the database is
unreachable, the message is appended to this process's journal file and fsync'd, and only
then answered. The journal is "engaged" from that moment: every later journaled message also
goes to the file (so order is kept), until a background task sees the database again and
replays the file into it, in order, each entry exactly once (JournalEntryApplied is written
in the same database transaction as the entry's effect), and then truncates it.

Each server process owns one file, locked with flock for its lifetime. A process that finds
an unlocked file of another process (it crashed or was killed) replays that file and deletes
it, so a kill -9 at any moment loses nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction

from backoffice import db

logger = logging.getLogger(__name__)

T = TypeVar("T")
PROBE_EVERY_S = 1.0
# Entries applied per database transaction at replay (each still exactly once, in a savepoint
# with its JournalEntryApplied row). One transaction and one pool hop per entry made the journal
# of a 30 s outage of 100 chargers take 26 s to replay (docs/performance.md, "Journal replay").
REPLAY_CHUNK = 200
ORPHAN_SCAN_EVERY_S = 30.0


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means "the database cannot be reached now" (vs. a bad row)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a deadlock or a serialization failure (SQLSTATE class 40): the database
    is there and rolled the whole transaction back, so running it again is safe and usually
    succeeds. `is_outage` says yes to these too (they are OperationalErrors), so callers that
    can run the work again ask this first, and journal only if it keeps failing."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return any(
        isinstance(e, psycopg.Error) and (e.sqlstate or "").startswith("40")
        for e in (exc, exc.__cause__)
    )


TRANSIENT_RETRIES = 2


def _encode(entry: dict[str, Any]) -> bytes:
    # ensure_ascii keeps lone surrogates and NUL as escapes; NaN stays NaN: json reads both back.
    return (json.dumps(entry, default=_default, separators=(",", ":")) + "\n").encode("ascii")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot journal {type(value).__name__}")


def read_entries(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Entries from `offset`, and the offset after the last complete line.

    A line cut short by a crash was never fsync'd, so never acknowledged: it is skipped.
    """
    entries = []
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            logger.error("Unreadable journal line in %s skipped: %r", path, line[:200])
    return entries, offset + end


class Journal:
    def __init__(self) -> None:
        self.key = ""
        self._path: Path | None = None
        self._fd: int | None = None
        self._seq = 0
        self._engaged = False
        self._write_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._replayed_offset = 0
        self._applier: Callable[[str, dict[str, Any]], None] | None = None
        self.replayed = 0  # entries replayed by this process (docs, tests)

    # -- setup --------------------------------------------------------------------------------

    def configure(
        self, applier: Callable[[str, dict[str, Any]], None], process_key: str | None = None
    ) -> None:
        """Name this process's journal and say how an entry is applied to the database."""
        self._applier = applier
        if process_key and not self.key:
            self.key = process_key

    @property
    def directory(self) -> Path:
        return Path(
            getattr(settings, "OCPP_JOURNAL_DIR", Path(settings.BASE_DIR) / "var" / "journal")
        )

    def _open(self) -> None:
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.key:
            self.key = uuid.uuid4().hex
        self._path = self.directory / f"{self.key}.journal"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours for the process lifetime
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ensure_loop_state(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._write_lock = asyncio.Lock()
            self._recovery = None

    # -- state --------------------------------------------------------------------------------

    @property
    def engaged(self) -> bool:
        """True while journaled messages wait for replay: new ones must be journaled too."""
        return self._engaged

    def backlog_bytes(self) -> int:
        """Bytes of this process's journal not replayed yet (one stat; the metrics' gauge)."""
        path = self._path
        if path is None or not self._engaged:
            return 0
        try:
            return max(0, os.path.getsize(path) - self._replayed_offset)
        except OSError:
            return 0

    def engage(self, reason: BaseException | str) -> None:
        if not self._engaged:
            logger.error(
                "Database unavailable (%s): journaling transaction messages to %s",
                reason,
                self.directory,
            )
        self._engaged = True
        self._ensure_loop_state()
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(
                self._recover(), name="ocpp-journal-replay"
            )

    # -- writing ------------------------------------------------------------------------------

    async def append(self, entries: list[dict[str, Any]]) -> None:
        """Write entries and fsync them; return only when they are on disk."""
        self._ensure_loop_state()
        assert self._write_lock is not None
        async with self._write_lock:
            self._open()
            lines = []
            for entry in entries:
                self._seq += 1
                lines.append(_encode({"seq": self._seq, **entry}))
            await asyncio.to_thread(self._write_sync, b"".join(lines))

    def _write_sync(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def append_sync(self, entries: list[dict[str, Any]]) -> None:
        """For process exit, when no event loop runs any more."""
        self._open()
        lines = []
        for entry in entries:
            self._seq += 1
            lines.append(_encode({"seq": self._seq, **entry}))
        self._write_sync(b"".join(lines))

    # -- replay -------------------------------------------------------------------------------

    async def _recover(self) -> None:
        while self._engaged:
            try:
                await db.run(_probe)
                await self._replay_own()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Journal replay waits for the database: %s", exc)
                await asyncio.sleep(PROBE_EVERY_S)

    async def _replay_own(self) -> None:
        assert self._write_lock is not None
        while True:
            if self._path is None:
                self._engaged = False
                return
            entries, offset = read_entries(self._path, self._replayed_offset)
            if not entries:
                async with self._write_lock:
                    # Nothing was appended since we read: done. Truncate under the write lock.
                    if os.path.getsize(self._path) == self._replayed_offset:
                        assert self._fd is not None
                        os.ftruncate(self._fd, 0)
                        os.fsync(self._fd)
                        self._replayed_offset = 0
                        self._engaged = False
                        logger.warning("Journal replayed; writing to the database again")
                        return
                continue
            for start in range(0, len(entries), REPLAY_CHUNK):
                chunk = entries[start : start + REPLAY_CHUNK]
                await db.run(self._apply_chunk, self._path.name, chunk)
                self.replayed += len(chunk)
            self._replayed_offset = offset

    def _apply_chunk(self, journal_name: str, entries: list[dict[str, Any]]) -> None:
        """Apply entries in one transaction: an outage rolls them all back (replayed again
        later, still exactly once); a bad entry is handled by the applier in its savepoint."""
        with transaction.atomic():
            for entry in entries:
                self._apply(journal_name, entry)

    def _apply(self, journal_name: str, entry: dict[str, Any]) -> None:
        if self._applier is None:  # chargers.connections.process configures it at start
            raise RuntimeError("The journal has no applier: call journal.configure() first")
        self._applier(journal_name, entry)

    def replay_orphans_sync(self) -> int:
        """Replay and delete the journals of processes that are gone. Synchronous (startup)."""
        directory = self.directory
        if not directory.exists():
            return 0
        replayed = 0
        for path in sorted(directory.glob("*.journal")):
            if self._path is not None and path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive and owns it
                entries, _ = read_entries(path)
                for start in range(0, len(entries), REPLAY_CHUNK):
                    self._apply_chunk(path.name, entries[start : start + REPLAY_CHUNK])
                replayed += len(entries)
                path.unlink()
                if entries:
                    logger.warning(
                        "Replayed %d journal entries of a stopped process from %s",
                        len(entries),
                        path.name,
                    )
            finally:
                os.close(fd)
        self.replayed += replayed
        return replayed

    async def replay_orphans(self) -> int:
        try:
            return await db.run(self.replay_orphans_sync)
        except DatabaseError as exc:
            logger.warning("Replaying stopped processes' journals waits for the database: %s", exc)
            return 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if (
                self._path is not None
                and not self._engaged
                and self._path.exists()
                and os.path.getsize(self._path) == 0
            ):
                self._path.unlink()
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None


def _probe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


journal = Journal()
