"""The slowest tests first, spread over the workers (docs/testing.md, "Slowest first").

pytest-xdist's worksteal scheduler gives each worker one contiguous block of the collected order
(the first block to gw0, the next to gw1, ...; sizes as `blocks` computes), and an idle worker
later steals the tail half of the longest queue. A test can only be stolen whole: the API fuzzer
(minutes) drawn near the end of the random order ran alone while the other workers had finished,
and the run waited for it. Here the tests known to be slow (tests/durations.json, written by a
run with TEST_DURATIONS_OUT) are dealt longest first to the block with the least work so far
(the longest-processing-time rule) and put at the head of their block, so each worker starts on
its share of them and the random order of everything else is kept.

Pure: no pytest, no Django; tests/test_schedule.py checks it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

DURATIONS = Path(__file__).with_name("durations.json")
# Below this a test is not worth moving: the order stays random for it.
SLOW_S = 5.0

T = TypeVar("T")


def load(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per test node id; empty when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def blocks(count: int, workers: int) -> list[int]:
    """The sizes of the blocks worksteal hands out first (xdist 3.8 `check_schedule`: each idle
    worker in turn gets len(pending) // workers_remaining)."""
    sizes = []
    remaining = count
    for i in range(workers):
        size = remaining // (workers - i)
        sizes.append(size)
        remaining -= size
    return sizes


def slowest_first(
    items: Sequence[T], workers: int, seconds: Callable[[T], float], slow_s: float = SLOW_S
) -> list[T]:
    """`items` reordered so each worker's first block starts with its share of the slow tests."""
    if workers < 2 or not items:
        return list(items)
    slow = sorted((i for i in items if seconds(i) >= slow_s), key=seconds, reverse=True)
    if not slow:
        return list(items)
    slow_ids = {id(i) for i in slow}
    rest = [i for i in items if id(i) not in slow_ids]
    sizes = blocks(len(items), workers)
    heads: list[list[T]] = [[] for _ in sizes]
    load_s = [0.0] * len(sizes)
    for item in slow:
        open_blocks = [b for b in range(len(sizes)) if len(heads[b]) < sizes[b]]
        target = min(open_blocks, key=lambda b: (load_s[b], b))
        heads[target].append(item)
        load_s[target] += seconds(item)
    ordered: list[T] = []
    position = 0
    for head, size in zip(heads, sizes, strict=True):
        fill = size - len(head)
        ordered.extend(head)
        ordered.extend(rest[position : position + fill])
        position += fill
    return ordered


def merged(old: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """A new run's durations over the old ones (a pass that ran a subset keeps the others)."""
    out = dict(old)
    out.update({k: round(v, 1) for k, v in new.items()})
    return dict(sorted(out.items()))
