"""The check Django's psycopg pool runs on a connection before it hands it out.

Django gives its pool psycopg_pool's own check (`ConnectionPool.check_connection`, with
CONN_HEALTH_CHECKS): an empty-query round trip on every hand-out, so on every request and
database-thread call. And it finds one stale connection per try and then waits with backoff
(1 s, 2 s, 4 s...) before trying the next: after a database outage the pool held several dead
ones, and the first request timed out behind them (DB_POOL_TIMEOUT).

Ours asks the socket first: an idle connection should have nothing to read, so data or
end-of-file there is the server's goodbye (terminated backend, restart), found without a round
trip. A connection that passed a real check less than CHECK_EVERY_S ago and is quiet is handed
out as it is; otherwise it gets the empty query. The first dead connection found makes the pool
check all its idle ones at once, so one short wait replaces them all. Django has no setting for
the check (it passes its own), so it is put in place when the pool makes its first connection.
"""

from __future__ import annotations

import select
import time
import weakref
from typing import Any

from django.db.backends.signals import connection_created

CHECK_EVERY_S = 1.0
_checked: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def check_connection(conn: Any) -> None:
    """Raise if `conn` is unusable; then clear the pool's other dead ones."""
    from psycopg_pool import ConnectionPool

    now = time.monotonic()
    if now - _checked.get(conn, 0.0) < CHECK_EVERY_S and _quiet(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        _check_idle_connections()
        raise
    _checked[conn] = now


def _quiet(conn: Any) -> bool:
    """Whether nothing waits on the connection's socket (no goodbye from the server)."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except Exception:  # closed: no socket
        return False
    return not readable


def _check_idle_connections() -> None:
    from django.db import connections

    pool = connections["default"].pool  # type: ignore[attr-defined]
    if pool is not None:
        pool.check()


def _use_our_check(sender: Any, connection: Any, **kwargs: Any) -> None:
    pool = getattr(connection, "pool", None)
    # psycopg_pool keeps its check in `_check` (3.2+); only a pool made with one is changed.
    if pool is not None and getattr(pool, "_check", None) not in (None, check_connection):
        pool._check = check_connection


connection_created.connect(_use_our_check, dispatch_uid="portal.db_pool")
