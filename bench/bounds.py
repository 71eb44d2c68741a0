"""The wall-clock bounds the test suite no longer holds (tests/bounds.py, docs/testing.md).

In `make test` a wait that is due "within N s" waits generously, so that a busy machine (the
parallel workers, other builds) does not fail it; here, on the quiet machine a bench needs, the
same tests run with their bounds enforced (TEST_WALL_CLOCK_BOUNDS=1) and every bounded wait's time
is recorded. Each bound is a target: its longest wait against its threshold.

    python -m bench --only bounds
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests that hold a bound (tests/bounds.py BOUNDS names the bounds).
TESTS = [
    "tests/power/test_site_budget_e2e.py",
    "tests/power/test_refused_profile_e2e.py",
]


def scenario(args: object, report: dict, *, log: Callable[[str], None]) -> None:
    from bench.servers import PG_ROOT, REDIS_URL

    with tempfile.TemporaryDirectory() as tmp:
        waits = Path(tmp) / "bounds.jsonl"
        env = {
            **os.environ,
            "TEST_WALL_CLOCK_BOUNDS": "1",
            "TEST_WALL_CLOCK_REPORT": str(waits),
            "DATABASE_URL": f"{PG_ROOT}/bench_bounds",
            "REDIS_URL": REDIS_URL,
            "CACHE_PREFIX": "bench_bounds",
            "CHANNEL_LAYER_PREFIX": "bench_bounds",
            "CONN_MAX_AGE": "0",
            "DB_POOL": "false",
        }
        log(f"bounds: {len(TESTS)} test files with their wall-clock bounds enforced")
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q"]
            + TESTS,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        rows = (
            [json.loads(line) for line in waits.read_text().splitlines()] if waits.exists() else []
        )
    worst: dict[str, dict] = {}  # per bound: its waits and the one closest to its threshold
    for row in rows:
        entry = worst.setdefault(row["bound"], {"waits": 0, "ratio": -1.0})
        entry["waits"] += 1
        ratio = row["took_s"] / row["threshold_s"]
        if ratio > entry["ratio"]:
            entry.update(
                took_s=row["took_s"], threshold_s=row["threshold_s"], ratio=round(ratio, 3)
            )
    report["bounds"] = {
        "tests_passed": run.returncode == 0,
        "pytest_tail": run.stdout[-2000:] + run.stderr[-2000:],
        "worst": worst,
    }
    if run.returncode != 0:
        log("bounds: the tests failed with their bounds enforced:\n" + run.stdout[-3000:])


def table(report: dict) -> list[str]:
    bounds = report.get("bounds")
    if not bounds:
        return []
    lines = ["", "Wall-clock bounds (tests/bounds.py; the suite waits generously instead):", ""]
    lines.append("| bound | waits | longest wait | threshold |")
    lines.append("| --- | --- | --- | --- |")
    for name, row in sorted(bounds["worst"].items()):
        lines.append(
            f"| {name} | {row['waits']} | {row['took_s']:.2f} s | {row['threshold_s']:g} s |"
        )
    return lines


def targets(report: dict) -> list[tuple[str, str, bool]]:
    bounds = report.get("bounds")
    if not bounds:
        return []
    found = [
        (
            f"bound {name}",
            f"longest of {row['waits']} waits {row['took_s']:.2f} s <= {row['threshold_s']:g} s",
            row["took_s"] <= row["threshold_s"],
        )
        for name, row in sorted(bounds["worst"].items())
    ]
    found.append(
        (
            "bounded tests pass with their bounds",
            str(bounds["tests_passed"]),
            bounds["tests_passed"],
        )
    )
    return found
