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

Follow-ups also yield to the frame path: while this process used more than
OCPP_FOLLOW_UP_BUSY_CPU of a core over the last half second (its CPU time against the wall
clock), the bucket refills at OCPP_FOLLOW_UP_BUSY_RATE instead. A process that busy is answering
chargers' frames (a closed loop, a restart storm's boots), and one follow-up conversation costs
it about as much as 25 frames (a Command row created and completed, the answer stored); the
checks wait for the load to fall and never stop (the floor rate keeps them going under a load
that never ends). The event loop's own lag does not show it: under a closed loop of 1,000
chargers the loop's passes stay short while the process runs at 85 % of a core.
"""

from __future__ import annotations

import asyncio
import logging
import time
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

    BUSY_WINDOW_S = 0.5

    def __init__(
        self,
        concurrency: int,
        rate: float,
        busy_rate: float = 0.0,
        busy_cpu: float = 1.0,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.rate = rate  # starts per second; 0: only the concurrency bounds them
        # While the process used over busy_cpu of a core: busy_rate (0: no slowing).
        self.busy_rate = busy_rate if 0 < busy_rate < rate else 0.0
        self.busy_cpu = busy_cpu
        self._cpu_clock = cpu_clock
        self._cpu_mark: tuple[float, float] | None = None
        self._busy = False
        self.busy_refills = 0  # refills at the busy rate (the bench and tests read them)
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
            rate = self.busy_rate if self.is_busy(loop.time()) else self.rate
            now = loop.time()
            if self._stamp is not None:
                self._tokens = min(
                    float(self.concurrency), self._tokens + (now - self._stamp) * rate
                )
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / rate)

    def is_busy(self, now: float) -> bool:
        """This process's CPU share of a core over the last window, against busy_cpu."""
        if not self.busy_rate:
            return False
        cpu = self._cpu_clock()
        if self._cpu_mark is None:
            self._cpu_mark = (now, cpu)
        elif now - self._cpu_mark[0] >= self.BUSY_WINDOW_S:
            self._busy = (cpu - self._cpu_mark[1]) / (now - self._cpu_mark[0]) > self.busy_cpu
            self._cpu_mark = (now, cpu)
        self.busy_refills += self._busy
        return self._busy


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
            float(getattr(settings, "OCPP_FOLLOW_UP_BUSY_RATE", 2.0)),
            float(getattr(settings, "OCPP_FOLLOW_UP_BUSY_CPU", 0.6)),
        )
    return found


def submit(key: Hashable, job: Job) -> None:
    queue().submit(key, job)
