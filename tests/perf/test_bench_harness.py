"""The benchmark harness runs end to end (a smoke run with tiny sizes, not a timed test)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.perf.bench_smoke import bench_smoke

ROOT = Path(__file__).resolve().parents[2]


@bench_smoke
def test_quick_bench_prints_ratios_against_peer_and_ceiling(tmp_path, bench_env):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "throughput",
            "--conns",
            "10",
            "--duration",
            "2",
            "--targets",
            "ours,peer,echo",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=bench_env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    for kind in ("ours", "peer", "echo"):
        run = report["throughput"][kind]["10"]
        assert run["errors"] == 0, run
        assert run["msg_per_s"] > 0
    assert report["throughput"]["ours"]["10"]["rows_logged"] > 0
    # The same server with OCPP 2.0.1 chargers (--protocols defaults to 1.6,2.0.1; issue 15).
    v201 = report["throughput"]["ours/2.0.1"]["10"]
    assert (
        v201["errors"] == 0 and v201["msg_per_s"] > 0 and "TransactionEvent" in v201["by_action"]
    ), v201
    assert "x the 1.6 chargers" in report["table"]
    assert "x peer" in report["table"] and "% of echo" in report["table"]
