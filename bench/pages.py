"""`make bench BENCH_ARGS=--pages` / `python -m bench --pages`: the server time of every portal and
admin page, with the demo data and at scale (1,000 chargers, 1M sessions, 1M decisions, 10M log rows).

Each page is requested in-process through Django's test client (the full middleware stack, no
network), as an owner of the host organization (portal) and as a superuser (admin): one warm-up,
then `--pages-repeat` timed requests; the median and the maximum are reported with the number of
SQL queries. The big database is filled in the database itself (INSERT … SELECT generate_series:
on a shared 2-core box a Python COPY feeder starves; indexes dropped and rebuilt, like bench/logscale)
and kept for the next run with `--keep-pages-db`.

    python -m bench --pages                         # demo + big (~10 min the first time)
    python -m bench --pages --pages-scale demo      # the demo data only (seconds)
    python -m bench --pages --keep-pages-db         # keep / reuse the big database
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import psycopg

from bench.servers import BENCH_DB, PG_ROOT, PY, ROOT, server_env

DEMO_DB = f"{BENCH_DB}_pages_demo"
BIG_DB = f"{BENCH_DB}_pages_big"
BIG_CHARGERS = 1000
BIG_SESSIONS = 1_000_000
BIG_LOG_ROWS = 10_000_000
HOST_USER = "pages-host@example.com"
# Targets from issue 17: server time per page.
TARGET_MS = {"demo": 300, "big": 500}


# -- preparing the databases -----------------------------------------------------------------------


def _manage(database: str, *command: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *command],
        cwd=ROOT,
        env=server_env(database, redis=False),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def prepare_demo(log: Any) -> None:
    from bench.__main__ import recreate_database

    recreate_database(DEMO_DB)
    _manage(DEMO_DB, "migrate", "--noinput", "-v", "0")
    _manage(DEMO_DB, "load_demo")
    _manage(DEMO_DB, "load_demo_billing")
    log(f"pages: {DEMO_DB} has the demo data")


def _copy_without_indexes(conn: psycopg.Connection, table: str, fill: Any, log: Any) -> float:
    """Drop the table's secondary indexes, fill it (one INSERT … SELECT generate_series in the
    database: the rows never pass through Python), rebuild them; return seconds."""
    started = time.monotonic()
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        [table],  # unique: kept
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("SET session_replication_role = replica")  # skip the FK trigger per row
    fill()
    conn.execute("SET session_replication_role = DEFAULT")
    log(
        f"pages: {table} filled in {time.monotonic() - started:.0f} s; rebuilding {len(indexes)} indexes"
    )
    conn.execute("SET maintenance_work_mem = '512MB'")
    for _, definition in indexes:
        conn.execute(definition)
    conn.execute(f"VACUUM ANALYZE {table}")
    return time.monotonic() - started


SESSIONS_SQL = """
INSERT INTO chargers_chargingsession (charger_id, connector_id, transaction_id, id_tag, id_tag_status, started_at,
    stopped_at, meter_start_wh, meter_stop_wh, stop_reason, stop_id_tag, status, received_start_at, received_stop_at,
    ocpp_transaction_id{extra_columns})
SELECT c.ids[CASE WHEN random() < 0.1 THEN 1 ELSE 2 + floor(random() * (c.n - 1))::int END], 1, 1000000 + g,
       t.tag, 'Accepted', s.began, s.began + (20 + floor(random() * 220)) * interval '1 minute',
       m.meter, m.meter + 1000 + floor(random() * 59000)::bigint, 'EVDisconnected', t.tag, 'completed', s.began,
       s.began + interval '4 hours', ''{extra_values}
FROM generate_series(1, %(rows)s) g
CROSS JOIN (SELECT array_agg(id ORDER BY station_id) ids, count(*) n FROM chargers_charger
            WHERE station_id LIKE 'BENCH-0%%') c
CROSS JOIN LATERAL (SELECT now() - interval '730 days' + g * (interval '730 days' / %(rows)s) AS began) s
CROSS JOIN LATERAL (SELECT 'TAG' || lpad((floor(random() * 5000) + g * 0)::int::text, 6, '0') AS tag) t
CROSS JOIN LATERAL (SELECT floor(random() * 5000000 + g * 0)::bigint AS meter) m
"""

DECISIONS_SQL = """
INSERT INTO authorization_authorizationdecision (created_at, uid, uid_normalized, organization_id, station_id,
    connector_id, context, status, reason, step, message, ocpp_unique_id{extra_columns})
