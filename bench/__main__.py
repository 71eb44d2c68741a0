"""`make bench` / `python -m bench`: run the seven scenarios, print one table, write JSON.

    python -m bench                       # the full run (~15 min on 2 cores)
    python -m bench --quick               # smoke run (< 1 min): tiny sizes, same code paths
    python -m bench --only throughput,storm --fleet 5000 --duration 10
    python -m bench --only throughput,storm --protocols 1.6   # 1.6 chargers only (default: 1.6 and 2.0.1)
    python -m bench --soak                # only the soak: 2,000 chargers, 1 hour, RSS flat? (bench/soak.py)
    python -m bench --pages               # every portal and admin page's server time (bench/pages.py)
    python -m bench --only bounds         # the tests' wall-clock bounds, enforced (bench/bounds.py)

Needs PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/14). Creates and drops its own
databases (BENCH_DB, default bench_evportal, and BENCH_DB_log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psutil
import psycopg

from bench import bounds, curve, fleet, logscale, soak, tls
from bench import proxy as proxy_bench
from bench import ratios as guard
from bench.load import Charger, Load, Stats, raise_fd_limit
from bench.seed import station_id
from bench.servers import (
    BENCH_DB,
    CLUSTER_PROCS,
    JOURNAL_DIR,
    OURS,
    PG_ROOT,
    PY,
    REDIS_URL,
    ROOT,
    Server,
    free_port,
    server_env,
)

T = TypeVar("T")
SCENARIOS = ("throughput", "curve", "fleet", "storm", "scaleout", "logs", "proxy", "bounds")
RESULTS = ROOT / "bench" / "results"


# -- helpers -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def recreate_database(name: str) -> None:
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name: str) -> bool:
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def migrate_and_seed(
    database: str,
    chargers: int,
    *,
    migrate: bool = True,
    site_size: int = 0,
    energy_checked: bool = False,
    security_profile: int = 1,
) -> dict:
    env = server_env(database)
    if migrate:
        subprocess.run(
            [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
    out = subprocess.run(
        [
            PY,
            "-m",
            "bench.seed",
            "--chargers",
            str(chargers),
            "--site-size",
            str(site_size),
            *(["--energy-checked"] if energy_checked else []),
            "--security-profile",
            str(security_profile),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def flush_redis() -> None:
    """Drop this bench's channel-layer and cache keys (its own prefix) between runs."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"*{BENCH_DB}*", count=1000):
        client.delete(key)


def reset_logs(database: str = BENCH_DB) -> None:
    """Empty the per-run tables so every scenario starts from the same state."""
    with psycopg.connect(f"{PG_ROOT}/{database}", autocommit=True) as conn:
        conn.execute(
            # CASCADE: the security tables (key changes, certificates, operations) point at commands.
            "TRUNCATE chargers_ocppmessage, chargers_metervalue, chargers_statusevent, chargers_command "
            "RESTART IDENTITY CASCADE"
        )
        conn.execute("TRUNCATE chargers_chargingsession CASCADE")
        conn.execute(
            "UPDATE chargers_charger SET connection_id = '', connected_at = NULL, disconnected_at = NULL"
        )
    shutil.rmtree(JOURNAL_DIR, ignore_errors=True)


def summarize(stats: dict, duration: float) -> dict:
    lat, lag = stats.get("latencies", []), stats.get("loop_lag_ms", [])
    return {
        "msg_per_s": round(stats.get("window_ok", 0) / duration, 1),
        "p50_ms": _r(pct(lat, 50)),
        "p95_ms": _r(pct(lat, 95)),
        "p99_ms": _r(pct(lat, 99)),
        "max_ms": _r(max(lat) if lat else None),
        "errors": stats.get("errors", 0),
        "error_samples": stats.get("error_samples", [])[:3],
        "calls": len(lat),
        "by_action": {
            name: {
                "calls": len(values),
                "p50_ms": _r(pct(values, 50)),
                "p99_ms": _r(pct(values, 99)),
            }
            for name, values in sorted(stats.get("by_action", {}).items())
        },
        # The load generator's own event-loop lag: past a few ms, its clock, not the server,
        # adds to every latency above.
        "load_loop_lag_ms": {
            "p50": _r(pct(lag, 50)),
            "p99": _r(pct(lag, 99)),
            "max": _r(max(lag) if lag else None),
        },
    }


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


PROFILE_DIR: Path | None = None


def start_profile(
    server: Server, name: str, duration: float | None = None
) -> subprocess.Popen | None:
    """py-spy the server for the measured window (collapsed stacks, see docs/performance.md).
    Without a duration it records until `stop_profile`."""
    if PROFILE_DIR is None:
        return None
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    spy = Path(PY).parent / "py-spy"
    limit = ["-d", str(int(duration))] if duration else []
    # BENCH_PROFILE_GIL=1: only the thread holding the GIL is sampled, i.e. where the one core a
    # process can use goes (a saturated server), not which threads wait on PostgreSQL.
    gil = ["--gil"] if os.environ.get("BENCH_PROFILE_GIL") == "1" else []
    # BENCH_PROFILE_IDLE=1: waiting threads are sampled too (where a phase's wall time goes).
    gil += ["--idle"] if os.environ.get("BENCH_PROFILE_IDLE") == "1" else []
    assert server.proc is not None, "profile a started server"
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "-p",
            str(server.proc.pid),
            *limit,
            *gil,
            "-r",
            "200",
            "--nonblocking",
            "-f",
            "raw",
            "-o",
            str(PROFILE_DIR / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(PROFILE_DIR / f"{name}.err", "w"),
    )


def postgres_settings() -> dict[str, str]:
    """The PostgreSQL durability the figures were measured at (issue 59: its defaults)."""
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "max_connections")
    settings = {}
    with psycopg.connect(f"{PG_ROOT}/postgres") as conn:
        for name in names:
            row = conn.execute(f"SHOW {name}").fetchone()
            assert row is not None  # SHOW answers one row
            settings[name] = str(row[0])
    return settings


