"""`python -m bench.connections`: the PostgreSQL connections of one `serve` process under a
burst of API writes (1,000 POST /api/v1/chargers/, 8 clients at a time).

The server's connections are counted in pg_stat_activity every 20 ms by the client ports the
process holds, so a connection outside its two pools would be counted too. Prints one JSON
line: the peak, the documented bound (DB_POOL_SIZE + DB_ASYNC_POOL_SIZE, README
"Connections"), what the process still holds 5 s after the burst, and the status codes.
Numbers go in docs/performance.md, "Connections". Needs PostgreSQL (BENCH_PG_URL) and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import psutil
import psycopg

from bench.servers import PG_ROOT, PY, ROOT, Server, server_env

DB = "bench_connections"


def prepare() -> tuple[str, int]:
    """A fresh database with the bench organization; the API token and the property id."""
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    env = server_env(DB)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    out = subprocess.run(
        [PY, "-m", "bench.seed", "--chargers", "1"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(out.stdout.strip().splitlines()[-1])["api_token"]
    with psycopg.connect(f"{PG_ROOT}/{DB}") as conn:
        row = conn.execute(
            "SELECT id FROM backoffice_property WHERE name = 'Bench depot'"
        ).fetchone()
    assert row is not None
    return token, row[0]


def server_connections(pg: psycopg.Connection, pid: int) -> int:
    """How many connections process `pid` holds to this database, seen from PostgreSQL."""
    pg_port = urlsplit(PG_ROOT).port or 5432
    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return 0
    ports = [s.laddr.port for s in sockets if s.raddr and s.raddr.port == pg_port]
    if not ports:
        return 0
    row = pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND client_port = ANY(%s)",
        [DB, ports],
    ).fetchone()
    return row[0] if row else 0


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.samples = pid, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(f"{PG_ROOT}/{DB}", autocommit=True) as pg:
            while not self.done.is_set():
                self.peak = max(self.peak, server_connections(pg, self.pid))
                self.samples += 1
                time.sleep(0.02)


async def burst(url: str, token: str, property_id: int, writes: int, clients: int) -> Counter:
    statuses: Counter = Counter()
    numbers = iter(range(writes))
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers={"Authorization": f"Token {token}"}
    ) as client:

        async def worker() -> None:
            for n in numbers:
                try:
                    reply = await client.post(
                        "/api/v1/chargers/",
                        json={"station_id": f"CONN-{n:05d}", "property": property_id},
                    )
                    statuses[str(reply.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return statuses


def measure(writes: int, clients: int) -> dict:
    token, property_id = prepare()
    env = server_env(DB)
    env.pop("CONN_MAX_AGE", None)  # production's defaults for everything about connections
    server = Server("ours", env=env)
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    try:
        time.sleep(2)
        sampler = Sampler(pid)
        sampler.start()
        started = time.monotonic()
        statuses = asyncio.run(burst(server.http_url, token, property_id, writes, clients))
        seconds = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        time.sleep(5)
        with psycopg.connect(f"{PG_ROOT}/{DB}", autocommit=True) as pg:
            after = server_connections(pg, pid)
    finally:
        server.terminate()
    bound = int(env.get("DB_POOL_SIZE") or int(env.get("DB_EXECUTOR_THREADS") or 8) + 4) + int(
        env.get("DB_ASYNC_POOL_SIZE") or 8
    )
    return {
        "writes": writes,
        "clients": clients,
        "seconds": round(seconds, 1),
        "writes_per_s": round(writes / seconds, 1),
        "peak_connections": sampler.peak,
        "bound": bound,
        "held_5s_after": after,
        "samples": sampler.samples,
        "statuses": dict(statuses),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.connections", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="100 writes")
    args = parser.parse_args(argv)
    result = measure(100 if args.quick else args.writes, args.clients)
    print(json.dumps(result))
    ok = result["peak_connections"] <= result["bound"] and set(result["statuses"]) == {"201"}
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