SELECT s.started_at, s.id_tag, s.id_tag, %(org)s, ch.station_id, 1, 'local',
       CASE WHEN s.id %% 20 = 0 THEN 'Invalid' ELSE 'Accepted' END,
       CASE WHEN s.id %% 20 = 0 THEN 'unknown_token' ELSE 'accepted_own' END,
       CASE WHEN s.id %% 20 = 0 THEN 2 ELSE 13 END,
       CASE WHEN s.id %% 20 = 0 THEN 'Unknown card.' ELSE 'Accepted.' END, 'u' || s.id{extra_values}
FROM chargers_chargingsession s JOIN chargers_charger ch ON ch.id = s.charger_id
WHERE s.transaction_id >= 1000000
"""

# The Logs mix of bench/logscale (Heartbeat, MeterValues, StatusNotification, transactions), in SQL.
LOGS_SQL = """
INSERT INTO chargers_ocppmessage (charger_id, timestamp, direction, message_type, unique_id, action, id_tag, payload,
    raw{extra_columns})
SELECT c.ids[CASE WHEN random() < 0.1 THEN 1 ELSE 2 + floor(random() * (c.n - 1))::int END],
       now() - interval '60 days' + g * (interval '60 days' / %(rows)s),
       CASE WHEN g %% 2 = 0 THEN 'in' ELSE 'out' END, CASE WHEN g %% 2 = 0 THEN 2 ELSE 3 END, 'u' || (g / 2), a.action,
       CASE WHEN a.action IN ('StartTransaction', 'StopTransaction', 'Authorize')
            THEN 'TAG' || lpad((floor(random() * 5000))::int::text, 6, '0') ELSE '' END,
       CASE WHEN g %% 2 = 1 THEN '{{}}'::jsonb
            WHEN a.action = 'MeterValues' THEN '{{"connectorId": 1, "transactionId": 1234, "meterValue": [{{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{{"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}}]}}]}}'::jsonb
            WHEN a.action = 'StatusNotification' THEN '{{"connectorId": 1, "errorCode": "NoError", "status": "Charging"}}'::jsonb
            ELSE '{{}}'::jsonb END,
       ''{extra_values}
FROM generate_series(1, %(rows)s) g
CROSS JOIN (SELECT array_agg(id ORDER BY station_id) ids, count(*) n FROM chargers_charger
            WHERE station_id LIKE 'BENCH-0%%') c
