"""Every row of many tables, read again only where a table's content changed.

The tenant and write-rule checks compare every row of the project's tables before and after a
request ("no row of another tenant changed"). Reading ~170 tables into Python twice per request
was most of their time. On PostgreSQL one statement now gives each table's row count and the sum
of a 64-bit hash of each row's text (`t::text` covers every column; `hashtextextended`, summed
as numeric, so no order and no sort: 2.1 ms a snapshot against 6.2 for an md5 of the sorted rows);
a table whose digest is the one last read reuses the rows read then, any other is read again in
full. The comparison the tests make is the
same: a digest equal to the cached one means the same rows (a changed table can only ever cost a
re-read). The cache is keyed by content, so it is correct across tests and transactions; SQLite
has no md5 and reads every table every time, as before.

The statement is prepared once per database connection (`PREPARE`, then `EXECUTE`): parsing and
planning ~130 `UNION ALL` parts took three quarters of its time (8.2 ms a snapshot, 1.9 ms
prepared, on a migrated database with two tenants' rows). A prepared statement belongs to the
session, not the transaction (a test's rollback keeps it), so it is remembered by the driver's
connection object and prepared again on a new connection. (What made the snapshots half of
PostgreSQL's CPU in a test run was a parallel plan: tests/parallel.py `_no_parallel_plans`.)
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection
from django.db.models import Model

Reader = Callable[[type[Model]], Any]

# (reader's name, model label) -> (digest, what the reader returned for that content)
_cache: dict[tuple[str, str], tuple[tuple[int, str], Any]] = {}

# The statements prepared on each driver connection (gone with it).
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_LABEL = re.compile(r"[A-Za-z0-9_.]+")


def digests(models: list[type[Model]]) -> dict[str, tuple[int, str]] | None:
    if connection.vendor != "postgresql" or not models:
        return None
    parts = []
    for model in models:
        label = model._meta.label
        assert _LABEL.fullmatch(label), label  # written into the statement as a literal
        table = connection.ops.quote_name(model._meta.db_table)
        parts.append(
            f"SELECT '{label}', count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text"
            f" FROM {table} t"
        )
    sql = " UNION ALL ".join(parts)
    name = "snapshot_" + hashlib.md5(sql.encode()).hexdigest()[:20]
    connection.ensure_connection()
    prepared = _prepared.setdefault(connection.connection, set())
    with connection.cursor() as cursor:
        if name not in prepared:
            cursor.execute(f"PREPARE {name} AS {sql}")
            prepared.add(name)
        cursor.execute(f"EXECUTE {name}")
        return {label: (count, digest) for label, count, digest in cursor.fetchall()}


def take(models: Iterable[type[Model]], read: Reader) -> dict[str, Any]:
    """{model label: read(model)} for every model, `read` called only for tables that changed
    since it last read them (every table on SQLite)."""
    models = list(models)
    reader = f"{read.__module__}.{read.__qualname__}"
    found = digests(models)
    state = {}
    read_now: dict[str, Any] = {}
    for model in models:
        label = model._meta.label
        digest = found[label] if found is not None else None
        cached = _cache.get((reader, label))
        if digest is not None and cached is not None and cached[0] == digest:
            state[label] = cached[1]
            continue
        state[label] = read_now[label] = read(model)
    if found is None or not read_now:
        return state
    # Cached only if nothing wrote the table between its digest and its read (a server or
    # thread of the test writing meanwhile): those rows are then the digest's rows. One
    # statement for the tables read alone (prepared too): usually one or two tables a request
    # wrote (its log), where the statement over every table cost as much as the first.
    again = digests([model for model in models if model._meta.label in read_now]) or {}
    for label, value in read_now.items():
        if again.get(label) == found[label]:
            _cache[(reader, label)] = (found[label], value)
    return state
