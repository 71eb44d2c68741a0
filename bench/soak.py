"""Soak: a fleet at realistic rates for an hour; is the server's memory flat?

    python -m bench --soak                                   # 2,000 chargers, 60 minutes
    python -m bench --soak --soak-minutes 3 --soak-chargers 300   # a short validation run

2,000 chargers (`--soak-chargers`) run the `fleet` mode of bench/load.py against one server
process (`manage.py serve`, PostgreSQL + Redis): heartbeat every 60 s, 30 % in a transaction
with MeterValues every 10 s, a StatusNotification change about every 5 minutes per charger, for
`--soak-minutes` (60). The server's RSS (and its open file descriptors) is sampled every
`--soak-sample-s` (30) seconds from the moment the load starts.

RSS is **flat** when, over the window from the end of the warm-up to the end of the run:
  1. no sample is more than 5 % above R0, the RSS at the end of the warm-up, and
  2. the least-squares line through the window's samples rises by less than 1 % of R0 per
     10 minutes (a leak of 1 %/10 min would break rule 1 within the 50 minutes of a full run).
The warm-up is the first 10 minutes (`--soak-warmup-minutes`); a run shorter than 30 minutes
uses its first third, so a short run gets a verdict too, but only an hour proves the rule.
The soak also reports the fleet's p50/p99 latency and errors (target as for the fleet: p99 < 100 ms,
0 errors).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.load import Load
from bench.seed import station_id
from bench.servers import Server, server_env

MAX_ABOVE_R0 = 0.05  # rule 1: no sample more than 5 % above R0
SLOPE_PER_10_MIN = 0.01  # rule 2: fitted rise < 1 % of R0 per 10 minutes
DEFAULT_WARMUP_MIN = 10.0


def warmup_seconds(duration_s: float, warmup_min: float | None = None) -> float:
    """The warm-up: 10 minutes, or the first third of a run shorter than 30 minutes."""
    if warmup_min is not None:
        return warmup_min * 60
    return min(DEFAULT_WARMUP_MIN * 60, duration_s / 3)


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    """Slope of the least-squares line through (x, y) points (0 for fewer than two x values)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def flatness(samples: list[tuple[float, int]], warmup_s: float) -> dict[str, Any]:
    """Apply the flat-RSS rule (module docstring) to (seconds since start, RSS bytes) samples."""
    window = [(t, rss) for t, rss in samples if t >= warmup_s]
    if len(window) < 3:
        return {
            "flat": None,
            "reason": f"only {len(window)} samples after the warm-up ({warmup_s:.0f} s)",
        }
    r0 = window[0][1]
    peak = max(rss for _, rss in window)
    slope = least_squares_slope([(t, float(rss)) for t, rss in window])  # bytes per second
    rise_per_10_min = slope * 600 / r0
    above = peak / r0 - 1
    flat = above <= MAX_ABOVE_R0 and rise_per_10_min < SLOPE_PER_10_MIN
    return {
        "flat": flat,
        "warmup_s": round(warmup_s, 1),
        "window_s": round(window[-1][0] - window[0][0], 1),
        "r0_mb": round(r0 / 2**20, 1),
        "max_mb": round(peak / 2**20, 1),
        "end_mb": round(window[-1][1] / 2**20, 1),
        "max_above_r0_pct": round(100 * above, 2),
        "slope_pct_per_10_min": round(100 * rise_per_10_min, 3),
        "slope_kb_per_min": round(slope * 60 / 1024, 1),
        "rule": f"max <= R0 + {100 * MAX_ABOVE_R0:g} % and least-squares rise < {100 * SLOPE_PER_10_MIN:g} % "
        "of R0 per 10 min, after the warm-up",
    }


def _open_fds(server: Server) -> int:
    """Open file descriptors of the server's process tree (sockets included): a leak shows here."""
    total = 0
    for proc in server._processes():
        try:
            total += proc.num_fds()
        except psutil.Error:
            pass
    return total


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))], 1)