CROSS JOIN LATERAL (SELECT (ARRAY['Heartbeat', 'MeterValues', 'StatusNotification', 'StartTransaction',
                                  'StopTransaction', 'Authorize'])[
    CASE WHEN r < 0.40 THEN 1 WHEN r < 0.85 THEN 2 WHEN r < 0.94 THEN 3 WHEN r < 0.96 THEN 4 WHEN r < 0.98 THEN 5 ELSE 6 END
] AS action FROM (SELECT random() + g * 0 AS r) x) a
"""


def _with_required(conn: psycopg.Connection, sql: str, table: str) -> str:
    """Fill NOT NULL columns without a default that `sql` does not name (fields added later) with
    the empty value of their type, so the bench keeps working as models grow."""
    named = sql.split("(", 1)[1].split(")", 1)[0].replace("{extra_columns}", "")
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL AND column_name <> 'id'",
        [table],
    ).fetchall()
    empty = {"boolean": "false", "jsonb": "'{}'::jsonb", "json": "'{}'::json"}
    extra = [
        (
            name,
            empty.get(
                kind,
                "0"
                if kind in ("integer", "bigint", "smallint", "numeric", "double precision")
                else "''",
            ),
        )
        for name, kind in rows
        if name not in {c.strip() for c in named.replace("\n", " ").split(",")}
    ]
    return sql.format(
        extra_columns="".join(f", {name}" for name, _ in extra),
        extra_values="".join(f", {value}" for _, value in extra),
    )


def prepare_big(*, keep: bool, sessions: int, log_rows: int, log: Any) -> dict:
    from bench.__main__ import database_exists, migrate_and_seed, recreate_database

    url = f"{PG_ROOT}/{BIG_DB}"
    if keep and database_exists(BIG_DB):
        with psycopg.connect(url) as conn:
            have = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = 'chargers_ocppmessage'"
            ).fetchone()
        if have and abs(have[0] - log_rows) <= log_rows * 0.01:
            log(f"pages: reusing {BIG_DB} (~{have[0]:,} log rows)")
            _manage(BIG_DB, "migrate", "--noinput", "-v", "0")
            return {"reused": True}
    recreate_database(BIG_DB)
    migrate_and_seed(BIG_DB, BIG_CHARGERS)
    _manage(BIG_DB, "load_demo")  # a host organization with its own pages, next to the big fleet
    timings: dict[str, Any] = {"reused": False}
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT id FROM backoffice_organization WHERE name = 'Bench fleet'"
        ).fetchone()
        assert found is not None, "the bench fleet is seeded above"
        org_id = found[0]
        log(f"pages: {sessions:,} sessions and decisions into {BIG_DB}")
        timings["sessions_s"] = round(
            _copy_without_indexes(
                conn,
                "chargers_chargingsession",
                lambda: conn.execute(
                    _with_required(conn, SESSIONS_SQL, "chargers_chargingsession"),
                    {"rows": sessions},
                ),
                log,
            ),
            1,
        )
        timings["decisions_s"] = round(
            _copy_without_indexes(
                conn,
                "authorization_authorizationdecision",
                lambda: conn.execute(
                    _with_required(conn, DECISIONS_SQL, "authorization_authorizationdecision"),
                    {"org": org_id},
                ),
                log,
            ),
            1,
        )
        log(f"pages: {log_rows:,} log rows into {BIG_DB}")
        timings["logs_s"] = round(
            _copy_without_indexes(
                conn,
                "chargers_ocppmessage",
                lambda: conn.execute(
                    _with_required(conn, LOGS_SQL, "chargers_ocppmessage"), {"rows": log_rows}
                ),
                log,
            ),
            1,
        )
        conn.execute("ANALYZE")  # statistics of every table, as autovacuum keeps them in production
    return timings


# -- measuring (in a subprocess with the database's settings) --------------------------------------


def _portal_pages() -> list[tuple[str, str]]:
    from django.urls import NoReverseMatch, reverse

    from authorization.models import AuthorizationDecision
    from backoffice.models import Organization
    from chargers.models import Charger, ChargingSession

    org = Organization.objects.order_by("id").first()
    charger = Charger.objects.filter(property__organization=org).order_by("station_id").first()
    assert charger is not None and charger.property is not None
    session = ChargingSession.objects.filter(charger=charger).order_by("-started_at").first()
    decision = (
        AuthorizationDecision.objects.filter(station_id=charger.station_id).order_by("-id").first()
    )
    sid, prop = charger.station_id, charger.property
    names: list[tuple[str, list[Any]]] = [
        ("backoffice:dashboard", []),
        ("chargers:charger-list", []),
        ("chargers:charger-detail", [sid]),
        ("chargers:charger-logs", [sid]),
        ("chargers:charger-sessions", [sid]),
        ("chargers:charger-authorizations", [sid]),
        ("chargers:charger-reservations", [sid]),
        ("chargers:charger-smart-charging", [sid]),
        ("chargers:charger-device-model", [sid]),
        ("chargers:charger-security", [sid]),
        ("chargers:charger-proxy", [sid]),
        ("chargers:location-list", []),
        ("chargers:location-detail", [prop.pk]),
        ("chargers:network-list", []),
        ("chargers:session-list", []),
        ("authorization:token-list", []),
        ("authorization:token-group-list", []),
        ("authorization:roaming", []),
        ("authorization:msp-list", []),
        ("billing:payout-list", []),
        ("billing:rate-list", [prop.pk]),
        ("support:ticket-list", []),
        ("stays:stay-settings", []),
        ("stays:integration-list", []),
        ("backoffice:members", []),
    ]
    if session is not None:
        names += [("chargers:session-detail", [session.pk]), ("billing:session-cost", [session.pk])]
    if decision is not None:
        names.append(("chargers:decision-detail", [decision.pk]))
    pages = []
    for name, args in names:
        try:
            pages.append((name, reverse(name, args=args)))
        except NoReverseMatch:
            continue
    pages.append(
        (
            "chargers:charger-logs search idTag",
            reverse("chargers:charger-logs", args=[sid]) + "?q=TAG000123",
        )
    )
    return pages


def _admin_pages() -> list[tuple[str, str]]:
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    pages = []
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        meta = model._meta
        try:
            pages.append(
                (
                    f"admin {meta.label} list",
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
                )
            )
        except NoReverseMatch:
            continue
        first = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        if first is not None and meta.label in (
            "chargers.Charger",
            "chargers.ChargingSession",
            "chargers.OcppMessage",
            "authorization.AuthorizationDecision",
            "billing.Payment",
        ):
            pages.append(
                (
                    f"admin {meta.label} change",
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first]),
                )
            )
    searches = {
        "chargers.OcppMessage": "TAG000123",
        "chargers.ChargingSession": "TAG000123",
        "authorization.AuthorizationDecision": "TAG000123",
        "chargers.Charger": "BENCH-00042",
    }
    for label, query in searches.items():
        app_label, model_name = label.lower().split(".")
        try:
            pages.append(
                (
                    f"admin {label} search",
                    reverse(f"admin:{app_label}_{model_name}_changelist") + f"?q={query}",
                )
            )
        except NoReverseMatch:
            continue
    return pages


def measure(repeat: int) -> list[dict[str, Any]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from backoffice.models import Membership, Organization

    User = get_user_model()
    host, _ = User.objects.get_or_create(username=HOST_USER, defaults={"email": HOST_USER})
    org = Organization.objects.order_by("id").first()
    Membership.objects.get_or_create(user=host, organization=org, defaults={"role": "owner"})
    staff, _ = User.objects.get_or_create(
        username="pages-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    # The server's garbage collection (manage.py serve, GC_MODE=scheduled by default): automatic
    # collection off, the young generations collected every second (here: before each request,
    # outside its time), a full collection every GC_FULL_EVERY_S (600 s). Measured with CPython's
    # own thresholds instead, a full collection of this process's heap (~150-250 ms) landed in
    # random requests: the maxima of pages that allocate the most, not what the server does.
    from chargers.management.commands.serve import tune_garbage_collector

    tune_garbage_collector()
    rows = []
    for who, user, pages in (("portal", host, _portal_pages()), ("admin", staff, _admin_pages())):
        client = Client()
        client.force_login(user)
        for name, url in pages:
            client.get(url)  # warm: templates, caches, the plan cache of the database
            times = []
            queries = 0
            status = 0
            for _ in range(repeat):
                gc.collect(1)  # the server's every-second young collection, between requests
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - started) * 1000)
                queries, status = len(captured), response.status_code
            rows.append(
                {
                    "area": who,
                    "page": name,
                    "url": url,
                    "status": status,
                    "p50_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "queries": queries,
                }
            )
    return rows


def _measure_in(database: str, repeat: int) -> list[dict[str, Any]]:
    out = subprocess.run(
        [PY, "-m", "bench.pages", "--measure", "--repeat", str(repeat)],
        cwd=ROOT,
        env=server_env(database, redis=False),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the scenario ----------------------------------------------------------------------------------


def scenario(args: Any, report: dict, *, log: Any) -> None:
    from bench.__main__ import drop_database

    result: dict[str, Any] = {}
    scales = [s for s in str(args.pages_scale).split(",") if s]
    if "demo" in scales:
        prepare_demo(log)
        try:
            result["demo"] = {"pages": _measure_in(DEMO_DB, args.pages_repeat)}
        finally:
            drop_database(DEMO_DB)
    if "big" in scales:
        prepared = prepare_big(
            keep=args.keep_pages_db,
            sessions=args.pages_sessions,
            log_rows=args.pages_log_rows,
            log=log,
        )
        try:
            result["big"] = {**prepared, "pages": _measure_in(BIG_DB, args.pages_repeat)}
        finally:
            if not args.keep_pages_db:
                drop_database(BIG_DB)
    for scale, data in result.items():
        slow = [
            row for row in data["pages"] if row["p50_ms"] > TARGET_MS[scale] or row["status"] >= 400
        ]
        log(
            f"pages {scale}: {len(data['pages'])} pages, {len(slow)} over {TARGET_MS[scale]} ms or failing"
        )
    report["pages"] = result


def table(report: dict) -> str:
    """Markdown table: each page's median and maximum server time per scale."""
    pages = report.get("pages") or {}
    scales = list(pages)
    by_page: dict[tuple[str, str], dict[str, dict]] = {}
    for scale in scales:
        for row in pages[scale]["pages"]:
            by_page.setdefault((row["area"], row["page"]), {})[scale] = row
    header = (
        "| area | page | "
        + " | ".join(f"{s} p50 ms | {s} max | {s} queries" for s in scales)
        + " |"
    )
    lines = [header, "|" + "---|" * (2 + 3 * len(scales))]
    for (area, page), cells in by_page.items():
        parts = []
        for scale in scales:
            row = cells.get(scale)
            if row is None:
                parts += ["", "", ""]
                continue
            flag = " ⚠" if row["p50_ms"] > TARGET_MS[scale] else ""
            status = "" if row["status"] < 400 else f" (HTTP {row['status']})"
            parts += [f"{row['p50_ms']}{flag}{status}", str(row["max_ms"]), str(row["queries"])]
        lines.append(f"| {area} | {page} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    if options.measure:
        print(json.dumps(measure(options.repeat)))
    else:
        sys.exit("run it through `python -m bench --pages`")
