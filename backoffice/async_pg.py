"""The event loop's own PostgreSQL connections, for the hot batched writes of the OCPP path.

ORM work runs on database threads (backoffice.db), and a thread that formats thousands of rows
holds the GIL while the event loop waits for it after every socket write (the convoy the
message log escaped, docs/performance.md). The batched writers that carry most of a busy
fleet's rows therefore write with COPY and a few plain statements on async connections in the
loop instead; psycopg formats the rows in C and never blocks the loop on I/O.

Each writer has a `LoopConnection`; `use()` lends it a connection of the loop's pool for one
batch (psycopg refuses interleaved transactions on one connection, so two batches of a writer
take turns). The pool holds at most DB_ASYNC_POOL_SIZE connections (README, "Connections"):
with Django's pool that is every connection a process opens. A connection that sat idle, or
whose socket says the server went away (an outage, pg_terminate_backend), is tested before it
is lent, so the first batch after an outage does not fail on a stale one. PostgreSQL only; on
SQLite (`make run`, part of the tests) the writers keep their ORM path.
"""

from __future__ import annotations

import asyncio
import select
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import OperationalError, connections

# A connection idle this long is tested with an empty query before it is lent: a server that
# vanished without closing the socket (a network cut) shows nothing on it.
CHECK_IDLE_S = 1.0
# Idle connections beyond the first are closed after this long, so a quiet process holds one.
MAX_IDLE_S = 60.0


def enabled() -> bool:
    """Whether the batched writers use async connections (PostgreSQL, not turned off)."""
    return (
        bool(getattr(settings, "OCPP_LOG_ASYNC_COPY", True))
        and connections["default"].vendor == "postgresql"
    )


def conninfo(application_name: str) -> dict[str, str]:
    """Connection parameters of Django's default database, for psycopg."""
    params = connections["default"].settings_dict
    info: dict[str, str | None] = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": str(params["PORT"]) if params.get("PORT") else None,
        "application_name": application_name,
        "connect_timeout": "5",
    }
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options"):
        if params.get("OPTIONS", {}).get(key) is not None:
            info[key] = str(params["OPTIONS"][key])
    return {k: v for k, v in info.items() if v is not None}


def pool_size() -> int:
    return max(1, int(getattr(settings, "DB_ASYNC_POOL_SIZE", 8)))


def borrow_timeout() -> float:
    """How long a batch waits for a connection of the loop's pool before it fails as an outage."""
    return float(getattr(settings, "DB_ASYNC_BORROW_TIMEOUT_S", 10.0))


class PoolTimeout(OperationalError):
    """No connection of the loop's pool was free in time: to callers, the database is not
    reachable now (chargers.plumbing.journal.is_outage), never a wait without end."""


