"""The slowest-first order (tests/schedule.py) against the xdist scheduler the suite pins."""

from __future__ import annotations

import json

import pytest
from xdist.scheduler.worksteal import WorkStealingScheduling

from tests import schedule


class _Config:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def getvalue(self, name: str) -> list[str]:
        assert name == "tx"
        return [f"{self.workers}*popen"]


class _Gateway:
    def __init__(self, name: str) -> None:
        self.id = name


class _Node:
    shutting_down = False

    def __init__(self, name: str) -> None:
        self.gateway = _Gateway(name)
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:  # a worker left without tests
        self.shutting_down = True


def _first_blocks(collection: list[str], workers: int) -> list[list[str]]:
    """What each worker is handed first by the real worksteal scheduler."""
    scheduler = WorkStealingScheduling(_Config(workers))  # type: ignore[arg-type]
    nodes = [_Node(f"gw{i}") for i in range(workers)]
    for node in nodes:
        scheduler.add_node(node)  # type: ignore[arg-type]
    for node in nodes:
        scheduler.add_node_collection(node, collection)  # type: ignore[arg-type]
    scheduler.schedule()
    return [[collection[i] for i in node.sent] for node in nodes]


@pytest.mark.parametrize(("count", "workers"), [(10, 3), (3655, 3), (7, 2), (2, 3)])
def test_blocks_are_the_ones_xdist_hands_out(count, workers):
    collection = [f"t{i}" for i in range(count)]
    assert [len(b) for b in _first_blocks(collection, workers)] == schedule.blocks(count, workers)


def test_each_worker_starts_on_its_share_of_the_slow_tests_and_the_rest_keep_their_order():
    seconds = {"fuzz": 200.0, "pages": 100.0, "worker": 70.0, "emsp": 50.0, "lb": 45.0}
    items = [f"t{i}" for i in range(30)]
    items[3:3] = ["lb", "emsp"]
    items[20:20] = ["pages", "fuzz", "worker"]
    ordered = schedule.slowest_first(items, 3, lambda i: seconds.get(i, 0.1))

    assert sorted(ordered) == sorted(items)
    first = _first_blocks(ordered, 3)
    # Longest first, each to the block with the least work so far.
    assert [b[0] for b in first] == ["fuzz", "pages", "worker"]
    assert first[2][:2] == ["worker", "emsp"] and first[1][:2] == ["pages", "lb"]
    rest = [i for i in ordered if i not in seconds]
    assert rest == [i for i in items if i not in seconds]


def test_without_workers_or_known_durations_the_order_is_untouched():
    items = ["a", "b", "c"]
    assert schedule.slowest_first(items, 0, lambda i: 100.0) == items
    assert schedule.slowest_first(items, 3, lambda i: 0.0) == items


def test_durations_file_merges_and_a_broken_file_reads_as_empty(tmp_path):
    path = tmp_path / "durations.json"
    assert schedule.load(path) == {}
    path.write_text("{not json")
    assert schedule.load(path) == {}
    path.write_text(json.dumps({"a": 3.0, "b": 9.0}))
    assert schedule.merged(schedule.load(path), {"b": 12.345}) == {"a": 3.0, "b": 12.3}
