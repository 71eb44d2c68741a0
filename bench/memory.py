"""`python -m bench.memory`: the server's resident memory (RSS) before and after

- 10,000 refused handshakes (unknown station ids, each different),
- 10,000 reconnects of known chargers (connect, BootNotification, close),
- 1 MB frames from one charger (1,000 of them, one at a time),

each measured against a fresh server (PostgreSQL + Redis, like production). Numbers go in
docs/performance.md, "Memory". Sizes shrink with --quick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

import psycopg
import websockets

from bench.servers import PG_ROOT, PY, ROOT, Server, server_env

DB = "bench_memory"


def prepare(chargers: int) -> None:
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    env = server_env(DB)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run(
        [PY, "-m", "bench.seed", "--chargers", str(chargers)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


async def _each(n: int, one, concurrency: int = 50) -> int:
    """Run one(i) for i in range(n), `concurrency` at a time; return how many failed."""
    sem = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> bool:
        async with sem:
            try:
                return await one(i)
            except (OSError, TimeoutError, websockets.WebSocketException):
                return False

    return sum(not ok for ok in await asyncio.gather(*(guarded(i) for i in range(n))))


async def refused(url: str, n: int) -> int:
    async def one(i: int) -> bool:
        try:
            await websockets.connect(
                f"{url}/UNKNOWN-{i:06d}", subprotocols=["ocpp1.6"], open_timeout=20
            )
        except websockets.InvalidStatus:
            return True
        return False  # accepted: should not happen

    return await _each(n, one)


async def reconnects(url: str, n: int, chargers: int) -> int:
    async def one(i: int) -> bool:
        station = f"BENCH-{i % chargers:05d}"
        async with websockets.connect(
            f"{url}/{station}",
            subprotocols=["ocpp1.6"],
            open_timeout=20,
            additional_headers=_auth(station),
        ) as ws:
            await ws.send(
                json.dumps(
                    [
                        2,
                        "b",
                        "BootNotification",
                        {"chargePointVendor": "V", "chargePointModel": "M"},
                    ]
                )
            )
            await asyncio.wait_for(ws.recv(), 20)
        return True

    return await _each(n, one)


async def big_frames(url: str, n: int) -> int:
    errors = 0
    data = "x" * (1024 * 1024 - 200)
    async with websockets.connect(
        f"{url}/BENCH-00000",
        subprotocols=["ocpp1.6"],
        max_size=2**21,
        additional_headers=_auth("BENCH-00000"),
    ) as ws:
        for i in range(n):
            await ws.send(
                json.dumps([2, f"big{i}", "DataTransfer", {"vendorId": "bench", "data": data}])
            )
            reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
            errors += reply[0] != 3
    return errors


def measure(name: str, run) -> dict:
    server = Server("ours", env=server_env(DB))
    server.start()
    try:
        time.sleep(2)
        before = server.rss()
        started = time.monotonic()
        errors = asyncio.run(run(server.ws_url))
        seconds = time.monotonic() - started
        time.sleep(5)  # let the log writer drain and buffers go
        after = server.rss()
    finally:
        server.terminate()
    return {
        "scenario": name,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "delta_mb": round((after - before) / 2**20, 1),
        "seconds": round(seconds, 1),
        "errors": errors,
    }


def _auth(station: str) -> list[tuple[str, str]]:
    """HTTP Basic with the bench charger's password (bench.seed seeds security profile 1)."""
    import base64

    from bench.seed import password

    return [
        (
            "Authorization",
            "Basic " + base64.b64encode(f"{station}:{password(station)}".encode()).decode(),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, frames, chargers = (500, 20, 50) if args.quick else (10_000, 1_000, 200)
    prepare(chargers)
    results = [
        measure(f"{n} refused handshakes", lambda url: refused(url, n)),
        measure(f"{n} reconnects", lambda url: reconnects(url, n, chargers)),
        measure(f"{frames} frames of 1 MB", lambda url: big_frames(url, frames)),
    ]
    for row in results:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
