"""A storm's handshakes are bounded and its failures logged once with a count (issue 48)."""

import asyncio
import logging

import pytest
from django.db import connection

from backoffice import async_pg
from chargers.connections import handshake
from chargers.plumbing.failures import FailureLog
from tests.chargers.security_helpers import scope

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the lookup's pool is PostgreSQL's")
async def test_handshakes_that_cannot_be_decided_in_time_are_refused_503_and_logged_once(
    settings, caplog
):
    settings.DB_ASYNC_POOL_SIZE = 1
    settings.DB_ASYNC_BORROW_TIMEOUT_S = 600  # the lookups wait: only the handshake bound acts
    settings.OCPP_BATCH_WAIT_S = 600
    settings.OCPP_HANDSHAKE_TIMEOUT_S = 0.05
    holder = async_pg.LoopConnection("test-holder")
    release = asyncio.Event()

    async def hold() -> None:
        async with holder.use():
            await release.wait()

    task = asyncio.create_task(hold())
    await asyncio.sleep(0)
    handshake.failures.flush()
    caplog.clear()

    async def status(n: int) -> tuple[int, list]:
        try:
            await handshake.admit(scope(f"CP-STORM-{n}"), f"CP-STORM-{n}")
        except handshake.Refused as refused:
            return refused.status, refused.headers
        return 101, []

    with caplog.at_level(logging.INFO, logger="chargers.security"):
        async with asyncio.timeout(30):  # the guard of a hang, not a measure
            answers = await asyncio.gather(*(status(n) for n in range(20)))
        handshake.failures.flush()
    release.set()
    await task
    holder.close()
    assert answers == [(503, [(b"retry-after", b"30")])] * 20
    told = [r.getMessage() for r in caplog.records if r.name == "chargers.security"]
    assert len(told) == 2, told  # the first one, then a count: not a line per charger
    assert "CP-STORM-0" in told[0] and "not decided" in told[0]
    assert told[1].startswith("handshake timeout: 19 more of the same in ")


def test_a_failure_kind_is_logged_with_its_traceback_once_per_window_then_counted(caplog):
    now = [0.0]
    failures = FailureLog(logging.getLogger("test.failures"), window_s=60, clock=lambda: now[0])
    error = OSError("database unreachable")
    with caplog.at_level(logging.INFO, logger="test.failures"):
        for n in range(1000):
            failures.failed("lookup", "lookup of %s failed", f"CP-{n}", exc=error)
        failures.failed("timeout", "handshake of %s timed out", "CP-X")
        now[0] = 61.0
        failures.failed("lookup", "lookup of %s failed", "CP-LATE", exc=error)
        failures.flush()
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("lookup of CP-0 failed", True),
        ("handshake of CP-X timed out", False),
        ("lookup: 999 more of the same in 61 s", False),
        ("lookup of CP-LATE failed", True),
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the lookup's pool is PostgreSQL's")
async def test_a_stop_refuses_the_handshakes_still_being_decided_with_503_at_once(settings):
    from chargers.connections import consumer

    settings.DB_ASYNC_POOL_SIZE = 1
    settings.DB_ASYNC_BORROW_TIMEOUT_S = 600
    settings.OCPP_BATCH_WAIT_S = 600
    settings.OCPP_HANDSHAKE_TIMEOUT_S = 600  # only the stop can end them
    holder = async_pg.LoopConnection("test-holder")
    release, held = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with holder.use():
            held.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await held.wait()

    async def status(n: int) -> int:
        try:
            await handshake.admit(scope(f"CP-STOP-{n}"), f"CP-STOP-{n}")
        except handshake.Refused as refused:
            return refused.status
        return 101

    pending = [asyncio.create_task(status(n)) for n in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)  # each is now waiting for its lookup
    async with asyncio.timeout(30):  # the guard of a hang, not a measure
        await consumer.drain(timeout_s=1)
        assert await asyncio.gather(*pending) == [503] * 5
        assert await status(99) == 503  # a handshake arriving while stopping: refused at once
    release.set()
    await task
    holder.close()
