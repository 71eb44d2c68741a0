"""Work the event loop starts and does not wait for (follow-up CALLs, announcements).

asyncio keeps only a weak reference to a task, so one nobody holds can be collected before it
finishes; `spawn` holds it until it is done and logs what it raised (nobody awaits it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)

_running: set[asyncio.Future[Any]] = set()


def spawn(work: Awaitable[Any], what: str) -> None:
    """Run `work` in the background; `what` names it in the log if it fails."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(lambda done: _finished(done, what))


def _finished(task: asyncio.Future[Any], what: str) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s failed", what, exc_info=task.exception())


async def drain(timeout: float) -> None:
    """Wait (at most `timeout` seconds) for this loop's background work, including what it starts
    in turn. Tests call it before the database is cleaned: a late announcement would write rows
    for a charger the cleaning is removing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        mine = [task for task in _running if task.get_loop() is loop]
        if not mine:
            return
        await asyncio.wait(mine, timeout=left)