def run(
    chargers: int,
    minutes: float,
    *,
    workers: int = 2,
    sample_s: float = 30.0,
    warmup_min: float | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start a server, run the fleet for `minutes`, sample RSS; return the report's "soak" entry."""
    duration = minutes * 60
    server = Server("ours", env=server_env())
    server.start()
    time.sleep(1.0)
    samples: list[tuple[float, int]] = []
    fds: list[tuple[float, int]] = []
    try:
        log(
            f"soak: {chargers} chargers at fleet rates for {minutes:g} min, RSS every {sample_s:g} s"
        )
        rss_before = server.rss()
        load = Load(
            {
                "mode": "fleet",
                "urls": [server.ws_url],
                "duration": duration,
                "charging_share": 0.3,
                "heartbeat_s": 60,
                "meter_s": 10,
                "status_s": 300,
                "connect_concurrency": 250,
            },
            [station_id(i) for i in range(chargers)],
            workers=workers,
        )
        connected = load.wait_ready()
        rss_connected = server.rss()
        cpu0 = server.cpu_seconds()
        started = time.time()
        load.start(delay=0)
        while (elapsed := time.time() - started) < duration:
            samples.append((round(elapsed, 1), server.rss()))
            fds.append((round(elapsed, 1), _open_fds(server)))
            if len(samples) % max(1, int(300 / sample_s)) == 0:
                log(
                    f"  soak {elapsed / 60:5.1f} min: RSS {samples[-1][1] / 2**20:.1f} MB, {fds[-1][1]} fds"
                )
            time.sleep(max(0.0, min(sample_s, duration - (time.time() - started))))
        samples.append((round(time.time() - started, 1), server.rss()))
        fds.append((round(time.time() - started, 1), _open_fds(server)))
        cpu1 = server.cpu_seconds()
        stats = load.results(timeout=600)
    finally:
        server.terminate()
    latencies = stats.get("latencies", [])
    verdict = flatness(samples, warmup_seconds(duration, warmup_min))
    return {
        "chargers": chargers,
        "connections": connected,
        "minutes": minutes,
        "sample_s": sample_s,
        "connect_boot_s": round(load.setup_s, 1),
        "messages": stats.get("window_ok", 0),
        "msg_per_s": round(stats.get("window_ok", 0) / duration, 1),
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "errors": stats.get("errors", 0) + (chargers - connected),
        "error_samples": stats.get("error_samples", [])[:3],
        "cpu_pct": round(100 * (cpu1 - cpu0) / duration, 0),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_connected_mb": round(rss_connected / 2**20, 1),
        "rss_per_conn_kb": round((rss_connected - rss_before) / max(connected, 1) / 1024, 1),
        "fds_first": fds[0][1] if fds else None,
        "fds_last": fds[-1][1] if fds else None,
        "rss": verdict,
        "samples": [[t, round(rss / 2**20, 2)] for t, rss in samples],
    }


def scenario(
    args: Any, report: dict[str, Any], *, log: Callable[[str], None], reset: Callable[[], None]
) -> None:
    """bench/__main__.py's runner for --soak (`reset` empties the per-run tables)."""
    reset()
    report["soak"] = run(
        args.soak_chargers,
        args.soak_minutes,
        workers=args.workers,
        sample_s=args.soak_sample_s,
        warmup_min=args.soak_warmup_minutes,
        log=log,
    )
    log(f"  -> { ({k: v for k, v in report['soak'].items() if k != 'samples'}) }")


def table(report: dict[str, Any]) -> list[str]:
    soak = report.get("soak")
    if not soak:
        return []
    rss = soak["rss"]
    flat = {True: "PASS", False: "MISS", None: "no verdict"}[rss["flat"]]
    lines = [
        "",
        f"Soak: {soak['connections']} chargers at fleet rates for {soak['minutes']:g} min "
        f"({soak['msg_per_s']} msg/s, server CPU {soak['cpu_pct']:g} %):",
        "| RSS flat | R0 (end of warm-up) | max | end | max above R0 | fitted rise per 10 min | fds first/last | "
        "p50 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if rss["flat"] is None:
        lines.append(
            f"| {flat}: {rss['reason']} | | | | | | | {soak['p50_ms']} | {soak['p99_ms']} | "
            f"{soak['max_ms']} | {soak['errors']} |"
        )
    else:
        lines.append(
            f"| {flat} | {rss['r0_mb']} MB | {rss['max_mb']} MB | {rss['end_mb']} MB | {rss['max_above_r0_pct']} % | "
            f"{rss['slope_pct_per_10_min']} % ({rss['slope_kb_per_min']} KB/min) | {soak['fds_first']}/"
            f"{soak['fds_last']} | {soak['p50_ms']} | {soak['p99_ms']} | {soak['max_ms']} | {soak['errors']} |"
        )
    return lines


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    soak = report.get("soak")
    if not soak:
        return []
    rss = soak["rss"]
    value = rss.get("reason") or (
        f"max {rss['max_above_r0_pct']} % above R0, fitted rise "
        f"{rss['slope_pct_per_10_min']} %/10 min over {rss['window_s']:g} s"
    )
    return [
        (
            f"soak {soak['connections']} x {soak['minutes']:g} min: RSS flat after the warm-up",
            value,
            rss["flat"],
        ),
        (
            "soak: p99 < 100 ms",
            f"{soak['p99_ms']} ms",
            soak["p99_ms"] is not None and soak["p99_ms"] < 100,
        ),
        ("soak: 0 errors", str(soak["errors"]), soak["errors"] == 0),
    ]
