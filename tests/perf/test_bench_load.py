"""The load generator's own plumbing (bench/load.py)."""

import asyncio

from bench.load import cancel_all


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again_until_it_ends():
    # What Python 3.11's wait_for does when the read it wraps completes as the cancel lands:
    # the result wins and the charger goes on reading.
    swallowed = []

    async def reads_on():
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not swallowed:
                    swallowed.append(True)
                    continue
                raise

    async def ends_at_once():
        await asyncio.sleep(3600)

    tasks = [asyncio.ensure_future(reads_on()), asyncio.ensure_future(ends_at_once())]
    await asyncio.sleep(0)

    await asyncio.wait_for(cancel_all(tasks), 10)

    assert swallowed == [True]
    assert all(task.cancelled() for task in tasks)
