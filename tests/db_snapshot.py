"""Every row of many tables, read again only where a table's content changed.

The tenant and write-rule checks compare every row of the project's tables before and after a
request ("no row of another tenant changed"). Reading ~170 tables into Python twice per request
was most of their time. On PostgreSQL one statement now gives each table's row count and an md5
of its rows' text (`t::text` covers every column); a table whose digest is the one last read
reuses the rows read then, any other is read again in full. The comparison the tests make is the
same: a digest equal to the cached one means the same rows (a changed table can only ever cost a
re-read). The cache is keyed by content, so it is correct across tests and transactions; SQLite
has no md5 and reads every table every time, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection
from django.db.models import Model

Reader = Callable[[type[Model]], Any]

# (reader's name, model label) -> (digest, what the reader returned for that content)
_cache: dict[tuple[str, str], tuple[tuple[int, str], Any]] = {}


def digests(models: list[type[Model]]) -> dict[str, tuple[int, str]] | None:
    if connection.vendor != "postgresql" or not models:
        return None
    parts = []
    params: list[str] = []
    for model in models:
        table = connection.ops.quote_name(model._meta.db_table)
        parts.append(
            "SELECT %s, count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
            f" FROM {table} t"
        )
        params.append(model._meta.label)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return {label: (count, digest) for label, count, digest in cursor.fetchall()}


def take(models: Iterable[type[Model]], read: Reader) -> dict[str, Any]:
    """{model label: read(model)} for every model, `read` called only for tables that changed
    since it last read them (every table on SQLite)."""
    models = list(models)
    found = digests(models)
    state = {}
    for model in models:
        label = model._meta.label
        key = (f"{read.__module__}.{read.__qualname__}", label)
        digest = found[label] if found is not None else None
        cached = _cache.get(key)
        if digest is not None and cached is not None and cached[0] == digest:
            state[label] = cached[1]
            continue
        value = read(model)
        # Cached only if nothing wrote the table between its digest and its read (a server or
        # thread of the test writing meanwhile): those rows are then the digest's rows.
        if digest is not None and (digests([model]) or {}).get(label) == digest:
            _cache[key] = (digest, value)
        state[label] = value
    return state
