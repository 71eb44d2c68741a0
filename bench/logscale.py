"""Log at scale: N OcppMessage rows loaded with COPY, then the Logs API timed over HTTP.

Rows go to 1,000 chargers; BENCH-00000 holds 10 % of them (the busy charger whose Logs
tab is opened). Actions follow a real mix (Heartbeat, MeterValues, StatusNotification,
transactions, Authorize); idTags come from a pool of 5,000.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from bench.servers import BENCH_DB, PG_ROOT, Server, server_env

LOG_DB = f"{BENCH_DB}_log"
CHARGERS = 1000
TABLE = "chargers_ocppmessage"
ACTIONS = (
    ["Heartbeat"] * 40
    + ["MeterValues"] * 45
    + ["StatusNotification"] * 9
    + ["StartTransaction"] * 2
    + ["StopTransaction"] * 2
    + ["Authorize"] * 2
)
TAGGED = {"StartTransaction", "StopTransaction", "Authorize"}


def _payload(action: str, tag: str) -> str:
    if action == "MeterValues":
        return (
            '{"connectorId": 1, "transactionId": 1234, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", '
            '"sampledValue": [{"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}'
        )
    if action == "StatusNotification":
        return '{"connectorId": 1, "errorCode": "NoError", "status": "Charging"}'
    if action in TAGGED:
        return json.dumps(
            {"idTag": tag, "connectorId": 1, "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}
        )
    return "{}"


def _generate(conn, rows: int, charger_ids: list[int], log) -> None:
    busy, others = charger_ids[0], charger_ids[1:]
    tags = [f"TAG{n:06d}" for n in range(5000)]
    now = datetime.now(UTC)
    start = now - timedelta(days=60)
    step = (now - start) / rows
    rnd = random.Random(7)
    chunk: list[str] = []
    copied = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY {TABLE} (charger_id, timestamp, direction, message_type, unique_id, action, id_tag, payload, raw) "
            "FROM STDIN"
        ) as copy,
    ):
        for i in range(rows):
            charger = busy if rnd.random() < 0.1 else others[rnd.randrange(len(others))]
            action = ACTIONS[rnd.randrange(len(ACTIONS))]
            tag = tags[rnd.randrange(5000)] if action in TAGGED else ""
            direction = "in" if i % 2 == 0 else "out"
            mtype = "2" if direction == "in" else "3"
            payload = _payload(action, tag) if direction == "in" else "{}"
            ts = (start + step * i).isoformat()
            chunk.append(
                f"{charger}\t{ts}\t{direction}\t{mtype}\tu{i}\t{action}\t{tag}\t{payload}\t\n"
            )
            if len(chunk) >= 20000:
                copy.write("".join(chunk))
                copied += len(chunk)
                chunk.clear()
                if copied % 1_000_000 == 0:
                    log(f"  logs: {copied:,} rows copied")
        if chunk:
            copy.write("".join(chunk))


def _prepare(rows: int, keep: bool, log) -> dict:
    from bench.__main__ import database_exists, migrate_and_seed, recreate_database

    url = f"{PG_ROOT}/{LOG_DB}"
    if keep and database_exists(LOG_DB):
        with psycopg.connect(url) as conn:
            have = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [TABLE]
            ).fetchone()
        if have and abs(have[0] - rows) <= rows * 0.01:
            log(f"logs: reusing {LOG_DB} (~{have[0]:,} rows)")
            token = migrate_and_seed(LOG_DB, CHARGERS)["api_token"]
            return {"api_token": token, "generate_s": None, "reused": True}
    recreate_database(LOG_DB)
    token = migrate_and_seed(LOG_DB, CHARGERS)["api_token"]
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        charger_ids = [
            pk
            for (pk,) in conn.execute(
                "SELECT id FROM chargers_charger WHERE station_id LIKE 'BENCH-0%%' ORDER BY station_id"
            ).fetchall()
        ]
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT LIKE '%%pkey'",
            [TABLE],
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET session_replication_role = replica")  # skip the FK trigger per row
        log(f"logs: COPY {rows:,} rows into {LOG_DB}")
        _generate(conn, rows, charger_ids, log)
        conn.execute("SET session_replication_role = DEFAULT")
        copied_s = time.monotonic() - started
        log(f"logs: copied in {copied_s:.0f} s; building {len(indexes)} indexes")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute(f"VACUUM ANALYZE {TABLE}")
    return {
        "api_token": token,
        "generate_s": round(time.monotonic() - started, 1),
        "copy_s": round(copied_s, 1),
        "reused": False,
    }


def run(rows: int, *, keep: bool, requests: int, log) -> dict:
    from bench.__main__ import drop_database, pct

    prepared = _prepare(rows, keep, log)
    server = Server("ours", env=server_env(LOG_DB))
    server.start()
    headers = {"Authorization": f"Token {prepared['api_token']}"}
    try:
        with httpx.Client(base_url=server.http_url, headers=headers, timeout=30) as client:
            base = "/api/v1/chargers/BENCH-00000/logs/"
            first = client.get(base).json()["results"]
            tag = next(
                (
                    r["id_tag"]
                    for r in client.get(base, params={"action": "StartTransaction"}).json()[
                        "results"
                    ]
                    if r["id_tag"]
                ),
                "TAG000001",
            )
            queries = {
                "first page": (base, {}),
                "next page (keyset)": (base, {"before": first[-1]["id"]} if first else {}),
                "action=StopTransaction": (base, {"action": "StopTransaction"}),
                "search action": (base, {"search": "Authorize"}),
                "search idTag": (base, {"search": tag}),
                "quiet charger first page": ("/api/v1/chargers/BENCH-00500/logs/", {}),
            }
            results = {}
            for name, (path, params) in queries.items():
                timings, errors, count = [], 0, 0
                for i in range(requests + 3):
                    started = time.perf_counter()
                    response = client.get(path, params=params)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        errors += 1
                        continue
                    count = len(response.json()["results"])
                    if i >= 3:
                        timings.append(elapsed)
                results[name] = {
                    "p50_ms": round(pct(timings, 50), 1),
                    "p95_ms": round(pct(timings, 95), 1),
                    "max_ms": round(max(timings), 1),
                    "errors": errors,
                    "rows": count,
                    "note": f"{count} rows/page",
                }
                log(f"  logs {name}: {results[name]}")
    finally:
        server.terminate()
        if not keep:
            drop_database(LOG_DB)
    return {
        "rows": rows,
        **{k: v for k, v in prepared.items() if k != "api_token"},
        "queries": results,
    }
