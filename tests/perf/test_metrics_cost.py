"""`python -m bench.metrics_cost` runs both modes and prints the cost per frame (the figure in
docs/performance.md, "Metrics on the frame path", comes from it on a quiet run)."""

from __future__ import annotations

import re

from bench import metrics_cost


def test_the_metrics_cost_bench_times_both_modes(capsys):
    assert metrics_cost.main(["--exchanges", "2000"]) == 0
    out = capsys.readouterr().out
    for mode in ("one process", "multiprocess mode"):
        line = next(line for line in out.splitlines() if line.startswith(mode))
        assert re.search(r"\d+\.\d\d µs per CALL \+ CALLRESULT", line), line
