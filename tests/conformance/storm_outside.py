"""A restart storm checked from outside, independent of `make bench`'s load generator.

Runs the README's production shape (`manage.py migrate`, `manage.py serve`, a Celery worker, on
PostgreSQL + Redis, chargers with their own passwords at security profile 1) and drives it with
chargers built on the `ocpp` package's own 1.6 ChargePoint (its framing, its call/result
matching, its schema validation), not the bench's raw-frame chargers. N chargers connect at once
and boot, 30 % start a transaction; the server gets SIGTERM and the same command starts it again;
every charger reconnects after a random 0-5 s back-off (doubling after each failed attempt),
boots, reports its status and stops its transaction. Printed: connect + boot time, time until all
are back after SIGTERM (and p50), and from the database that every transaction a charger saw
stopped is stopped. Not part of `make test` (minutes, thousands of sockets); docs/performance.md
("Checked from outside") has the figures next to the bench's.

    .venv/bin/python -m tests.conformance.storm_outside --chargers 3000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import random
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _charger(
    station: str, url: str, password: str, charging: bool, phase: mp.Value, done: list
) -> None:
    import websockets
    from ocpp.v16 import ChargePoint, call

    auth = base64.b64encode(f"{station}:{password}".encode()).decode()
    transaction_id = None
    meter = random.randint(0, 50_000)
    delay = 0.0
    ever_up = False
    while phase.value != 2:
        await asyncio.sleep(delay)
        attempt = time.time()
        try:
            async with websockets.connect(
                f"{url}/{station}",
                subprotocols=["ocpp1.6"],
                open_timeout=60,
                ping_interval=None,
                additional_headers=[("Authorization", f"Basic {auth}")],
            ) as ws:
                cp = ChargePoint(station, ws, response_timeout=60)
                reader = asyncio.create_task(cp.start())
                boot = await cp.call(
                    call.BootNotification(
                        charge_point_model="Outside-1", charge_point_vendor="Check"
                    )
                )
                if boot.status != "Accepted":
                    raise RuntimeError(f"BootNotification {boot.status}")
                await cp.call(
                    call.StatusNotification(
                        connector_id=1,
                        error_code="NoError",
                        status="Charging"
                        if transaction_id or (not ever_up and charging)
                        else "Available",
                    )
                )
                if not ever_up and charging:
                    started = await cp.call(
                        call.StartTransaction(
                            connector_id=1, id_tag="BENCHTAG", meter_start=meter, timestamp=_now()
                        )
                    )
                    transaction_id = started.transaction_id
                elif transaction_id is not None:
                    meter += 1000
                    await cp.call(
                        call.StopTransaction(
                            meter_stop=meter,
                            timestamp=_now(),
                            transaction_id=transaction_id,
                            reason="PowerLoss",
                        )
                    )
                    done.append(("stopped", transaction_id))
                    transaction_id = None
                done.append(("back" if ever_up else "up", time.time()))
                if ever_up:
                    done.append(("took", time.time() - attempt))  # the server's share of "back"
                ever_up = True
                try:
                    await reader  # until the server closes the socket
                except Exception:
                    pass
            delay = random.uniform(0, 5)  # it was up: back off, then try again
        except Exception as exc:
            done.append(("failed", f"{type(exc).__name__}: {str(exc)[:60]}"))
            delay = max(delay * 2, 1.0)  # a failed attempt doubles the back-off


def _worker(stations: list[tuple[str, bool]], url: str, phase: mp.Value, results: mp.Queue) -> None:
    import uvloop

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    done: list = []

    async def main() -> None:
        tasks = [
            asyncio.create_task(_charger(s, url, f"bench-password-{s}", charging, phase, done))
            for s, charging in stations
        ]
        reported = 0
        while phase.value != 2:
            await asyncio.sleep(0.2)
            if len(done) > reported:
                results.put(done[reported:])
                reported = len(done)
        results.put(done[reported:])
        for task in tasks:
            task.cancel()

    uvloop.run(main())


def _env(db: str, redis_db: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "SECRET_KEY": "outside-check-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "ALLOW_SANDBOX_PAYMENTS": "true",  # no real payments in this run
        "OCPP_JOURNAL_DIR": f"/tmp/{db}-journal",
    }


def _procfile(name: str) -> list[str]:
    """The Procfile's command for a process type (production runs exactly that)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return shlex.split(line.split(":", 1)[1])
    raise LookupError(name)


