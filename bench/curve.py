"""The closed loop as a curve: messages per second and p95 against the number of chargers, for
our server, the plain-library peer and the raw websocket echo server, each point run several
times, the servers interleaved (docs/benchmarks.md says how to read it).

Every charger of a closed loop sends its next message as soon as the last one is answered, so
each server's throughput rises with the chargers until the server (or the two cores) saturates;
past that point more chargers only queue: p95 grows in proportion and throughput stays. The
**knee** is the first count at which the median throughput reaches 95 % of the curve's highest:
the most chargers a server answers at full speed before they only add latency.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

KNEE_SHARE = 0.95
FIGURES = ("msg_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_msg")


def spread(values: list[float | None]) -> dict[str, float] | None:
    """min / median / max of the runs of one point (None: no run measured it)."""
    measured: list[float] = [v for v in values if v is not None]
    if not measured:
        return None
    return {
        "min": min(measured),
        "median": round(statistics.median(measured), 1),
        "max": max(measured),
    }


def knee(points: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The first charger count whose median msg/s is within 95 % of the curve's highest."""
    rates = {n: p["msg_per_s"]["median"] for n, p in points.items() if p.get("msg_per_s")}
    if not rates:
        return None
    top = max(rates.values())
    at = min(n for n, rate in rates.items() if rate >= KNEE_SHARE * top)
    p95 = points[at].get("p95_ms")
    return {
        "chargers": at,
        # The smallest count run: the knee is there or below it, not found by this curve.
        "at_or_below": at == min(rates),
        "msg_per_s": rates[at],
        "p95_ms": p95["median"] if p95 else None,
        "highest_msg_per_s": top,
    }


def summarize(runs: dict[str, dict[int, list[dict]]]) -> dict[str, Any]:
    """Per server: every point's figures as min/median/max, and its knee; per count, ours
    against the peer and the echo (medians of the same run)."""
    servers: dict[str, Any] = {}
    for name, by_count in runs.items():
        points = {
            n: {figure: spread([r.get(figure) for r in found]) for figure in FIGURES}
            | {"runs": len(found), "errors": sum(r.get("errors", 0) for r in found)}
            for n, found in sorted(by_count.items())
        }
        servers[name] = {"points": points, "knee": knee(points)}
    return {"servers": servers, "ratios": _ratios(servers)}


def _ratios(servers: dict[str, Any]) -> dict[int, dict[str, float]]:
    ours = servers.get("ours", {}).get("points", {})
    out: dict[int, dict[str, float]] = {}
    for n, point in ours.items():
        for ref in ("peer", "echo"):
            other = servers.get(ref, {}).get("points", {}).get(n)
            if point.get("msg_per_s") and other and other.get("msg_per_s"):
                ratio = point["msg_per_s"]["median"] / max(other["msg_per_s"]["median"], 0.1)
                out.setdefault(n, {})[f"ours_per_{ref}"] = round(ratio, 2)
    return out


def scenario(
    counts: list[int],
    targets: list[str],
    repeat: int,
    run: Callable[[str, int], dict],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """`repeat` rounds; each round every count, and at each count every server in turn, the
    order of the servers reversed every other round so none always runs first."""
    runs: dict[str, dict[int, list[dict]]] = {}
    for rnd in range(repeat):
        order = targets if rnd % 2 == 0 else targets[::-1]
        for n in counts:
            for kind in order:
                log(f"curve: round {rnd + 1}/{repeat}, {kind} x {n} chargers")
                result = run(kind, n)
                cpu_s, answered = result.get("server_cpu_s"), result.get("messages_answered")
                if cpu_s is not None and answered:
                    result["server_cpu_us_per_msg"] = round(1e6 * cpu_s / answered, 1)
                runs.setdefault(kind, {}).setdefault(n, []).append(result)
    summary = summarize(runs)
    summary["counts"], summary["repeat"], summary["targets"] = counts, repeat, targets
    return summary


def table(summary: dict[str, Any]) -> list[str]:
    """Markdown: one row per server and count, each figure min / median / max."""

    def cell(value: dict[str, float] | None) -> str:
        return "" if not value else f"{value['min']:g} / **{value['median']:g}** / {value['max']:g}"

    lines = [
        "| server | chargers | msg/s | p95 ms | p99 ms | server µs per message | runs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, server in summary["servers"].items():
        for n, p in server["points"].items():
            lines.append(
                f"| {name} | {n} | {cell(p['msg_per_s'])} | {cell(p['p95_ms'])} | "
                f"{cell(p['p99_ms'])} | {cell(p['server_cpu_us_per_msg'])} | {p['runs']} |"
            )
    lines.append("")
    for name, server in summary["servers"].items():
        k = server["knee"]
        if k:
            where = "at or below " if k.get("at_or_below") else ""
            lines.append(
                f"- knee of {name}: {where}{k['chargers']} chargers ({k['msg_per_s']:g} msg/s, p95 "
                f"{k['p95_ms']} ms; highest median {k['highest_msg_per_s']:g} msg/s)"
            )
    for n, ratio in summary["ratios"].items():
        parts = ", ".join(f"{key.replace('_', ' ')} {value}x" for key, value in ratio.items())
        lines.append(f"- at {n} chargers: {parts}")
    return lines


def method_lines(report: dict[str, Any]) -> list[str]:
    """What a reader needs to repeat the figures: the machine, the database's durability, how
    busy the box was, and how the load is made."""
    machine = report.get("machine", {})
    pg = machine.get("postgres", {})
    args = report.get("args", {})
    load = report.get("load") or {}
    lines = [
        f"Machine: {machine.get('cpus')} CPUs, {machine.get('memory_gb')} GB, "
        f"{machine.get('platform')}, Python {machine.get('python')}.",
        f"PostgreSQL {pg.get('server_version', '?')} on the same box: fsync {pg.get('fsync')}, "
        f"synchronous_commit {pg.get('synchronous_commit')}, full_page_writes "
        f"{pg.get('full_page_writes')}; Redis on the same box.",
        f"Method: every server started fresh for each run; the load generator (bench/load.py, "
        f"{args.get('workers')} processes, one websockets client per charger, the same code "
        "against every server) connects and boots the chargers, then each sends Heartbeat and "
        f"MeterValues back to back for {args.get('duration')} s (the closed loop); ours stores "
        "every frame, the peer (`ocpp` + `websockets`) and the echo store nothing.",
    ]
    if load.get("before") is not None:
        lines.append(
            f"Load average (1 min): {load.get('before')} before, {load.get('during_mean')} "
            f"mean and {load.get('during_max')} max during."
        )
    return [*lines, ""]
