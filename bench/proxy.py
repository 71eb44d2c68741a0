"""Proxy at scale (issue 13): chargers behind our proxy, each with one follower backoffice.

    python -m bench --only proxy --proxy-chargers 1000

1,000 chargers (`--proxy-chargers`) run the fleet load (heartbeat 60 s, 30 % charging with
MeterValues every 10 s, status changes) against one server process while each also has an
upstream follower: the plain-library peer (bench/peer_ocpp.py) stands in for the other backoffice,
so the server holds 2,000 sockets (1,000 chargers in, 1,000 upstream links out). Reported: the
chargers' p50/p99 (target: the fleet's, p99 < 100 ms), and how many links the peer holds.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.load import Load
from bench.seed import station_id
from bench.servers import BENCH_DB, PG_ROOT, PY, ROOT, Server, server_env


def _followers(url: str, count: int) -> None:
    env = {**server_env(), "DATABASE_URL": f"{PG_ROOT}/{BENCH_DB}"}
    subprocess.run(
        [
            PY,
            "-m",
            "bench.seed",
            "--chargers",
            "0",
            "--followers",
            url,
            "--followers-count",
            str(count),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def _links(peer: Server) -> int:
    """Established sockets on the peer's port (each one a proxied charger's upstream link)."""
    try:
        proc = psutil.Process(peer.proc.pid)  # type: ignore[union-attr]
        return sum(
            1
            for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == peer.port
        )
    except psutil.Error:
        return -1


def scenario(
    args: Any,
    report: dict,
    *,
    log: Callable[[str], None],
    reset: Callable[[], None],
    summarize: Callable[[dict, float], dict],
) -> None:
    n, duration = args.proxy_chargers, args.fleet_duration
    reset()
    peer = Server("peer")
    peer.start()
    server = Server("ours", env=server_env())
    try:
        _followers(peer.ws_url, n)
        server.start()
        time.sleep(1.0)
        log(
            f"proxy: {n} chargers, each with a follower upstream (the peer), fleet rates, {duration} s"
        )
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
            [station_id(i) for i in range(n)],
            workers=args.workers,
        )
        connected = load.wait_ready()
        deadline = time.monotonic() + 120
        while _links(peer) < connected and time.monotonic() < deadline:
            time.sleep(0.5)
        links = _links(peer)
        cpu0, wall0 = server.cpu_seconds(), time.monotonic()
        load.start()
        stats = load.results(timeout=duration + 600)
        cpu1, wall1 = server.cpu_seconds(), time.monotonic()
        result = summarize(stats, duration)
        result.update(
            connections=connected,
            upstream_links=links,
            links_at_end=_links(peer),
            connect_boot_s=round(load.setup_s, 1),
            cpu_pct=round(100 * (cpu1 - cpu0) / (wall1 - wall0), 0),
            rss_mb=round(server.rss() / 2**20, 0),
        )
        result["errors"] += n - connected
        report["proxy"] = result
        log(f"  -> {result}")
    finally:
        server.terminate()
        peer.terminate()
        _followers(peer.ws_url, 0)  # the other scenarios run without upstreams
