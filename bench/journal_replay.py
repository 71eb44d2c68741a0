"""How long the journal of a database outage takes to reach the database once it is back.

    python -m bench.journal_replay --chargers 100 --seconds 30

Writes the journal a process keeps through an outage of `--seconds` with `--chargers` chargers in
a session (each: MeterValues every 5 s, a Heartbeat every 30 s, a StatusNotification; the log
writer spills its rows every 50 ms), then times its replay (`chargers.plumbing.journal`) into a fresh
PostgreSQL database (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432; database
bench_journal, created and dropped here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta


def _database(url: str, name: str, create: bool) -> None:
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {name}")


def _seed(count: int) -> list[tuple[int, int]]:
    from backoffice.models import Organization, Property
    from chargers.models import Charger, ChargingSession

    org = Organization.objects.create(name="Journal bench")
    prop = Property.objects.create(organization=org, name="Depot")
    chargers = Charger.objects.bulk_create(
        [Charger(property=prop, station_id=f"JB-{n:04d}") for n in range(count)]
    )
    now = datetime.now(UTC)
    sessions = ChargingSession.objects.bulk_create(
        [
            ChargingSession(
                charger=c, connector_id=1, transaction_id=1000 + n, meter_start_wh=0, started_at=now
            )
            for n, c in enumerate(chargers)
        ]
    )
    return [(c.pk, s.transaction_id) for c, s in zip(chargers, sessions, strict=True)]


def _entries(chargers: list[tuple[int, int]], seconds: int) -> list[dict]:
    from chargers.messagelog.log import _journal_entry, make_row

    start = datetime.now(UTC)
    entries: list[dict] = []
    pending_rows: list = []
    step = 0.05
    ticks = int(seconds / step)
    for tick in range(ticks):
        at = start + timedelta(seconds=tick * step)
        for n, (pk, tx) in enumerate(chargers):
            # Spread each charger's messages over its period.
            if (tick + n) % int(5 / step) == 0:
                payload = {
                    "connectorId": 1,
                    "transactionId": tx,
                    "meterValue": [
                        {
                            "timestamp": at.isoformat(),
                            "sampledValue": [
                                {"value": str(tick * 10 + n), "unit": "Wh"},
                                {"value": "16.0", "measurand": "Current.Import", "unit": "A"},
                                {"value": "230.1", "measurand": "Voltage", "unit": "V"},
                            ],
                        }
                    ],
                }
                entries.append(
                    {
                        "action": "MeterValues",
                        "charger_id": pk,
                        "payload": payload,
                        "unique_id": f"m{tick}-{n}",
                        "received_at": at,
                    }
                )
                pending_rows.append(
                    make_row(
                        charger_id=pk,
                        direction="in",
                        message_type=2,
                        unique_id=f"m{tick}-{n}",
                        action="MeterValues",
                        payload=payload,
                        timestamp=at,
                    )[0]
                )
            if (tick + n) % int(30 / step) == 0:
                status = {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Charging",
                    "timestamp": at.isoformat(),
                }
                entries.append(
                    {
                        "action": "StatusNotification",
                        "charger_id": pk,
                        "payload": status,
                        "unique_id": f"s{tick}-{n}",
                        "received_at": at,
                    }
                )
                for action, payload in (("Heartbeat", {}), ("StatusNotification", status)):
                    pending_rows.append(
                        make_row(
                            charger_id=pk,
                            direction="in",
                            message_type=2,
                            unique_id=f"{action[0]}{tick}-{n}",
                            action=action,
                            payload=payload,
                            timestamp=at,
                        )[0]
                    )
        if pending_rows:
            # Our answers are logged too.
            pending_rows += [
                (*row[:2], "out", 3, *row[4:7], "{}", *row[8:]) for row in list(pending_rows)
            ]
            entries.append(_journal_entry(pending_rows))
            pending_rows = []
    return entries


async def _replay(entries: list[dict]) -> tuple[float, int]:
    from chargers.plumbing.journal import journal

    await journal.append(entries)
    started = time.perf_counter()
    journal.engage("bench")
    assert journal._recovery is not None
    await journal._recovery
    return time.perf_counter() - started, journal.replayed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    name = "bench_journal"
    _database(url, name, create=True)
    os.environ.update(
        DATABASE_URL=f"{url}/{name}",
        DJANGO_SETTINGS_MODULE="portal.settings",
        OCPP_JOURNAL_DIR=tempfile.mkdtemp(prefix="journal-bench-"),
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from chargers.models import MeterValue, OcppMessage

    try:
        call_command("migrate", verbosity=0)
        entries = _entries(_seed(args.chargers), args.seconds)
        connections.close_all()
        elapsed, replayed = asyncio.run(_replay(entries))
        print(
            f"{args.chargers} chargers, {args.seconds} s outage: {replayed} journal entries "
            f"({MeterValue.objects.count()} meter values, {OcppMessage.objects.count()} log rows) "
            f"replayed in {elapsed:.1f} s"
        )
    finally:
        from backoffice import db

        db.shutdown()
        connections.close_all()
        _database(url, name, create=False)


if __name__ == "__main__":
    main()
