"""The follow-up queue (chargers.plumbing.follow_ups, issue 48 item 2): a storm of boots is a
queue drained by a bounded number of workers, not one conversation per charger at once."""

import asyncio

from chargers.plumbing.background import drain
from chargers.plumbing.follow_ups import FollowUps


async def test_a_storm_of_follow_ups_runs_a_bounded_number_at_a_time():
    queue = FollowUps(concurrency=4, rate=0)
    release = asyncio.Event()
    done: list[int] = []

    def job(n: int):
        async def run() -> None:
            await release.wait()
            done.append(n)

        return run

    for n in range(100):
        queue.submit(n, job(n))
    while queue.running < 4:
        await asyncio.sleep(0)
    assert queue.running == 4 and queue.pending() == 96
    release.set()
    await drain(10)
    assert sorted(done) == list(range(100))
    assert queue.most_running == 4 and queue.started == 100
    assert queue.running == 0 and queue.pending() == 0


async def test_a_charger_that_boots_again_keeps_one_place_and_a_failure_stops_nothing():
    queue = FollowUps(concurrency=1, rate=0)
    gate = asyncio.Event()
    ran: list[str] = []

    def job(name: str, fail: bool = False):
        async def run() -> None:
            await gate.wait()
            ran.append(name)
            if fail:
                raise RuntimeError("the charger answered nonsense")

        return run

    queue.submit("first", job("first", fail=True))
    queue.submit("cp-2", job("cp-2 boot 1"))
    queue.submit("cp-3", job("cp-3"))
    queue.submit("cp-2", job("cp-2 boot 2"))  # replaces the one still waiting, keeps its place
    gate.set()
    await drain(10)
    assert ran == ["first", "cp-2 boot 2", "cp-3"]
