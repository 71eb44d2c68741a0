"""One psycopg AsyncConnection in the event loop, for the hot batched writes of the OCPP path.

ORM work runs on database threads (backoffice.db), and a thread that formats thousands of rows
holds the GIL while the event loop waits for it after every socket write (the convoy the
message log escaped, docs/performance.md). The batched writers that carry most of a busy
fleet's rows therefore write with COPY and a few plain statements on an async connection in
the loop instead; psycopg formats the rows in C and never blocks the loop on I/O.

Each writer owns one `LoopConnection` (writers that run side by side would wait for each other
on a shared one); `use()` holds it for one batch, so even a shared one is never used by two
batches at once (psycopg refuses interleaved transactions on one connection). PostgreSQL only; on SQLite (`make run`, part of the tests) the writers keep their ORM path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.db import connections


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


class LoopConnection:
    """A lazily opened autocommit AsyncConnection bound to the running event loop.

    `get()` opens it on first use (or after `close()`, a failure, or in a new event loop:
    tests run many loops in one process). A writer calls `close()` when a batch fails, so the
    retry starts from a fresh connection rather than one in an unknown state.
    """

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """The connection, for one batch; dropped if the batch fails (its state is unknown)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            conn = await self.get()
            try:
                yield conn
            except BaseException:
                self.close()
                raise

    async def get(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        loop = asyncio.get_running_loop()
        if self._conn is not None and not self._conn.closed and self._loop is loop:
            return self._conn
        self.close()
        info = make_conninfo("", **conninfo(self.application_name))
        self._conn = await psycopg.AsyncConnection.connect(info, autocommit=True)
        await self._conn.execute(
            "SET TIME ZONE 'UTC'"
        )  # as Django's connections: datetimes come back in UTC
        self._loop = loop
        return self._conn

    def close(self) -> None:
        """Drop the connection; synchronous, so it works when its event loop is gone."""
        conn, self._conn, self._loop = self._conn, None, None
        if conn is not None and not conn.closed:
            try:
                conn.pgconn.finish()
            except Exception:
                pass


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
