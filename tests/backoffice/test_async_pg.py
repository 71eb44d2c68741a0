"""backoffice.async_pg: the event loop's own PostgreSQL connections for the batched writers."""

import asyncio
import gc
import sys

import psycopg
import pytest
from django.db import connection

from backoffice import async_pg
from chargers.models import Charger
from chargers.plumbing.journal import is_outage
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


async def test_writers_side_by_side_never_open_more_than_the_pool_size(settings):
    settings.DB_ASYNC_POOL_SIZE = 3
    writers = [async_pg.LoopConnection(f"test-writer-{n}") for n in range(8)]
    pids: set[int] = set()

    async def batch(writer: async_pg.LoopConnection) -> None:
        async with writer.use() as conn:
            cursor = await conn.execute("SELECT pg_backend_pid(), pg_sleep(0.05)")
            pids.add((await cursor.fetchone())[0])

    await asyncio.gather(*(batch(writer) for writer in writers for _ in range(3)))
    pool = async_pg.loop_pool()
    assert pool.size == 3
    assert pool.peak == 3  # all eight writers had work: the pool was full, never more
    assert len(pids) <= 3


async def test_a_connection_terminated_while_idle_is_replaced_before_the_next_batch():
    writer = async_pg.LoopConnection("test-terminated")
    async with writer.use() as conn:
        old_pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
    # What an outage or a database restart does to a pooled connection: the server ends it.
    async with await psycopg.AsyncConnection.connect(
        **async_pg.conninfo("test-terminator"), autocommit=True
    ) as killer:
        await killer.execute("SELECT pg_terminate_backend(%s)", [old_pid])
        for _ in range(50):  # until the backend is gone
            cursor = await killer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [old_pid]
            )
            if (await cursor.fetchone())[0] == 0:
                break
            await asyncio.sleep(0.02)
    async with writer.use() as conn:  # right away: no idle time for the timed check
        new_pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
    assert new_pid != old_pid


async def test_behind_pgbouncer_in_transaction_mode_no_statement_is_prepared(settings):
    settings.PGBOUNCER_TRANSACTION_POOLING = True
    async with async_pg.LoopConnection("test-pgbouncer").use() as conn:
        assert conn.prepare_threshold is None  # the next transaction may be on another backend


async def _terminate(pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(
        **async_pg.conninfo("test-terminator"), autocommit=True
    ) as killer:
        await killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(50):  # until the backend is gone
            cursor = await killer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]
            )
            if (await cursor.fetchone())[0] == 0:
                return
            await asyncio.sleep(0.02)


async def test_a_dead_idle_connection_gives_its_place_back_so_the_pool_never_leaks_away(settings):
    # The restart-storm hang (issue 48): each idle connection found dead was closed but still
    # counted, until the pool believed itself full and every batch waited for good.
    settings.DB_ASYNC_POOL_SIZE = 1
    writer = async_pg.LoopConnection("test-leak")
    for _ in range(3):
        async with writer.use() as conn:
            pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
        await _terminate(pid)
    async with asyncio.timeout(30):  # the guard of a hang, not a measure: it takes milliseconds
        async with writer.use() as conn:
            assert (await (await conn.execute("SELECT 1")).fetchone())[0] == 1
    assert async_pg.loop_pool().opened == 1
    writer.close()


async def test_a_pool_with_every_connection_lent_fails_a_borrower_in_time_as_an_outage(settings):
    settings.DB_ASYNC_POOL_SIZE = 1
    settings.DB_ASYNC_BORROW_TIMEOUT_S = 0.05
    holder, waiter = async_pg.LoopConnection("test-holder"), async_pg.LoopConnection("test-waiter")
    release, held = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with holder.use():
            held.set()
            await release.wait()

    task = asyncio.create_task(hold())
    async with asyncio.timeout(30):  # the holder has the one connection before the waiter asks
        await held.wait()
    with pytest.raises(async_pg.PoolTimeout) as raised:
        async with asyncio.timeout(30):  # the guard of a hang
            async with waiter.use():
                pass
    assert is_outage(raised.value)  # its callers journal, as in any outage
    release.set()
    await task
    async with waiter.use() as conn:  # the connection came back and is lent again
        assert (await (await conn.execute("SELECT 1")).fetchone())[0] == 1
    assert async_pg.loop_pool().opened == 1
    holder.close()


async def test_a_batch_closed_without_running_on_awaits_nothing():
    """A loop that ends with a batch pending leaves its coroutine to the garbage collector,
    which closes it (GeneratorExit): awaiting then made contextlib raise "generator didn't stop
    after athrow()" inside whatever code the collector interrupted (once pytest's own reporting,
    which crashed a CI worker)."""
    shared = async_pg.LoopConnection("test-closed")
    inside = asyncio.Event()

    async def batch() -> None:
        async with shared.use() as conn:
            await conn.execute("SELECT 1")
            inside.set()
            await asyncio.Event().wait()  # never set: pending when its loop would end

    coro = batch()
    task = asyncio.get_running_loop().create_task(coro)
    await inside.wait()
    # What the collector does to a pending task's coroutine whose loop is gone.
    task._log_destroy_pending = False  # asyncio: no "Task was destroyed" log for this one
    coro.close()  # raises RuntimeError when the context manager awaits on GeneratorExit
    shared.close()


def test_a_batch_whose_loop_is_gone_is_collected_without_a_word():
    """The collector closes a pending batch of a loop that has ended, in whatever code it
    interrupts, and finalizes its parts in its own order: nothing may be raised there (its
    traceback, logged inside an ast.parse, once failed a CI run)."""
    gc.collect()  # what earlier tests left is collected before, not counted here
    shared = async_pg.LoopConnection("test-gone")
    loop = asyncio.new_event_loop()
    inside = asyncio.Event()

    async def batch() -> None:
        async with shared.use() as conn:
            await conn.execute("SELECT 1")
            inside.set()
            await asyncio.Event().wait()

    task = loop.create_task(batch())
    task._log_destroy_pending = False
    loop.run_until_complete(inside.wait())
    loop.close()
    unraisable: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        del task
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not [u for u in unraisable if "batch" in repr(u.object)]
    assert shared._lock is not None and not shared._lock.locked()  # the writer may go on
    shared.close()
