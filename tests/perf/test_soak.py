"""The soak (`python -m bench --soak`, bench/soak.py): the flat-RSS rule, and a run of seconds
through the same code path (not a timed test: the verdict of such a short run means nothing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import flatness, least_squares_slope, warmup_seconds
from tests.perf.bench_smoke import bench_smoke

ROOT = Path(__file__).resolve().parents[2]
MB = 2**20


def _series(minutes: int, rss_at) -> list[tuple[float, int]]:
    return [(t, int(rss_at(t))) for t in range(0, minutes * 60 + 1, 30)]


def test_warmup_is_ten_minutes_or_a_third_of_a_short_run():
    assert warmup_seconds(3600) == 600
    assert warmup_seconds(180) == 60
    assert warmup_seconds(180, warmup_min=0.5) == 30


def test_least_squares_slope():
    assert least_squares_slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert least_squares_slope([(5, 1.0)]) == 0.0


def test_flat_after_warmup_growth_and_noise():
    # Grows 40 MB during the warm-up, then wobbles by +-1 MB around 240 MB: flat.
    wobble = _series(
        60, lambda t: 200 * MB + min(t, 600) / 600 * 40 * MB + (MB if (t // 30) % 2 else -MB)
    )
    verdict = flatness(wobble, warmup_seconds(3600))
    assert verdict["flat"] is True, verdict
    assert verdict["r0_mb"] == pytest.approx(239, abs=0.1)


def test_slow_leak_is_not_flat_even_within_five_percent():
    # A steady 1.2 % of R0 per 10 minutes over a 20-minute window: 2.4 % in all, within rule 1,
    # caught by rule 2 (it would pass 5 % in a full hour).
    leak = _series(30, lambda t: 200 * MB * (1 + 0.012 * max(0, t - 600) / 600))
    verdict = flatness(leak, 600)
    assert verdict["max_above_r0_pct"] < 5
    assert verdict["flat"] is False
    assert verdict["slope_pct_per_10_min"] == pytest.approx(1.2, abs=0.01)


def test_a_jump_above_five_percent_is_not_flat():
    jump = _series(60, lambda t: 200 * MB * (1.06 if t == 1800 else 1.0))
    verdict = flatness(jump, 600)
    assert verdict["flat"] is False
    assert verdict["max_above_r0_pct"] == pytest.approx(6.0, abs=0.01)


def test_no_verdict_without_samples_after_warmup():
    assert flatness([(0, 100 * MB), (30, 100 * MB), (60, 100 * MB)], 600)["flat"] is None


@bench_smoke
def test_soak_runs_end_to_end(tmp_path, bench_env):
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--soak",
            "--soak-minutes",
            "0.25",
            "--soak-chargers",
            "12",
            "--soak-sample-s",
            "1",
            "--soak-warmup-minutes",
            "0.05",
            "--conns",
            "10",
            "--scale-conns",
            "10",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=bench_env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report) >= {"soak"} and "throughput" not in report  # --soak runs the soak only
    soak = report["soak"]
    assert (soak["connections"], soak["errors"]) == (12, 0), soak.get("error_samples")
    assert soak["messages"] > 0 and soak["p99_ms"] is not None
    # RSS sampled through the run, the rule applied to the samples after the warm-up.
    assert len(soak["samples"]) >= 10
    assert soak["rss"]["flat"] in (True, False) and soak["rss"]["warmup_s"] == 3.0
    assert (
        "Soak: 12 chargers" in report["table"] and "RSS flat after the warm-up" in report["table"]
    )
