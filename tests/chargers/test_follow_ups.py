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


def test_the_process_is_busy_while_it_uses_more_than_its_share_of_a_core():
    cpu = [0.0]
    queue = FollowUps(concurrency=1, rate=20, busy_rate=2, busy_cpu=0.6, cpu_clock=lambda: cpu[0])
    assert not queue.is_busy(100.0)  # the first call marks the window
    cpu[0] = 0.45
    assert queue.is_busy(100.5)  # 0.45 CPU-s in 0.5 s: 90 % of a core
    cpu[0] = 0.5
    assert queue.is_busy(100.7)  # inside the window: the last verdict stands
    assert not queue.is_busy(101.2)  # 0.05 CPU-s in 0.7 s: 7 %
    assert not FollowUps(concurrency=1, rate=20).is_busy(0.0)  # no busy rate: never slowed


async def test_while_busy_the_starts_follow_each_other_at_the_busy_rate():
    """Frames first (issue 48): while the process is busy a second start waits 1/busy_rate."""
    clock = [0.0]

    def busy_cpu() -> float:  # ten CPU-seconds more at every look: always busy
        clock[0] += 10.0
        return clock[0]

    loop = asyncio.get_running_loop()
    queue = FollowUps(concurrency=1, rate=10_000, busy_rate=2, busy_cpu=0.6, cpu_clock=busy_cpu)
    queue.is_busy(loop.time() - 1)  # a window already open: the next look decides
    started: list[float] = []

    def job():
        async def run() -> None:
            started.append(loop.time())

        return run

    queue.submit(1, job())
    queue.submit(2, job())
    await drain(30)
    assert len(started) == 2 and queue.busy_refills >= 1
    assert started[1] - started[0] >= 0.45  # 1 / 2 per second, less the clock's grain