def postgres_cpu_seconds() -> float:
    """CPU (user + system) of every PostgreSQL process on this box, backends that ended
    included as far as the postmaster's children's times hold them."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def stop_profile(spy: subprocess.Popen | None) -> None:
    if spy is None:
        return
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()


def run_closed(
    server_urls: list[str],
    servers: list[Server],
    n: int,
    duration: float,
    workers: int,
    echo: bool = False,
    profile: str | None = None,
    protocol: str = "1.6",
    fronts: Sequence[tls.TlsFront] = (),
    spec: dict | None = None,
) -> dict:
    """Closed loop (Heartbeat / MeterValues back to back; in 2.0.1 Heartbeat / TransactionEvent
    Updated with the same meter values) over n chargers; server CPU and RSS. Over TLS the
    chargers connect to `fronts` (bench/tls.py), whose CPU is reported on its own."""
    rss_before = sum(s.rss() for s in servers)
    load = Load(
        {
            "mode": "closed",
            "urls": server_urls,
            "duration": duration,
            "echo": echo,
            "protocol": protocol,
            **(spec or {}),
        },
        [station_id(i) for i in range(n)],
        workers=workers,
    )
    connected = load.wait_ready()
    rss_connected = sum(s.rss() for s in servers)
    cpu0, wall0, pg0 = (
        sum(s.cpu_seconds() for s in servers),
        time.monotonic(),
        postgres_cpu_seconds(),
    )
    front0 = sum(f.cpu_seconds() for f in fronts)
    load.start()
    spy = start_profile(servers[0], profile, duration) if profile else None
    stats = load.results(timeout=duration + 300)
    if spy is not None:
        spy.wait(timeout=60)
    cpu1, wall1, pg1 = (
        sum(s.cpu_seconds() for s in servers),
        time.monotonic(),
        postgres_cpu_seconds(),
    )
    front1 = sum(f.cpu_seconds() for f in fronts)
    result = summarize(stats, duration)
    if fronts:
        result["tls_proxy_cpu_s"] = round(front1 - front0, 2)
    result.update(
        connections=connected,
        setup_s=round(load.setup_s, 1),
        cpu_pct=round(100 * (cpu1 - cpu0) / (wall1 - wall0), 0),
        rss_per_conn_kb=round((rss_connected - rss_before) / max(connected, 1) / 1024, 1),
        rss_mb=round(sum(s.rss() for s in servers) / 2**20, 0),
        # Server CPU (all processes) over the same window as `messages_answered` (every CALL
        # answered from load.start() to the end, warm-up included), for CPU per 1,000 messages.
        server_cpu_s=round(cpu1 - cpu0, 2),
        messages_answered=stats.get("ok", 0),
        # The box is two cores shared by the server, PostgreSQL and the load generator: what a
        # message costs each says where a protocol's extra time goes.
        postgres_cpu_s=round(pg1 - pg0, 2),
        load_cpu_s=round(stats.get("load_cpu_s", 0.0), 2),
    )
    if connected < n:
        result["errors"] += n - connected
    return result


# -- scenarios ---------------------------------------------------------------------------------


def with_protocol(kind: str, protocol: str) -> str:
    """The report's name of a run: the server kind, suffixed /2.0.1 for 2.0.1 chargers."""
    return kind if protocol == "1.6" else f"{kind}/{protocol}"