class LoopPool:
    """A bounded pool of autocommit AsyncConnections of one event loop.

    At most `size` connections are open; a borrower waits for one when all are lent. Written
    here rather than psycopg_pool's AsyncConnectionPool because tests run many event loops in
    one process: a pool whose loop is gone is dropped synchronously (`discard_all`).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.loop = asyncio.get_running_loop()
        self.opened = 0  # connections open, idle or lent
        self.peak = 0
        self.waiting = 0  # borrowers waiting for a connection (the metrics' gauge)
        self._idle: list[tuple[Any, float]] = []  # (connection, idle since), newest last
        self._freed = asyncio.Condition()
        self._reaper: asyncio.TimerHandle | None = None

    async def borrow(self) -> Any:
        """A connection of the pool, within `borrow_timeout()` seconds or `PoolTimeout`.

        Every connection counted in `opened` is idle, lent, or being opened or tested by one
        borrower; one that fails its test, or whose borrower is cancelled meanwhile, is closed
        and uncounted. (An uncounted drop once leaked the pool away in a storm: the health
        test timed out on a busy loop, `opened` stayed at the size, and every later borrower
        waited for a connection that no longer existed.) The test runs outside the lock, so
        one slow test does not hold up the other borrowers."""
        try:
            async with asyncio.timeout(borrow_timeout()):
                return await self._borrow()
        except TimeoutError:
            raise PoolTimeout(
                f"no database connection within {borrow_timeout():g} s "
                f"({self.opened} of {self.size} open)"
            ) from None

    async def _borrow(self) -> Any:
        while True:
            conn, since = await self._take_or_reserve()
            if conn is None:  # a slot reserved: open a new connection
                try:
                    return await _connect()
                except GeneratorExit:
                    self.opened -= 1  # closed by the collector: nothing may be awaited
                    raise
                except BaseException:
                    await asyncio.shield(self._give_back(None))
                    raise
            try:
                healthy = await _healthy(conn, time.monotonic() - since)
            except BaseException as exc:  # cancelled (or timed out) while testing it
                self._drop(conn)
                if isinstance(exc, GeneratorExit):
                    self.opened -= 1  # closed by the collector: nothing may be awaited
                    raise
                await asyncio.shield(self._give_back(None))
                raise
            if healthy:
                return conn
            self._drop(conn)
            await self._give_back(None)

    async def _take_or_reserve(self) -> tuple[Any, float]:
        """An idle connection (and since when), or (None, 0) with a slot reserved for a new one."""
        async with self._freed:
            while not self._idle and self.opened >= self.size:
                self.waiting += 1
                try:
                    await self._freed.wait()
                finally:
                    self.waiting -= 1
            if self._idle:
                return self._idle.pop()
            self.opened += 1
            self.peak = max(self.peak, self.opened)
            return None, 0.0

    async def give_back(self, conn: Any, *, broken: bool) -> None:
        """Return a lent connection; a broken one (or one left in a transaction) is closed."""
        from psycopg import pq

        if broken or conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self._drop(conn)
            conn = None
        await self._give_back(conn)

    async def _give_back(self, conn: Any) -> None:
        async with self._freed:
            if conn is None:
                self.opened -= 1
            else:
                self._idle.append((conn, time.monotonic()))
                if self._reaper is None:
                    self._reaper = self.loop.call_later(MAX_IDLE_S, self._reap)
            self._freed.notify()

    def _reap(self) -> None:
        """Close connections idle for MAX_IDLE_S, all but the newest: a quiet process holds one."""
        self._reaper = None
        now = time.monotonic()
        for item in [item for item in self._idle[:-1] if now - item[1] >= MAX_IDLE_S]:
            self._idle.remove(item)
            self._drop(item[0])
            self.opened -= 1
        if len(self._idle) > 1:
            self._reaper = self.loop.call_later(MAX_IDLE_S, self._reap)

    def discard_all(self) -> None:
        """Drop every idle connection without the loop (it may be gone)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._drop(conn)
        self.opened = 0
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    @staticmethod
    def _drop(conn: Any) -> None:
        """Close a connection; synchronous, so it works when its event loop is gone."""
        if not conn.closed:
            try:
                conn.pgconn.finish()
            except Exception:
                pass


async def _connect() -> Any:
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"{getattr(settings, 'DB_APPLICATION_NAME', 'evportal')}-ocpp"
    info = make_conninfo("", **conninfo(name))
    conn = await psycopg.AsyncConnection.connect(
        info,
        autocommit=True,
        # PgBouncer in transaction mode cannot keep a prepared statement for the next one.
        prepare_threshold=None if getattr(settings, "PGBOUNCER_TRANSACTION_POOLING", False) else 5,
    )
    await conn.execute("SET TIME ZONE 'UTC'")  # as Django's connections: datetimes in UTC
    return conn


