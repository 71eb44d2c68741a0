"""What the OCPP path's metrics cost per frame (docs/performance.md, "Metrics").

    .venv/bin/python -m bench.metrics_cost [--exchanges 200000]

Times what the consumer adds to one charger CALL and our answer: the CALL counted in, its
handler time observed, the CALLRESULT counted out (chargers/plumbing/ocpp_metrics.py), in this
process's memory (one process) and in prometheus_client's multiprocess mode (the cluster:
PROMETHEUS_MULTIPROC_DIR, values in memory-mapped files), each the best of five runs with the
loop's own cost taken off. No Django, no database: only the calls the frame path makes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


def _best_ns_per_exchange(exchanges: int) -> float:
    from chargers.plumbing import ocpp_metrics as m

    def empty(*_args: object) -> None:
        return None

    def loop(message: Callable[..., None], handled: Callable[..., None]) -> int:
        started = time.perf_counter_ns()
        for _ in range(exchanges):
            message("in", "1.6", 2, "MeterValues")
            handled("1.6", "MeterValues", 0.0012)
            message("out", "1.6", 3, "MeterValues")
        return time.perf_counter_ns() - started

    best = float("inf")
    for _ in range(5):
        spent = loop(m.message, m.handled) - loop(empty, empty)
        best = min(best, spent / exchanges)
    return best


def _child(exchanges: int) -> None:
    print(json.dumps({"ns_per_exchange": _best_ns_per_exchange(exchanges)}))


def _run(exchanges: int, multiproc_dir: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    # A fresh process for each mode: prometheus_client picks its mode once, at import.
    out = subprocess.run(
        [sys.executable, "-m", "bench.metrics_cost", "--child", "--exchanges", str(exchanges)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out.splitlines()[-1])["ns_per_exchange"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.exchanges)
        return 0
    single = _run(args.exchanges, None)
    with tempfile.TemporaryDirectory() as directory:
        multi = _run(args.exchanges, directory)
    print(f"exchanges timed: {args.exchanges:,} (best of 5), load average {os.getloadavg()[0]:.1f}")
    print(
        f"one process:       {single / 1000:.2f} µs per CALL + CALLRESULT ({single / 2000:.2f} per frame)"
    )
    print(
        f"multiprocess mode: {multi / 1000:.2f} µs per CALL + CALLRESULT ({multi / 2000:.2f} per frame)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
