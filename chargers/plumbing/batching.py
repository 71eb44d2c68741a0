"""Group commit for the connection path: many small database operations, one round trip.

A restart storm brings thousands of chargers back at once, each with a lookup, a "connected"
write, a BootNotification and a few StatusNotifications. Run one by one, each is a hop into the
database pool and a round trip (py-spy, docs/performance.md: most of a storm's server time).
A `Coalescer` lets every caller submit its own item and await its own result, while one
batch at a time runs all items waiting at that moment in a single call of `apply(items)`.
With one caller it costs what a direct call costs; under a storm, N callers cost about N /
batch-size round trips, and nobody waits for a timer.

`apply` runs in the database pool (backoffice.db) and returns one result per item, in order.
If a batch fails for a reason other than an outage, its items are retried one by one, so one
bad item only fails its own caller; an outage fails them all at once (callers journal). A
deadlock (two batches locking the same rows in different orders) runs the batch again.

No caller waits without end (issue 48: a storm's handshakes once sat for minutes on a batch
that could not run): a batch that breaks in any way settles every one of its callers with the
error, and a caller whose result has not come within OCPP_BATCH_WAIT_S gets `BatchTimeout`,
which callers take for an outage (the frame is journaled, the handshake refused with 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

from django.conf import settings
from django.db import OperationalError

from backoffice import async_pg, db
from chargers.plumbing.journal import TRANSIENT_RETRIES, is_outage, is_transient

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500


class BatchTimeout(OperationalError):
    """A caller's batch did not finish within OCPP_BATCH_WAIT_S: to the caller, an outage."""


def wait_bound() -> float:
    return float(getattr(settings, "OCPP_BATCH_WAIT_S", 30.0))


class Coalescer(Generic[Item, Result]):
    """`apply` is synchronous ORM code run in the database pool; `apply_async` (instead) is a
    coroutine function run on the event loop, for batches of network calls (Redis)."""

    def __init__(
        self,
        name: str,
        apply: Callable[[list[Item]], Sequence[Result]] | None = None,
        max_batch: int = MAX_BATCH,
        *,
        apply_async: Callable[[list[Item]], Awaitable[Sequence[Result]]] | None = None,
    ) -> None:
        assert (apply is None) != (apply_async is None), "give apply or apply_async"
        self.name = name
        self.apply = apply
        self.apply_async = apply_async
        self.max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # for tests and the bench: how many round trips the items took

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one carries over
            self._loop, self._waiting, self._task = loop, [], None
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name=f"coalesce-{self.name}")
        bound = wait_bound()
        try:
            async with asyncio.timeout(bound):
                return await future  # a timeout cancels it: its batch skips or ignores it
        except TimeoutError:
            if future.cancelled():
                raise BatchTimeout(f"{self.name}: no result within {bound:g} s") from None
            raise  # the batch itself raised TimeoutError: the caller's own error

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._waiting:
                batch, self._waiting = (
                    self._waiting[: self.max_batch],
                    self._waiting[self.max_batch :],
                )
                batch = [
                    (item, future) for item, future in batch if not future.done()
                ]  # callers gone
                if batch:
                    await self._run_bounded(batch)
        except asyncio.CancelledError:  # the loop is closing: nobody may wait forever
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise

    async def _run_bounded(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Run one batch for at most the wait bound, so one stuck batch (a lock, a lost
        connection) holds up neither its callers nor the batches after it."""
        bound = wait_bound()
        try:
            async with asyncio.timeout(bound):
                await self._run(batch)
            return
        except TimeoutError:
            error: Exception = BatchTimeout(f"{self.name}: batch not done within {bound:g} s")
        except Exception as exc:  # a bug, a wrong number of results: tell them all
            error = exc
        logger.error("%s batch of %d failed: %r", self.name, len(batch), error)
        for _, future in batch:
            _settle(future, exc=error)

    async def _run(
        self, batch: list[tuple[Item, asyncio.Future[Result]]], attempt: int = 0
    ) -> None:
        self.batches += 1
        try:
            items = [item for item, _ in batch]
            if self.apply_async is not None:
                results = await self.apply_async(items)
            else:
                assert self.apply is not None
                results = await db.run(self.apply, items)
        except Exception as exc:
            if is_transient(exc) and attempt < TRANSIENT_RETRIES:
                logger.info(
                    "%s batch of %d rolled back (%s); running it again", self.name, len(batch), exc
                )
                await self._run(batch, attempt + 1)
                return
            if len(batch) == 1 or is_outage(exc):
                for _, future in batch:
                    _settle(future, exc=exc)
                return
            logger.warning(
                "%s batch of %d failed (%s); retrying them one by one", self.name, len(batch), exc
            )
            for one in batch:
                await self._run([one])
            return
        if len(results) != len(batch):  # whose result is whose is unknown: nobody gets one
            raise ValueError(f"{self.name}: {len(results)} results for {len(batch)} items")
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def on_pg_or_pool(
    on_pg: Callable[[list[Item]], Awaitable[Sequence[Result]]],
    on_pool: Callable[[list[Item]], Sequence[Result]],
) -> Callable[[list[Item]], Awaitable[Sequence[Result]]]:
    """The batch function of a coalescer: `on_pg` on the event loop's own PostgreSQL connection
    (backoffice.async_pg), `on_pool` (ORM code, in the database pool) elsewhere."""

    async def apply(items: list[Item]) -> Sequence[Result]:
        if async_pg.enabled():
            return await on_pg(items)
        return await db.run(on_pool, items)

    return apply


async def the_rest_one_by_one(
    done: Mapping[int, Result], items: list[Item], one: Callable[[Item], Result]
) -> list[Result]:
    """A batch's results in order: those the batch statement gave (`done`, by index), the other
    items through `one` (the ORM path) on the database pool, one after another."""
    results: list[Result] = []
    for index, item in enumerate(items):
        results.append(done[index] if index in done else await db.run(one, item))
    return results


def _settle(
    future: asyncio.Future, *, result: object = None, exc: BaseException | None = None
) -> None:
    if future.done():  # the caller was cancelled (its charger left): nobody to tell
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
