"""Run ORM work from async code on a small pool of database threads.

Channels' database_sync_to_async runs every ORM call of a process on one shared
thread, so one slow query stalls every charger. The websocket path uses this pool
instead: several threads on PostgreSQL (each takes a connection from Django's pool while it
has work), exactly one on SQLite, which allows a single writer.
"""

import asyncio
import atexit
import functools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections

T = TypeVar("T")


class _ReleasingQueue(queue.SimpleQueue):
    """The executor's work queue. A worker thread that finds no work waiting gives its
    connection back to Django's pool before it waits: an idle thread would otherwise hold it for
    good, and web requests share the same bounded pool. Under load a thread finds work at once
    and keeps its connection from one call to the next (the pool checks each one it hands out).
    (Deciding it only when a call ends raced: a thread that saw work waiting kept its connection,
    another took the work, and the first went idle holding it.)"""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if block:
            try:
                return super().get(block=False)
            except queue.Empty:
                if settings.DB_POOL:
                    connections["default"].close()
        return super().get(block, timeout)


class _Executor(ThreadPoolExecutor):
    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._work_queue = _ReleasingQueue()  # before any thread starts (they start on submit)


_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = _Executor(
                    max_workers=max(1, settings.DB_EXECUTOR_THREADS), thread_name_prefix="ocpp-db"
                )
    return _executor


_local = threading.local()
CHECK_EVERY_S = 1.0


def _call(func: Callable[..., T], args: tuple, kwargs: dict) -> T:
    # Drop connections that are broken or past CONN_MAX_AGE, like Django does per request,
    # but at most once a second per thread: with CONN_HEALTH_CHECKS every check costs a
    # "SELECT 1" round trip on the next query, which doubled the queries of a StartTransaction.
    now = time.monotonic()
    if now - getattr(_local, "checked", 0.0) >= CHECK_EVERY_S:
        close_old_connections()
        _local.checked = now
    try:
        result = func(*args, **kwargs)
    except Exception:
        close_old_connections()  # a broken connection is dropped right away
        _local.checked = time.monotonic()
        raise
    executor = _executor
    if settings.DB_POOL and executor is not None and executor._work_queue.empty():
        # Nothing waiting: give the connection back before the caller hears the result (the
        # queue's get does it too, for a thread that saw work waiting and then found none).
        connections["default"].close()
    return result


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous ORM function in the database pool and return its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_executor(), functools.partial(_call, func, args, kwargs))


def shutdown() -> None:
    """Close the pool and its connections (tests, process exit)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    try:
        futures = [executor.submit(connections.close_all) for _ in range(executor._max_workers)]
        for future in futures:
            future.result(timeout=5)
    except Exception:  # best effort: at interpreter exit the pool may already be gone
        pass
    executor.shutdown(wait=True)


atexit.register(shutdown)


def update_many(
    model: Any, set_fields: list[str], where_fields: list[str], rows: list[tuple]
) -> int:
    """`UPDATE <model> SET <set_fields> WHERE <where_fields>` once per row (set values first, then
    where values), as one executemany: on PostgreSQL a single pipelined round trip, and none of
    the per-object expression building of QuerySet.bulk_update. Returns the rows changed (the
    sum over statements where the driver reports it)."""
    if not rows:
        return 0
    connection = connections["default"]
    meta = model._meta
    fields = [meta.get_field(name) for name in (*set_fields, *where_fields)]
    assignments = ", ".join(
        f"{connection.ops.quote_name(f.column)} = %s" for f in fields[: len(set_fields)]
    )
    conditions = " AND ".join(
        f"{connection.ops.quote_name(f.column)} = %s" for f in fields[len(set_fields) :]
    )
    sql = f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments} WHERE {conditions}"
    params = [
        [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, row, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return max(cursor.rowcount, 0)