def _psql(db: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chargers", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default="storm_outside")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="the same storm against the bench's peer (the ocpp package + websockets, no database)",
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="no Celery worker (as `make bench` runs ours)"
    )
    args = parser.parse_args()
    env = _env(args.db, 12)
    if args.peer or args.no_worker:
        worker = subprocess.Popen(
            ["sleep", "3600"], start_new_session=True
        )  # killed by group below
    if args.peer:
        serve = [PYTHON, "-m", "bench.peer_ocpp", "--port", str(args.port)]
    else:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", args.db], check=True
        )
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.db], check=True)
        subprocess.run(["redis-cli", "-n", "12", "flushdb"], check=True, capture_output=True)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [PYTHON, "-m", "bench.seed", "--chargers", str(args.chargers)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        serve = [PYTHON, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(args.port)]
    if not (args.peer or args.no_worker):
        worker = subprocess.Popen(_procfile("worker"), cwd=ROOT, env=env, start_new_session=True)
    server = subprocess.Popen(serve, cwd=ROOT, env=env)
    time.sleep(3)
    url = f"ws://127.0.0.1:{args.port}/ocpp"
    stations = [(f"BENCH-{n:05d}", random.random() < 0.3) for n in range(args.chargers)]
    phase = mp.Value("i", 0)
    results: mp.Queue = mp.Queue()
    events: list = []
    t0 = time.time()
    procs = [
        mp.Process(target=_worker, args=(stations[i :: args.workers], url, phase, results))
        for i in range(args.workers)
    ]
    for proc in procs:
        proc.start()

    def drain(until: float) -> None:
        while time.time() < until:
            try:
                events.extend(results.get(timeout=0.2))
            except Exception:
                pass

    while (
        sum(1 for kind, _ in events if kind == "up") < args.chargers
        and time.time() - t0 < 600
        and any(proc.is_alive() for proc in procs)
    ):
        drain(time.time() + 1)
    ups = [t for kind, t in events if kind == "up"]
    connect_boot = max(ups) - t0 if len(ups) == args.chargers else None
    drain(time.time() + 10)  # metering time, as in the bench
    killed = time.time()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    shutdown = time.time() - killed
    server = subprocess.Popen(serve, cwd=ROOT, env=env)
    while (
        sum(1 for kind, _ in events if kind == "back") < args.chargers
        and time.time() - killed < 900
    ):
        drain(time.time() + 1)
    backs = sorted(t - killed for kind, t in events if kind == "back")
    phase.value = 2
    drain(time.time() + 2)
    stopped = {tx for kind, tx in events if kind == "stopped"}
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    time.sleep(1)
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    active, stored = 0, len(stopped)  # the peer stores nothing
    if not args.peer:
        active = int(
            _psql(args.db, "SELECT count(*) FROM chargers_chargingsession WHERE status = 'active'")
        )
        ids = ",".join(str(tx) for tx in stopped) or "0"
        stored = int(
            _psql(
                args.db,
                f"SELECT count(*) FROM chargers_chargingsession WHERE transaction_id IN ({ids}) "
                "AND status = 'completed' AND stop_reason = 'PowerLoss'",
            )
        )
    print(
        f"{'peer' if args.peer else 'ours'}, chargers {args.chargers}: connect + boot {connect_boot and round(connect_boot, 1)} s; "
        f"back after SIGTERM {len(backs)}/{args.chargers}, all {backs[-1] if backs else 0:.1f} s "
        f"(p50 {statistics.median(backs) if backs else 0:.1f} s, shutdown {shutdown:.1f} s); "
        f"stops answered {len(stopped)}, stored {stored}; sessions still active {active}"
    )
    took = sorted(t for kind, t in events if kind == "took")
    if took:
        print(
            f"the successful reconnect itself (connect to stop answered): p50 {statistics.median(took):.2f} s, "
            f"p99 {took[int(len(took) * 0.99)]:.2f} s, max {took[-1]:.2f} s"
        )
    failures = Counter(reason for kind, reason in events if kind == "failed")
    print(f"failed attempts: {sum(failures.values())}", dict(failures.most_common(5)))
    sys.exit(
        0
        if connect_boot and len(backs) == args.chargers and stored == len(stopped) and not active
        else 1
    )


if __name__ == "__main__":
    main()