async def _healthy(conn: Any, idle_for: float) -> bool:
    """Whether an idle connection can be lent. Idle, nothing should arrive on its socket: data
    or end-of-file there is the server's goodbye (terminated backend, shutdown), found without
    a round trip; a connection idle for a while gets an empty query (a silent network cut)."""
    from psycopg import pq

    if conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    if not readable and idle_for < CHECK_IDLE_S:
        return True
    try:
        await asyncio.wait_for(conn.execute(""), timeout=5)
    except Exception:
        return False
    return True


_pool: LoopPool | None = None


@dataclass(frozen=True)
class PoolStats:
    size: int
    opened: int
    idle: int
    waiting: int


def pool_stats() -> PoolStats | None:
    """The current loop pool's figures (backoffice.metrics), None before any batch made one.
    Read from any thread: a few integers, possibly one batch old."""
    pool = _pool
    if pool is None:
        return None
    return PoolStats(pool.size, pool.opened, len(pool._idle), pool.waiting)


def loop_pool() -> LoopPool:
    """The running event loop's pool (a new one in a new loop: tests run many)."""
    global _pool
    loop = asyncio.get_running_loop()
    if _pool is None or _pool.loop is not loop:
        if _pool is not None:
            _pool.discard_all()
        _pool = LoopPool(pool_size())
    return _pool


class LoopConnection:
    """One writer's access to the loop's pool: `use()` lends it a connection for one batch.

    Two batches of one writer take turns. A batch that fails gives its connection up (its state
    is unknown), so the retry starts from a healthy one.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def use(self) -> _Lent:
        """A connection of the loop's pool, for one batch; dropped if the batch fails."""
        return _Lent(self)

    def close(self) -> None:
        """The writer is idle, or its event loop is gone. The pool closes its own idle
        connections (MAX_IDLE_S); one left behind by a finished loop is dropped here,
        synchronously (that loop runs nothing any more)."""
        pool = _pool
        if pool is not None and _running_loop() is not pool.loop:
            pool.discard_all()


class _Lent:
    """`async with connection.use() as conn`: one batch's loan of a pooled connection.

    A class rather than an async generator: a loop that ends with a batch pending leaves its
    coroutine to the garbage collector, which closes it (GeneratorExit) in whatever code it
    interrupted. An async generator closed there could be finalized before the batch and then
    made contextlib raise "generator didn't stop after athrow()", logged with a traceback in
    the middle of someone else's work (once pytest's reporting, once an `ast.parse`). Here the
    exit of a closed batch awaits nothing: the connection goes with that loop's pool.
    """

    def __init__(self, owner: LoopConnection) -> None:
        self.owner = owner
        self.pool: LoopPool | None = None
        self.conn: Any = None
        self.lock: asyncio.Lock | None = None

    async def __aenter__(self) -> Any:
        owner = self.owner
        loop = asyncio.get_running_loop()
        if owner._lock is None or owner._lock_loop is not loop:
            owner._lock, owner._lock_loop = asyncio.Lock(), loop
        lock = owner._lock
        await lock.acquire()
        try:
            self.pool = loop_pool()
            self.conn = await self.pool.borrow()
        except BaseException:
            lock.release()
            raise
        self.lock = lock
        return self.conn

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        assert self.pool is not None and self.lock is not None
        try:
            if kind is GeneratorExit:
                return False  # closed by the collector: nothing may be awaited
            # Shielded: a batch cancelled here must still return its connection to the pool.
            await asyncio.shield(self.pool.give_back(self.conn, broken=kind is not None))
        finally:
            self.lock.release()
        return False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def insert_sql(model: Any, rows: int) -> tuple[str, list[Any]]:
    """A plain multi-row INSERT of `model` for `rows` rows, and the fields in its column order."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(f'"{f.column}"' for f in fields)
    return f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ' + ", ".join(
        [one] * rows
    ), fields


def insert_values(objs: list[Any], fields: list[Any]) -> list[Any]:
    """The objects' column values as the ORM's insert prepares them (auto_now_add, JSON)."""
    connection = connections["default"]
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
