"""backoffice.db's database threads share Django's connection pool with web requests.

An idle thread must not keep a connection: the pool is the process's bound (README,
"Connections"), and eight idle threads holding theirs left requests four.
"""

import asyncio

import pytest
from django.conf import settings
from django.db import connection, connections

from backoffice import db
from chargers.models import Charger

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's"),
    # CI's PostgreSQL pass runs the test process without the pool and this file again with it.
    pytest.mark.skipif(not settings.DB_POOL, reason="DB_POOL=false in this test process"),
]


def _held() -> int:
    stats = connections["default"].pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def _slow_count() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.02)")
    return Charger.objects.count()


async def test_idle_database_threads_give_their_connections_back():
    await db.run(_slow_count)
    held_before = _held()
    busy = await asyncio.gather(*(db.run(_slow_count) for _ in range(40)))
    assert busy == [0] * 40
    assert _held() == held_before