def scenario_throughput(args: argparse.Namespace, report: dict) -> None:
    """Closed loop per server, connection count and charger protocol. Our server runs
    `--repeat` times per protocol, the protocols interleaved (1.6, 2.0.1, then 2.0.1, 1.6, ...):
    on a shared two-core box one 15 s run of each can land in a quiet and a busy minute, which
    moved the 2.0.1 / 1.6 ratio by 25 % between runs of the same code. The row kept is the
    median run by msg/s; `runs_msg_per_s` lists them all."""
    targets = [t for t in args.targets.split(",") if t]
    rows = report.setdefault("throughput", {})
    for kind in targets:
        protocols = args.protocols if kind in OURS else ["1.6"]
        repeat = max(1, args.repeat) if kind in OURS else 1
        for n in args.conns:
            results: dict[str, list[dict]] = {}
            for rep in range(repeat):
                for protocol in protocols if rep % 2 == 0 else protocols[::-1]:
                    name = with_protocol(kind, protocol)
                    result = _throughput_run(args, kind, protocol, n, profile=rep == 0)
                    results.setdefault(name, []).append(result)
            for name, runs_of in results.items():
                ordered = sorted(runs_of, key=lambda r: r["msg_per_s"])
                row = dict(
                    ordered[(len(ordered) - 1) // 2]
                )  # the median (the lower one of an even count)
                if len(runs_of) > 1:
                    row["runs_msg_per_s"] = [r["msg_per_s"] for r in runs_of]
                rows.setdefault(name, {})[str(n)] = row


def scenario_curve(args: argparse.Namespace, report: dict) -> None:
    """The closed loop at several charger counts for ours, the peer and the echo, each point
    `--curve-repeat` times (bench/curve.py; docs/benchmarks.md draws it)."""
    report["curve"] = curve.scenario(
        args.curve_counts,
        [t for t in args.curve_targets.split(",") if t],
        max(1, args.curve_repeat),
        lambda kind, n: _throughput_run(args, kind, "1.6", n, profile=False),
        log,
    )


def _throughput_run(
    args: argparse.Namespace, kind: str, protocol: str, n: int, *, profile: bool
) -> dict:
    name = with_protocol(kind, protocol)
    port = free_port()
    env = ours_env(kind, port, tls_dir=args.tls_dir if args.tls else None) if kind in OURS else None
    server = Server(kind, port=port, env=env)
    if kind in OURS:
        reset_logs()
        flush_redis()
    server.start()
    fronts = start_fronts(args, [server])
    time.sleep(1.0)
    try:
        log(f"throughput: {name} x {n} chargers for {args.duration} s" + tls_note(args))
        denials = asyncio.run(denial_statuses(server.ws_url)) if kind in OURS else None
        result = run_closed(
            [front.url for front in fronts] or [server.ws_url],
            [server],
            n,
            args.duration,
            args.workers,
            echo=kind.startswith("echo"),
            profile=f"throughput-{name.replace('/', '-')}-{n}" if profile else None,
            protocol=protocol,
            fronts=fronts,
            spec=tls_spec(args),
        )
    finally:
        for front in fronts:
            front.stop()
        server.terminate()
    if kind in OURS:
        result["rows_logged"] = count_rows()
        result["denials"] = denials
    log(f"  -> {result}")
    return result


def ours_env(kind: str, port: int | None = None, *, tls_dir: Path | None = None) -> dict:
    if kind == "ours-sansio":
        env = server_env(UVICORN_WS="websockets-sansio")
    elif kind == "ours-cluster":
        # deploy/cluster.sh: HAProxy on `port`, the processes on the ports after it.
        assert port is not None, "the cluster's HAProxy listens on a given port"
        env = server_env(OCPP_BIND=f"127.0.0.1:{port}", APP_PORT_BASE=port + 1, PY=PY)
    else:
        env = server_env()
    if tls_dir is not None:
        env.update(tls.server_extra_env(tls_dir))
    return env


def tls_note(args: argparse.Namespace) -> str:
    return f" over TLS, security profile {args.tls}" if args.tls else ""


def start_fronts(args: argparse.Namespace, servers: list[Server]) -> list[tls.TlsFront]:
    """Over TLS (`--tls`): HAProxy with deploy/haproxy/ocpp.cfg in front of each server; none
    without it. A front outlives its server's restart, as the deployed terminator does."""
    if not args.tls:
        return []
    fronts = [tls.TlsFront(args.tls_dir, s.port, s.log_path.parent) for s in servers]
    for front in fronts:
        front.start()
    return fronts


def tls_spec(args: argparse.Namespace) -> dict:
    """The load generator's part of `--tls` (bench/load.py): empty without it."""
    return {"tls": {"profile": args.tls, "dir": str(args.tls_dir)}} if args.tls else {}


async def denial_statuses(ws_url: str) -> dict:
    """What a refused handshake is answered with: an unknown station must get HTTP 404 and a
    missing subprotocol 400 (the ASGI websocket denial-response extension); a server without
    it answers 403 to both, which chargers cannot tell apart."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Subprotocol

    async def status(url: str, subprotocols: list[Subprotocol]) -> int | str:
        try:
            async with connect(url, subprotocols=subprotocols, open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code
        except Exception as exc:  # noqa: BLE001 - report what happened
            return type(exc).__name__

    return {
        "unknown_station": await status(f"{ws_url}/NO-SUCH-STATION", [Subprotocol("ocpp1.6")]),
        "no_subprotocol": await status(f"{ws_url}/{station_id(0)}", []),
    }


def count_rows(database: str = BENCH_DB) -> int:
    with psycopg.connect(f"{PG_ROOT}/{database}") as conn:
        row = conn.execute("SELECT count(*) FROM chargers_ocppmessage").fetchone()
    assert row is not None  # count(*) returns one row
    return row[0]


def scenario_fleet(args: argparse.Namespace, report: dict) -> None:
    """A fleet at realistic rates on `--fleet-procs` server processes (the box's processes, each
    charger to one of them as a DNS round robin would), with an operator's API commands beside."""
    n, duration, procs = args.fleet, args.fleet_duration, args.fleet_procs
    reset_logs()
    flush_redis()
    tls_dir = args.tls_dir if args.tls else None
    servers = [Server("ours", env=ours_env("ours", tls_dir=tls_dir)) for _ in range(procs)]
    for server in servers:
        server.start()
    fronts = start_fronts(args, servers)
    time.sleep(1.0)
    stations = [station_id(i) for i in range(n)]
    sources = fleet.source_addresses(n, procs)
    try:
        charging = args.fleet_charging
        log(
            f"fleet: {n} chargers on {procs} process(es), {100 * charging:.0f} % charging, "
            f"{duration} s, from {len(sources) or 1} source address(es)" + tls_note(args)
        )
        rss_before = sum(s.rss() for s in servers)
        load = Load(
            {
                "mode": "fleet",
                "urls": [f.url for f in fronts] or [s.ws_url for s in servers],
                "sources": sources,
                "duration": duration,
                "charging_share": charging,
                "heartbeat_s": 60,
                "meter_s": 10,
                "status_s": 300,
                "connect_concurrency": 250,
                **tls_spec(args),
            },
            stations,
            workers=args.workers,
        )
        connected = load.wait_ready(timeout=3600)
        rss_connected = sum(s.rss() for s in servers)
        cpu0, wall0 = sum(s.cpu_seconds() for s in servers), time.monotonic()
        front0 = sum(f.cpu_seconds() for f in fronts)
        commands = fleet.ApiCommands(
            [s.http_url for s in servers], report["api_token"], stations, args.fleet_command_every
        )
        started = load.start()
        commands.start(started, started + duration - 1)
        spy = start_profile(servers[0], f"fleet-ours-{n}", duration)
        stats = load.results(timeout=duration + 600)
        stop_profile(spy)
        cpu1, wall1 = sum(s.cpu_seconds() for s in servers), time.monotonic()
        result = summarize(stats, duration)
        if fronts:
            result["tls_proxy_cpu_s"] = round(sum(f.cpu_seconds() for f in fronts) - front0, 2)
        result.update(
            connections=connected,
            processes=procs,
            source_addresses=sources or ["127.0.0.1"],
            ephemeral_ports=fleet.ephemeral_ports(),
            charging_share=charging,
            connect_boot_s=round(load.setup_s, 1),
            cpu_pct=round(100 * (cpu1 - cpu0) / (wall1 - wall0), 0),
            rss_per_conn_kb=round((rss_connected - rss_before) / max(connected, 1) / 1024, 1),
            rss_mb=round(sum(s.rss() for s in servers) / 2**20, 0),
            api_commands=commands.stop(),
        )
        result["errors"] += n - connected
        report["fleet"] = result
        log(f"  -> {result}")
    finally:
        for front in fronts:
            front.stop()
        for server in servers:
            server.terminate()


def scenario_storm(args: argparse.Namespace, report: dict) -> None:
    """Connect + boot n chargers at once, SIGTERM the server with 30 % of them charging, start
    it again and time until every charger is back (connected, booted, status sent, its
    transaction stopped). The same load generator runs against the peer in the same run."""
    result = {}
    for kind in [k for k in args.storm_targets.split(",") if k]:
        # Ours `--storm-repeat` times per protocol, interleaved, the median kept (as the closed
        # loop): when every charger is back moves by seconds between runs of the same code,
        # since a charger that misses one attempt doubles its back-off.
        protocols = args.protocols if kind in OURS else ["1.6"]
        repeat = max(1, args.storm_repeat) if kind in OURS else 1
        found: dict[str, list[dict]] = {}
        for rep in range(repeat):
            for protocol in protocols if rep % 2 == 0 else protocols[::-1]:
                name = with_protocol(kind, protocol)
                # Each pair faces the same chargers (who charges, every back-off): a seed per pair.
                found.setdefault(name, []).append(
                    storm_once(kind, args, protocol, seed=f"{args.storm_seed}:{rep}")
                )
                log(f"  -> {name}: {found[name][-1]}")
        for name, runs_of in found.items():
            ordered = sorted(runs_of, key=lambda r: r["all_online_after_kill_s"] or float("inf"))
            result[name] = dict(ordered[(len(ordered) - 1) // 2])
            if len(runs_of) > 1:
                result[name]["runs_all_online_s"] = [r["all_online_after_kill_s"] for r in runs_of]
                # Every run must lose nothing, not only the median one.
                for key in ("errors", "lost_in", "lost_out", "transactions_not_stopped"):
                    result[name][key] = sum(r.get(key) or 0 for r in runs_of)
                result[name]["online"] = min(r["online"] for r in runs_of)
    peer = result.get("peer")
    for name, ours in result.items():
        if peer and name.split("/")[0] in OURS:
            for key in ("connect_boot_s", "all_online_after_kill_s"):
                if ours.get(key) and peer.get(key):
                    ours[f"{key}_vs_peer"] = round(ours[key] / max(peer[key], 0.1), 2)
    report["storm"] = result


def storm_once(
    kind: str, args: argparse.Namespace, protocol: str = "1.6", seed: str | None = None
) -> dict:
    n = args.storm
    ours = kind in OURS
    if ours:
        reset_logs()
        flush_redis()
    # `--storm-procs`: ours as several processes on the box, the chargers spread over them (the
    # peer is one process); all are stopped and started again together.
    procs = max(1, args.storm_procs) if kind == "ours" else 1
    servers = [Server(kind, env=None) for _ in range(procs)]
    tls_dir = args.tls_dir if args.tls else None
    for server in servers:
        server.env = ours_env(kind, server.port, tls_dir=tls_dir) if ours else dict(os.environ)
    each(servers, Server.start)
    fronts = start_fronts(args, servers)
    server = servers[0]
    time.sleep(1.0)
    sources = fleet.source_addresses(n, procs)
    log(
        f"storm ({with_protocol(kind, protocol)}): {n} chargers ({args.storm_charging:.0%} in a transaction, metering), "
        f"server SIGTERM + restart; {procs} process(es), {len(sources) or 1} source address(es)"
        + tls_note(args)
    )
    # Past 10,000 chargers, what two cores can bring back takes longer than the 180 s of the
    # 10,000 storm: the deadline grows with the fleet (30,000: 540 s).
    deadline_s = max(180.0, n * 0.018)
    load = Load(
        {
            "mode": "storm",
            "urls": [f.url for f in fronts] or [s.ws_url for s in servers],
            "sources": sources,
            "charging_share": args.storm_charging,
            "meter_s": 5,
            "spread_s": 5,
            "reconnect_deadline_s": deadline_s,
            "backoff": not args.storm_no_backoff,
            "connect_concurrency": 250,
            "protocol": protocol,
            "seed": seed,
            **tls_spec(args),
        },
        [station_id(i) for i in range(n)],
        workers=args.workers,
    )
    spy = start_profile(
        server, f"storm-connect-{with_protocol(kind, protocol).replace('/', '-')}-{n}"
    )
    online_db = online_db_settled = 0
    reconnect_cpu: tuple[float | None, float | None] = (None, None)
    try:
        connected = load.wait_ready(timeout=3600)
        stop_profile(spy)
        load.start(delay=0)
        time.sleep(min(5.0, 1 + n / 2000))  # chargers metering: frames in flight when SIGTERM lands
        t_kill = time.time()
        spy = start_profile(
            server, f"storm-shutdown-{with_protocol(kind, protocol).replace('/', '-')}-{n}"
        )
        shutdown_s = max(each(servers, lambda s: s.terminate(timeout=120)))
        stop_profile(spy)
        each(servers, Server.start)
        t_ready = time.time()
        cpu0, pg0 = sum(s.cpu_seconds() for s in servers), postgres_cpu_seconds()
        spy = start_profile(
            server, f"storm-reconnect-{with_protocol(kind, protocol).replace('/', '-')}-{n}"
        )
        deadline = time.time() + deadline_s
        while time.time() < deadline and load.online.value < connected:
            time.sleep(0.25)
        t_all = time.time()
        # What the reconnect cost the server and PostgreSQL, from listening until all are back.
        reconnect_cpu = (
            round(sum(s.cpu_seconds() for s in servers) - cpu0, 2),
            round(postgres_cpu_seconds() - pg0, 2),
        )
        stop_profile(spy)
        if ours:
            online_db = online_count(t_kill)
            # Connections are written in batches beside the frames: what the database shows
            # once they had 10 s more (a count still short is a defect, not a lag).
            time.sleep(args.storm_settle_s)
            online_db_settled = online_count(t_kill)
    finally:
        load.stop()
        stats = load.results(timeout=300)
        time.sleep(1.0)
        each(servers, Server.terminate)
        each(servers, Server.release)
        for front in fronts:
            front.stop()
    online_at = sorted(stats.get("online_at", []))
    back = [t - t_kill for t in online_at]
    result = {
        "connections": connected,
        "processes": procs,
        "backoff": "none (retry every 1 s)" if args.storm_no_backoff else "doubling, up to 60 s",
        "source_addresses": sources or ["127.0.0.1"],
        "connect_boot_s": round(load.setup_s, 1),
        "shutdown_s": round(shutdown_s, 1),
        "restart_s": round(t_ready - t_kill - shutdown_s, 1),
        "all_online_after_kill_s": round((online_at[-1] if online_at else t_all) - t_kill, 1),
        "p50_online_after_kill_s": round(back[len(back) // 2], 1) if back else None,
        "reconnect_attempts": stats.get("attempts", 0),
        # CALLs the server sent the chargers and they answered (profiles under a power budget,
        # configuration checks): the server's own conversations during the storm.
        "server_calls": stats.get("server_calls", 0),
        # Why attempts failed: count, and the first and last failure in seconds after the kill.
        "reconnect_failures": {
            reason: [len(times), _r(min(times) - t_kill), _r(max(times) - t_kill)]
            for reason, times in sorted(stats.get("attempt_failures", {}).items())
        },
        "reconnect_server_cpu_s": reconnect_cpu[0],
        "reconnect_postgres_cpu_s": reconnect_cpu[1],
        # The load generator shares the box's cores: what it spent from the start of metering on.
        "load_cpu_s": round(stats.get("load_cpu_s", 0.0), 2),
        # p50 / p99 ms of each step of the reconnect that succeeded, idle and charging chargers apart.
        "reconnect_steps_ms": {
            name: [_r(pct(values, 50)), _r(pct(values, 99))]
            for name, values in sorted(stats.get("steps", {}).items())
        },
        "online": len(online_at),
        "errors": stats.get("errors", 0) + (n - connected),
        "error_samples": stats.get("error_samples", [])[:3],
    }
    if ours:
        result["online_in_db"] = online_db
        result["online_in_db_10s_later"] = online_db_settled
        result.update(transaction_loss(stats, protocol))
    return result


def each(servers: list[Server], action: Callable[[Server], T]) -> list[T]:
    """`action` on every server at once (a stop or start of several processes together)."""
    if len(servers) == 1:
        return [action(servers[0])]
    with ThreadPoolExecutor(len(servers)) as pool:
        return list(pool.map(action, servers))


def online_count(since: float) -> int:
    """Chargers the server sees connected and booted since `since` (epoch seconds)."""
    with psycopg.connect(f"{PG_ROOT}/{BENCH_DB}") as conn:
        row = conn.execute(
            "SELECT count(*) FROM chargers_charger WHERE station_id ~ '^BENCH-[0-9]+$' AND connection_id <> '' "
            "AND last_boot_at >= to_timestamp(%s)",
            [since],
        ).fetchone()
    assert row is not None  # count(*) returns one row
    return row[0]


def transaction_loss(stats: dict, protocol: str = "1.6") -> dict:
    """Every transaction message a charger got an answer for must be in the log, both ways,
    and every transaction started before the restart must be stopped in the database (by our
    transactionId in 1.6, by the charger's in 2.0.1)."""
    answered = set(stats.get("answered", []))
    tx_column = "transaction_id" if protocol == "1.6" else "ocpp_transaction_id"
    with psycopg.connect(f"{PG_ROOT}/{BENCH_DB}") as conn:
        rows = conn.execute(
            "SELECT unique_id, direction FROM chargers_ocppmessage "
            "WHERE action IN ('StartTransaction','StopTransaction','MeterValues','TransactionEvent') "
            "AND message_type IN (2, 3)"
        ).fetchall()
        started = set(stats.get("started", []))
        stopped_db = {
            tx
            for (tx,) in conn.execute(
                f"SELECT {tx_column} FROM chargers_chargingsession WHERE status = 'completed'"
            ).fetchall()
        }
    logged_in = {uid for uid, d in rows if d == "in"}
    logged_out = {uid for uid, d in rows if d == "out"}
    return {
        "tx_messages_answered": len(answered),
        "lost_in": len(answered - logged_in),
        "lost_out": len(answered - logged_out),
        "transactions": len(started),
        "transactions_not_stopped": len(started - stopped_db),
    }


def scenario_scaleout(args: argparse.Namespace, report: dict) -> None:
    result = {}
    for procs in args.procs:
        reset_logs()
        flush_redis()
        servers = [Server("ours", env=server_env()) for _ in range(procs)]
        for server in servers:
            server.start()
        time.sleep(1.0)
        try:
            log(f"scale-out: {procs} process(es), {args.scale_conns} chargers, {args.duration} s")
            run = run_closed(
                [s.ws_url for s in servers], servers, args.scale_conns, args.duration, args.workers
            )
            if procs >= 2:
                run["command_across_processes"] = command_across(
                    servers[0], servers[1], report["api_token"]
                )
        finally:
            for server in servers:
                server.terminate()
        result[str(procs)] = run
        log(f"  -> {run}")
    base = result.get("1", {}).get("msg_per_s")
    for run in result.values():
        run["ratio_to_1"] = round(run["msg_per_s"] / base, 2) if base else None
        run["cpu_s_per_1k_msgs"] = cpu_per_1k(run)
    base_cpu = result.get("1", {}).get("cpu_s_per_1k_msgs")
    for run in result.values():
        # Flat (1.0) = adding processes costs no coordination; above 1 = overhead per message.
        run["cpu_per_msg_to_1"] = (
            round(run["cpu_s_per_1k_msgs"] / base_cpu, 2)
            if base_cpu and run["cpu_s_per_1k_msgs"]
            else None
        )
    report["scaleout"] = result


def cpu_per_1k(run: dict) -> float | None:
    """Server CPU-seconds (sum over the server processes) per 1,000 answered messages (CALLs)."""
    messages = run.get("messages_answered") or 0
    return (
        round(1000 * run["server_cpu_s"] / messages, 3)
        if messages and "server_cpu_s" in run
        else None
    )


def command_across(a: Server, b: Server, api_token: str) -> dict:
    """Connect BENCH-CMD to process B, send Reset through process A's API, see it answered."""
    import httpx

    async def go() -> dict:
        stats = Stats()
        charger = Charger("BENCH-CMD", b.ws_url, stats)
        await charger.connect()
        await charger.boot()
        idle = asyncio.create_task(charger.idle(30))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        response = await asyncio.to_thread(
            httpx.post,
            f"{a.http_url}/api/v1/chargers/BENCH-CMD/commands/Reset/",
            json={"type": "Soft"},
            headers={"Authorization": f"Token {api_token}"},
            timeout=30,
        )
        elapsed = time.monotonic() - started
        idle.cancel()
        await charger.close()
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        return {
            "http": response.status_code,
            "body": body,
            "charger_received": stats.server_calls,
            "round_trip_ms": round(elapsed * 1000, 1),
            "ok": response.status_code == 200 and stats.server_calls == 1,
        }

    return asyncio.run(go())


def scenario_logs(args: argparse.Namespace, report: dict) -> None:
    report["logs"] = logscale.run(
        args.log_rows, keep=args.keep_log_db, requests=args.log_requests, log=log
    )


# -- report ------------------------------------------------------------------------------------


def targets(report: dict, args: argparse.Namespace) -> list[tuple[str, str, bool | None]]:
    out = []
    tp = report.get("throughput", {})
    big = str(max(args.conns)) if args.conns else None
    ours = tp.get("ours", {}).get(big)
    peer = tp.get("peer", {}).get(big)
    echo = tp.get("echo", {}).get(big)
    echo_asgi = tp.get("echo-asgi", {}).get(big)
    if ours and peer:
        ratio = ours["msg_per_s"] / max(peer["msg_per_s"], 0.1)
        out.append((f"throughput @{big}: >= 1.5x peer msg/s", f"{ratio:.2f}x", ratio >= 1.5))
        out.append(
            (
                f"throughput @{big}: p99 <= peer p99",
                f"{ours['p99_ms']} vs {peer['p99_ms']} ms",
                ours["p99_ms"] is not None
                and peer["p99_ms"] is not None
                and ours["p99_ms"] <= peer["p99_ms"],
            )
        )
    if ours and echo:
        ratio = ours["msg_per_s"] / max(echo["msg_per_s"], 0.1)
        out.append(
            (
                f"throughput @{big}: >= 40 % of raw websockets echo",
                f"{100 * ratio:.0f} %",
                ratio >= 0.4,
            )
        )
    if ours and echo_asgi:
        ratio = ours["msg_per_s"] / max(echo_asgi["msg_per_s"], 0.1)
        out.append(
            (
                f"throughput @{big}: >= 40 % of echo through uvicorn",
                f"{100 * ratio:.0f} %",
                ratio >= 0.4,
            )
        )
    fleet = report.get("fleet")
    if fleet:
        out.append(
            (
                f"fleet {fleet['connections']}: p99 < 100 ms",
                f"{fleet['p99_ms']} ms",
                (fleet["p99_ms"] or 1e9) < 100,
            )
        )
        out.append(
            (
                "fleet: < 60 KB RSS per connection",
                f"{fleet['rss_per_conn_kb']} KB",
                fleet["rss_per_conn_kb"] < 60,
            )
        )
        out.append(("fleet: 0 errors", str(fleet["errors"]), fleet["errors"] == 0))
        out.extend(fleet_targets_59(fleet))
    for shape in ("ours", "ours-held", "ours-cluster"):
        out.extend(storm_targets(report, shape))
    out.extend(v201_targets(report, big))
    scale = report.get("scaleout", {})
    if "2" in scale:
        out.append(
            (
                "scale-out: 2 processes >= 1.8x one",
                f"{scale['2']['ratio_to_1']}x",
                (scale["2"]["ratio_to_1"] or 0) >= 1.8,
            )
        )
        flat = scale["2"].get("cpu_per_msg_to_1")
        out.append(
            (
                "scale-out: CPU per message with 2 processes within 1.25x of one",
                f"{flat}x",
                flat is not None and flat <= 1.25,
            )
        )
        cmd = scale["2"].get("command_across_processes", {})
        out.append(
            (
                "scale-out: API on process A reaches charger on B",
                f"HTTP {cmd.get('http')}",
                bool(cmd.get("ok")),
            )
        )
    proxied = report.get("proxy")
    if proxied:
        out.append(
            (
                f"proxy {proxied['connections']} chargers + {proxied['upstream_links']} upstream links: p99 < 100 ms",
                f"{proxied['p99_ms']} ms",
                (proxied["p99_ms"] or 1e9) < 100 and proxied["errors"] == 0,
            )
        )
        out.append(
            (
                "proxy: every charger's follower link up",
                f"{proxied['upstream_links']} of {proxied['connections']}",
                proxied["upstream_links"] >= proxied["connections"],
            )
        )
    logs = report.get("logs")
    if logs:
        worst = max(q["p95_ms"] for q in logs["queries"].values())
        out.append(
            (
                f"logs {logs['rows']:,} rows: p95 < 100 ms (first page, action, idTag)",
                f"worst {worst} ms",
                worst < 100,
            )
        )
    return out


def storm_targets(report: dict, shape: str) -> list[tuple[str, str, bool]]:
    """The storm targets for one server shape: ours (one process) or ours-cluster."""
    out: list[tuple[str, str, bool]] = []
    storm = report.get("storm", {}).get(shape)
    if not storm:
        return out
    peer = report["storm"].get("peer")
    # The single process is the plain name; the others say what they are.
    on = {
        "ours": "",
        "ours-held": " (ours-held: its listening socket held across the restart, as deploy/systemd)",
    }.get(shape, f" ({shape}, {CLUSTER_PROCS} processes)")
    back = storm["online"] >= storm["connections"]
    for seconds in (60, 15):  # 15 s: issue 48's bar at 10,000 chargers
        out.append(
            (
                f"storm {storm['connections']}{on}: all online within {seconds} s",
                f"{storm['all_online_after_kill_s']} s",
                back and storm["all_online_after_kill_s"] <= seconds,
            )
        )
    if peer:
        for key, name in (
            ("all_online_after_kill_s", "restart storm"),
            ("connect_boot_s", "connect + boot"),
        ):
            ratio = storm.get(f"{key}_vs_peer")
            out.append(
                (
                    f"{name} {storm['connections']}{on}: within 2x the peer",
                    f"{ratio}x ({storm[key]} s vs {peer[key]} s)",
                    storm["online"] >= storm["connections"] and (ratio or 1e9) <= 2,
                )
            )
    out.append(
        (
            f"storm{on}: SIGTERM with {storm['connections']} connections < 10 s",
            f"{storm['shutdown_s']} s",
            storm["shutdown_s"] < 10,
        )
    )
    out.append(
        (
            f"storm{on}: 0 errors, 0 lost transaction messages",
            f"{storm['errors']} errors, {storm['lost_in'] + storm['lost_out']} lost, "
            f"{storm['transactions_not_stopped']} tx not stopped",
            storm["errors"] == 0
            and storm["lost_in"] + storm["lost_out"] + storm["transactions_not_stopped"] == 0,
        )
    )
    return out


def v201_targets(report: dict, big: str | None) -> list[tuple[str, str, bool | None]]:
    """Issue 15: with 2.0.1 chargers, throughput and the restart storm within 20 % of 1.6."""
    out = []
    v16, v201 = (
        report.get("throughput", {}).get("ours", {}).get(big),
        report.get("throughput", {}).get("ours/2.0.1", {}).get(big),
    )
    if v16 and v201:
        ratio = v201["msg_per_s"] / max(v16["msg_per_s"], 0.1)
        pairs = list(
            zip(v16.get("runs_msg_per_s", []), v201.get("runs_msg_per_s", []), strict=False)
        )
        each = (
            f" (medians of {len(pairs)}; run by run "
            + ", ".join(f"{100 * b / max(a, 0.1):.0f} %" for a, b in pairs)
            + ")"
            if len(pairs) > 1
            else ""
        )
        out.append(
            (
                f"throughput @{big}: 2.0.1 chargers >= 80 % of 1.6 msg/s",
                f"{100 * ratio:.0f} %{each}",
                ratio >= 0.8,
            )
        )
    s16, s201 = report.get("storm", {}).get("ours"), report.get("storm", {}).get("ours/2.0.1")
    if s16 and s201:
        ratio = s201["all_online_after_kill_s"] / max(s16["all_online_after_kill_s"], 0.1)
        pairs = list(
            zip(s16.get("runs_all_online_s", []), s201.get("runs_all_online_s", []), strict=False)
        )
        # The runs of a pair face the same chargers (--storm-seed); pooled: every pair's time summed.
        each = (
            f"; medians of {len(pairs)}, pair by pair "
            + ", ".join(f"{b / max(a, 0.1):.2f}x" for a, b in pairs)
            + (f", pooled {sum(b for _, b in pairs) / max(sum(a for a, _ in pairs), 0.1):.2f}x")
            if len(pairs) > 1
            else ""
        )
        out.append(
            (
                f"storm {s201['connections']}: 2.0.1 all online within 1.2x of 1.6",
                f"{ratio:.2f}x "
                f"({s201['all_online_after_kill_s']} s vs {s16['all_online_after_kill_s']} s{each})",
                ratio <= 1.2 and s201["online"] >= s201["connections"] and s201["errors"] == 0,
            )
        )
        out.append(
            (
                "storm 2.0.1: 0 lost transaction messages",
                f"{s201['lost_in'] + s201['lost_out']} lost, {s201['transactions_not_stopped']} tx not stopped",
                s201["lost_in"] + s201["lost_out"] + s201["transactions_not_stopped"] == 0,
            )
        )
    return out


TABLE_HEAD = (
    "scenario",
    "server",
    "conns",
    "msg/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "CPU %",
    "KB/conn",
    "errors",
    "notes",
)


def print_table(report: dict, args: argparse.Namespace) -> str:
    """The report as one markdown table (a row per scenario and server), the scale-out and soak
    tables, then the targets."""
    rows = [
        *throughput_rows(report.get("throughput", {})),
        *fleet_rows(report),
        *storm_rows(report.get("storm", {})),
        *scaleout_rows(report.get("scaleout", {})),
        *proxy_rows(report),
        *logs_rows(report),
    ]
    lines = [*curve.method_lines(report), *(markdown_table(TABLE_HEAD, rows) if rows else [])]
    if "curve" in report:
        lines.extend(["", "Curve (min / **median** / max of each point):", ""])
        lines.extend(curve.table(report["curve"]))
    lines.extend(scaleout_table(report.get("scaleout", {})))
    lines.extend(soak.table(report))
    lines.extend(bounds.table(report))
    if "ratios" in report:
        lines.extend(
            guard.table(report["ratios"], report.get("load"), report.get("ratios_baseline"))
        )
    lines.append("")
    lines.append("Targets:")
    for name, value, ok in [
        *targets(report, args),
        *soak.targets(report),
        *bounds.targets(report),
        *guard_targets(report),
    ]:
        lines.append(f"  [{'PASS' if ok else 'MISS'}] {name}: {value}")
    return "\n".join(lines)


def guard_targets(report: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 48's targets on the ratios, and no ratio lost against the recorded baseline."""
    r = report.get("ratios")
    if not r:
        return []
    out: list[tuple[str, str, bool | None]] = []
    if r["closed_vs_peer"] is not None:
        out.append(
            (
                f"closed loop @{r['connections']}: >= 2.5x peer msg/s",
                f"{r['closed_vs_peer']:.2f}x",
                r["closed_vs_peer"] >= 2.5,
            )
        )
    if r["closed_share_of_echo"] is not None:
        out.append(
            (
                f"closed loop @{r['connections']}: >= 55 % of the echo",
                f"{100 * r['closed_share_of_echo']:.0f} %",
                r["closed_share_of_echo"] >= 0.55,
            )
        )
    baseline = report.get("ratios_baseline")
    if baseline:
        lost = guard.losses(r, baseline)
        out.append(
            (
                "no ratio loses > 10 % against bench/recorded/ratios-baseline.json",
                ", ".join(f"{k} -{100 * v:.0f} %" for k, v in lost.items()) or "none lost",
                not lost,
            )
        )
    return out


def markdown_table(head: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """`rows` under `head`, each column as wide as its widest cell (None is an empty cell)."""
    table = [head, *[tuple("" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]

    def fmt(r: tuple) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return [
        fmt(head),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(fmt(r) for r in table[1:]),
    ]


def _measured(r: dict) -> tuple:
    """The msg/s, latency, CPU, memory and error cells of a closed-loop row."""
    return (
        r["msg_per_s"],
        r["p50_ms"],
        r["p99_ms"],
        r["max_ms"],
        r["cpu_pct"],
        r["rss_per_conn_kb"],
        r["errors"],
    )


def throughput_rows(tp: dict) -> list[tuple]:
    rows = []
    for kind, by_n in tp.items():
        for n, r in by_n.items():
            note = throughput_note(tp, kind, n, r)
            if r.get("runs_msg_per_s"):
                note += f"{'; ' if note else ''}median of {r['runs_msg_per_s']}"
            rows.append(("throughput", kind, n, *_measured(r), note))
    return rows


def throughput_note(tp: dict, kind: str, n: str, r: dict) -> str:
    """2.0.1 chargers: against the same server with 1.6 chargers; our servers: against the
    plain-library peer and the echo servers, and the refused connections."""
    base = kind.split("/")[0]
    if kind != base:
        v16 = tp.get(base, {}).get(n)
        return f"{r['msg_per_s'] / max(v16['msg_per_s'], 0.1):.2f}x the 1.6 chargers" if v16 else ""
    if kind not in OURS:
        return ""
    parts = []
    peer, echo = tp.get("peer", {}).get(n), tp.get("echo", {}).get(n)
    if peer:
        parts.append(f"{r['msg_per_s'] / max(peer['msg_per_s'], 0.1):.2f}x peer")
    if echo:
        parts.append(f"{100 * r['msg_per_s'] / max(echo['msg_per_s'], 0.1):.0f}% of echo")
    if tp.get("echo-asgi", {}).get(n):
        parts.append(
            f"{100 * r['msg_per_s'] / max(tp['echo-asgi'][n]['msg_per_s'], 0.1):.0f}% of uvicorn echo"
        )
    if r.get("denials"):
        d = r["denials"]
        parts.append(
            f"refusals: unknown station {d['unknown_station']}, no subprotocol {d['no_subprotocol']}"
        )
    return ", ".join(parts)


def fleet_targets_59(fleet: dict) -> list[tuple[str, str, bool]]:
    """Issue 59's: a Heartbeat's p99 under 100 ms and every API command answered."""
    heartbeat = fleet.get("by_action", {}).get("Heartbeat", {}).get("p99_ms")
    commands = fleet.get("api_commands") or {}
    return [
        (
            f"fleet {fleet['connections']}: Heartbeat p99 < 100 ms",
            f"{heartbeat} ms",
            heartbeat is not None and heartbeat < 100,
        ),
        (
            "fleet: every API command answered",
            f"{commands.get('answered')} of {commands.get('sent')}",
            bool(commands.get("sent")) and commands.get("answered") == commands.get("sent"),
        ),
    ]


def fleet_rows(report: dict) -> list[tuple]:
    if "fleet" not in report:
        return []
    r = report["fleet"]
    per_action = "; ".join(
        f"{name} p99 {v['p99_ms']} ms" for name, v in r.get("by_action", {}).items()
    )
    note = f"connect+boot {r['connect_boot_s']} s; {per_action}"
    return [("fleet", "ours", r["connections"], *_measured(r), note)]


def storm_rows(storm: dict) -> list[tuple]:
    rows = []
    for kind, r in storm.items():
        note = (
            f"connect+boot {r['connect_boot_s']} s; all online {r['all_online_after_kill_s']} s after SIGTERM "
            f"(p50 {r['p50_online_after_kill_s']} s, shutdown {r['shutdown_s']} s, restart {r['restart_s']} s)"
        )
        if kind.split("/")[0] in OURS:
            note += storm_note_ours(r)
        rows.append(("storm", kind, r["connections"], "", "", "", "", "", "", r["errors"], note))
    return rows


def storm_note_ours(r: dict) -> str:
    """What only our servers report after a storm: lost messages, transactions not stopped, the
    ratio to the peer, the runs."""
    note = (
        f"; lost {r['lost_in']}+{r['lost_out']} of {r['tx_messages_answered']} tx msgs; "
        f"{r['transactions_not_stopped']}/{r['transactions']} tx not stopped"
    )
    if "all_online_after_kill_s_vs_peer" in r:
        note += (
            f"; {r['connect_boot_s_vs_peer']}x / {r['all_online_after_kill_s_vs_peer']}x the peer"
        )
    if r.get("runs_all_online_s"):
        note += f"; median of {r['runs_all_online_s']} s (losses summed over all)"
    return note


def scaleout_rows(scale: dict) -> list[tuple]:
    rows = []
    for procs, r in scale.items():
        note = f"{r['ratio_to_1']}x one process; {r.get('cpu_s_per_1k_msgs')} CPU-s/1k msgs"
        if "command_across_processes" in r:
            c = r["command_across_processes"]
            note += f"; API A -> charger on B: HTTP {c['http']} {'ok' if c['ok'] else 'FAILED'} ({c['round_trip_ms']} ms)"
        rows.append((f"scale-out x{procs}", "ours", r["connections"], *_measured(r), note))
    return rows


def proxy_rows(report: dict) -> list[tuple]:
    if "proxy" not in report:
        return []
    r = report["proxy"]
    note = f"{r['upstream_links']} upstream links held by the follower ({r['links_at_end']} at the end)"
    measured = (r["msg_per_s"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["cpu_pct"], "")
    return [("proxy", "ours", r["connections"], *measured, r["errors"], note)]


def logs_rows(report: dict) -> list[tuple]:
    if "logs" not in report:
        return []
    lg = report["logs"]
    return [
        (
            f"logs {lg['rows'] / 1e6:g}M",
            name,
            "",
            "",
            q["p50_ms"],
            f"p95 {q['p95_ms']}",
            q["max_ms"],
            "",
            "",
            q.get("errors", 0),
            q.get("note", ""),
        )
        for name, q in lg["queries"].items()
    ]


def scaleout_table(scale: dict) -> list[str]:
    """Scale-out as server CPU per message: on a shared 2-core box msg/s cannot double, but CPU
    per 1,000 messages staying flat shows the processes add no coordination cost."""
    if not scale:
        return []
    lines = [
        "",
        "Scale-out (CPU = user+sys of all server processes over the run):",
        "| processes | chargers | msg/s | vs 1 | server CPU-s | messages | CPU-s per 1,000 msgs | vs 1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for procs, r in scale.items():
        lines.append(
            f"| {procs} | {r['connections']} | {r['msg_per_s']} | {r.get('ratio_to_1')}x | "
            f"{r.get('server_cpu_s')} | {r.get('messages_answered')} | {r.get('cpu_s_per_1k_msgs')} | "
            f"{r.get('cpu_per_msg_to_1')}x |"
        )
    return lines


def pages_main(args: argparse.Namespace, *, quick: bool) -> int:
    """`--pages`: the server time of every portal and admin page (bench/pages.py), its own JSON and table."""
    from bench import pages

    if quick:
        args.pages_sessions, args.pages_log_rows, args.pages_repeat = 20_000, 50_000, 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "args": {
            k: v
            for k, v in vars(args).items()
            if k.startswith("pages") or k in ("quick", "keep_pages_db")
        },
    }
    started = time.time()
    pages.scenario(args, report, log=log)
    report["elapsed_s"] = round(time.time() - started, 1)
    report["table"] = pages.table(report)
    out = Path(args.out) if args.out != str(RESULTS / "latest.json") else RESULTS / "pages.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print()
    print(report["table"])
    print(f"\npages in {report['elapsed_s']} s; JSON: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny sizes (< 1 min)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma list of {SCENARIOS}")
    parser.add_argument("--conns", default="200,1000", help="throughput connection counts")
    parser.add_argument("--duration", type=float, default=15, help="seconds per closed-loop run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="closed-loop runs of our server per protocol and count, interleaved; the median is kept",
    )
    parser.add_argument(
        "--targets",
        default="ours,peer,echo,echo-asgi,daphne",
        help="throughput servers: ours (uvicorn), ours under ours-sansio (uvicorn's websockets-sansio), "
        "granian, hypercorn or daphne; peer, echo, echo-asgi",
    )
    parser.add_argument(
        "--curve-counts",
        default="100,250,500,1000,2000",
        help="curve: the closed loop's charger counts",
    )
    parser.add_argument("--curve-repeat", type=int, default=3, help="curve: runs of each point")
    parser.add_argument("--curve-targets", default="ours,peer,echo", help="curve: servers")
    parser.add_argument("--fleet", type=int, default=10_000)
    parser.add_argument(
        "--proxy-chargers", type=int, default=1000, help="proxy: chargers, each with a follower"
    )
    parser.add_argument("--fleet-duration", type=float, default=120)
    parser.add_argument(
        "--fleet-procs",
        type=int,
        default=1,
        help="fleet: server processes (`manage.py serve`), the chargers spread over them",
    )
    parser.add_argument(
        "--fleet-charging", type=float, default=0.3, help="fleet: the share of chargers charging"
    )
    parser.add_argument(
        "--fleet-command-every",
        type=float,
        default=5,
        help="fleet: seconds between the API commands sent while it runs",
    )
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument(
        "--storm-repeat",
        type=int,
        default=5,
        help="storms of our server per protocol, interleaved; the median is kept",
    )
    parser.add_argument(
        "--site-size",
        type=int,
        default=0,
        help="put the chargers N to a property with a power budget (issue 48: the storm with "
        "every charger under a budget); 0: one property without a budget",
    )
    parser.add_argument(
        "--energy-checked",
        action="store_true",
        help="seed the chargers as a fleet that ran here before: their 1.6 energy-reporting "
        "check done (default: a new fleet, every charger's first boot due its check)",
    )
    parser.add_argument(
        "--storm-no-backoff",
        action="store_true",
        help="storm: chargers retry a failed reconnect every 1 s instead of doubling their wait",
    )
    parser.add_argument(
        "--storm-procs",
        type=int,
        default=1,
        help="storm: our server processes (`manage.py serve`), the chargers spread over them",
    )
    parser.add_argument(
        "--storm-charging",
        type=float,
        default=0.3,
        help="storm: the share of chargers in a transaction when the server restarts",
    )
    parser.add_argument(
        "--storm-seed",
        default="storm",
        help="seeds who charges and every back-off; the runs of one pair share it",
    )
    parser.add_argument(
        "--storm-settle-s",
        type=float,
        default=10.0,
        help="storm: seconds after every charger is back before the connections in the "
        "database are counted again (online_in_db_10s_later); the smoke test's storm of ten "
        "counts them at once",
    )
    parser.add_argument(
        "--storm-targets",
        default="ours,peer",
        help="storm servers: peer, ours (uvicorn), ours-cluster (deploy/cluster.sh: one process per core behind "
        "HAProxy, the README's production shape) or ours under ours-sansio, granian, hypercorn, daphne",
    )
    parser.add_argument(
        "--protocols",
        default="1.6,2.0.1",
        help="charger OCPP versions for our servers in throughput and storm: 1.6, 2.0.1 or 1.6,2.0.1",
    )
    parser.add_argument(
        "--tls",
        type=int,
        default=0,
        choices=(0, 2, 3),
        help="throughput, curve, fleet and storm over TLS: every target behind HAProxy with "
        "deploy/haproxy/ocpp.cfg, the chargers at security profile 2 (password) or 3 (client "
        "certificate); bench/tls.py",
    )
    parser.add_argument("--procs", default="1,2,4")
    parser.add_argument("--scale-conns", type=int, default=1000)
    parser.add_argument("--log-rows", type=int, default=10_000_000)
    parser.add_argument("--log-requests", type=int, default=60)
    parser.add_argument(
        "--keep-log-db", action="store_true", help="keep (and reuse) the 10M-row database"
    )
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the servers during closed-loop runs into DIR"
    )
    parser.add_argument(
        "--soak", action="store_true", help="only the soak (bench/soak.py): RSS flat over an hour?"
    )
    parser.add_argument("--soak-minutes", type=float, default=60)
    parser.add_argument("--soak-chargers", type=int, default=2000)
    parser.add_argument("--soak-sample-s", type=float, default=30, help="RSS sample interval")
    parser.add_argument(
        "--soak-warmup-minutes",
        type=float,
        default=None,
        help="default 10, or the first third of a run shorter than 30 min",
    )
    parser.add_argument(
        "--pages",
        action="store_true",
        help="only the page timings (bench/pages.py): every portal and admin page, demo and big data",
    )
    parser.add_argument("--pages-scale", default="demo,big", help="pages: demo, big or demo,big")
    parser.add_argument(
        "--pages-repeat", type=int, default=5, help="pages: timed requests per page"
    )
    parser.add_argument("--pages-sessions", type=int, default=1_000_000)
    parser.add_argument("--pages-log-rows", type=int, default=10_000_000)
    parser.add_argument(
        "--keep-pages-db", action="store_true", help="keep (and reuse) the big pages database"
    )
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    parser.add_argument(
        "--baseline",
        default=str(Path(__file__).parent / "recorded" / "ratios-baseline.json"),
        help="a report whose ratios this run must not lose more than 10 %% of (bench/ratios.py)",
    )
    args = parser.parse_args(argv)
    if args.pages:
        return pages_main(args, quick=args.quick)
    if args.quick:  # tiny sizes for whatever was not given explicitly
        quick = {
            "conns": "20,50",
            "duration": 3,
            "fleet": 200,
            "proxy_chargers": 100,
            "fleet_duration": 5,
            "storm": 200,
            "procs": "1,2",
            "scale_conns": 50,
            "log_rows": 50_000,
            "log_requests": 10,
            "targets": "ours,peer,echo",
            "repeat": 1,
            "storm_repeat": 1,
            "curve_counts": "10,20",
            "curve_repeat": 2,
        }
        for name, value in quick.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    args.conns = [int(x) for x in str(args.conns).split(",") if x]
    args.procs = [int(x) for x in str(args.procs).split(",") if x]
    args.curve_counts = [int(x) for x in str(args.curve_counts).split(",") if x]
    args.protocols = [p for p in str(args.protocols).split(",") if p]
    if unknown := set(args.protocols) - {"1.6", "2.0.1"}:
        parser.error(f"unknown --protocols {sorted(unknown)}: 1.6 or 2.0.1")
    only = ["soak"] if args.soak else [s for s in args.only.split(",") if s]
    global PROFILE_DIR
    PROFILE_DIR = Path(args.profile) if args.profile else None
    raise_fd_limit()
    RESULTS.mkdir(parents=True, exist_ok=True)

    started = time.time()
    report: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "postgres": postgres_settings(),
        },
        "args": {k: v for k, v in vars(args).items()},
    }
    need_chargers = max(
        [
            *args.conns,
            args.fleet if "fleet" in only else 0,
            max(args.curve_counts) if "curve" in only else 0,
            args.storm if "storm" in only else 0,
            args.proxy_chargers if "proxy" in only else 0,
            args.scale_conns,
            args.soak_chargers if args.soak else 0,
        ]
    )
    log(f"machine: {report['machine']}")
    log(f"preparing {BENCH_DB} with {need_chargers} chargers")
    # BENCH_DB_PREPARED=1: the caller made BENCH_DB already migrated (the test suite clones its
    # migrated template: tests/perf/bench_smoke.py); it is seeded, not made again.
    prepared = os.environ.get("BENCH_DB_PREPARED") == "1"
    if not prepared:
        recreate_database(BENCH_DB)
    report["api_token"] = migrate_and_seed(
        BENCH_DB,
        need_chargers,
        migrate=not prepared,
        site_size=args.site_size,
        energy_checked=args.energy_checked,
        security_profile=args.tls or 1,
    )["api_token"]
    if args.tls:
        # The CA, the server's certificates and, at profile 3, one client certificate per charger.
        args.tls_dir = Path(args.out).resolve().parent / f"tls-{BENCH_DB}"
        shutil.rmtree(args.tls_dir, ignore_errors=True)
        tls.prepare(args.tls_dir, need_chargers if args.tls == 3 else 0, BENCH_DB)
        report["tls"] = {
            "security_profile": args.tls,
            "terminator": "HAProxy, deploy/haproxy/ocpp.cfg",
        }
    runners = {
        "throughput": scenario_throughput,
        "curve": scenario_curve,
        "fleet": scenario_fleet,
        "storm": scenario_storm,
        "scaleout": scenario_scaleout,
        "logs": scenario_logs,
        "soak": lambda a, r: soak.scenario(a, r, log=log, reset=reset_logs),
        "bounds": lambda a, r: bounds.scenario(a, r, log=log),
        "proxy": lambda a, r: proxy_bench.scenario(
            a, r, log=log, reset=reset_logs, summarize=summarize
        ),
    }
    failed = []
    sampler = guard.LoadSampler()
    try:
        for name in (*SCENARIOS, "soak"):
            if name in only:
                try:
                    runners[name](args, report)
                except Exception as exc:  # report what ran; a broken scenario is a failure
                    import traceback

                    traceback.print_exc()
                    log(f"{name} FAILED: {exc!r}")
                    report.setdefault("failures", {})[name] = repr(exc)
                    failed.append(name)
    finally:
        report["load"] = sampler.stop()
        drop_database(BENCH_DB)
    if "throughput" in report or "storm" in report:
        report["ratios"] = guard.ratios(report)
        baseline = Path(args.baseline)
        if baseline.exists():
            report["ratios_baseline"] = json.loads(baseline.read_text()).get("ratios")
    report["elapsed_s"] = round(time.time() - started, 1)
    report.pop("api_token", None)
    table = print_table(report, args)
    report["table"] = table
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table)
    print(f"\n{len(only)} scenario(s) in {report['elapsed_s']} s; JSON: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
