"""Once-per-charger work after a boot (follow-ups), off the frame path and bounded across the fleet.

A boot is answered first; what a charger needs once (the energy-reporting check of a 1.6
charger, the base report and measurand settings of a 2.0.1 one) is queued here and run by at
most OCPP_FOLLOW_UP_CONCURRENCY workers per process, started at most OCPP_FOLLOW_UP_RATE per
second (a token bucket; burst = the concurrency). A restart storm of 10,000 boots is then a queue
drained at a steady pace, not 10,000 conversations at once competing with the chargers' own
frames (issue 48 item 2: within 15 s the server had answered 247 of its 1,000 post-boot
GetConfiguration calls, and the closed loop ran at a quarter of its speed).

A charger's frames never wait for its follow-up: they are separate tasks, and a charger that
does not answer costs its worker the call timeout, nothing more. A charger that boots again while
its follow-up is still queued keeps one place in the queue (the newer job replaces the older).
Workers exist only while there is work: an idle process holds no task.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from django.conf import settings

from chargers.plumbing.background import spawn
from chargers.plumbing.failures import FailureLog

logger = logging.getLogger(__name__)
_failures = FailureLog(logger)

Job = Callable[[], Awaitable[None]]


class FollowUps:
    """A queue of follow-ups, keyed (one per charger and kind), with bounded workers and a
    token bucket for their start rate. One per event loop (`queue()`)."""

    def __init__(self, concurrency: int, rate: float) -> None:
        self.concurrency = max(1, concurrency)
        self.rate = rate  # starts per second; 0: only the concurrency bounds them
        self._pending: OrderedDict[Hashable, Job] = OrderedDict()
        self._workers = 0
        self._tokens = float(self.concurrency)
        self._stamp: float | None = None
        self.started = 0  # jobs begun in this process (the bench and tests read them)
        self.running = 0
        self.most_running = 0

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue `job`; a job still waiting under the same key is replaced, keeping its place."""
        self._pending[key] = job
        if self._workers < min(self.concurrency, len(self._pending) + self.running):
            self._workers += 1
            spawn(self._work(), "Charger follow-ups")

    def pending(self) -> int:
        return len(self._pending)

    async def _work(self) -> None:
        try:
            while self._pending:
                await self._token()
                if not self._pending:
                    break
                key, job = self._pending.popitem(last=False)
                self.started += 1
                self.running += 1
                self.most_running = max(self.most_running, self.running)
                try:
                    await job()
                except Exception as exc:  # one kind of failure logged once, then counted
                    _failures.failed(
                        "follow-up failed", "A charger follow-up (%s) failed", key, exc=exc
                    )
                finally:
                    self.running -= 1
        finally:
            self._workers -= 1

    async def _token(self) -> None:
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._stamp is not None:
                self._tokens = min(
                    float(self.concurrency), self._tokens + (now - self._stamp) * self.rate
                )
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FollowUps] = (
    weakref.WeakKeyDictionary()
)


def queue() -> FollowUps:
    """This event loop's follow-up queue (settings read when it is first used)."""
    loop = asyncio.get_running_loop()
    found = _queues.get(loop)
    if found is None:
        found = _queues[loop] = FollowUps(
            int(getattr(settings, "OCPP_FOLLOW_UP_CONCURRENCY", 16)),
            float(getattr(settings, "OCPP_FOLLOW_UP_RATE", 20.0)),
        )
    return found


def submit(key: Hashable, job: Job) -> None:
    queue().submit(key, job)
