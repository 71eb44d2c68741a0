"""backoffice.async_pg: the event loop's own PostgreSQL connections for the batched writers."""

import asyncio

import pytest
from django.db import connection

from backoffice import async_pg
from chargers.models import Charger
from tests.factories import ChargerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the async connections are PostgreSQL's"
    ),
]


async def test_batches_sharing_a_connection_take_turns_instead_of_interleaving_transactions():
    shared = async_pg.LoopConnection("test-shared")
    order: list[str] = []

    async def batch(name: str) -> None:
        async with shared.use() as conn, conn.transaction():
            order.append(f"{name} begins")
            await conn.execute("SELECT pg_sleep(0.05)")
            order.append(f"{name} commits")

    await asyncio.gather(batch("a"), batch("b"))
    assert order == ["a begins", "a commits", "b begins", "b commits"]
    shared.close()


async def test_a_failed_batch_drops_its_connection_and_the_next_one_starts_clean(prop):
    charger = await asyncio.to_thread(ChargerFactory, station_id="CP-ASYNC", property=prop)
    shared = async_pg.LoopConnection("test-failing")
    with pytest.raises(Exception, match="division by zero"):
        async with shared.use() as conn, conn.transaction():
            await conn.execute(
                "UPDATE chargers_charger SET name = 'half-written' WHERE id = %s", [charger.pk]
            )
            await conn.execute("SELECT 1 / 0")
    async with shared.use() as conn:
        cursor = await conn.execute(
            "SELECT name, now()::text FROM chargers_charger WHERE id = %s", [charger.pk]
        )
        name, now = await cursor.fetchone()
    assert name != "half-written"  # rolled back
    assert now.endswith("+00")  # UTC, like Django's own connections
    assert (await Charger.objects.aget(pk=charger.pk)).name == name
    shared.close()
