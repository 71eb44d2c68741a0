"""The database settings that bound a process's PostgreSQL connections (README, "Connections").

Settings are read once at import, so each case loads them in a fresh interpreter with its
environment. No database is needed: nothing connects.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG = "postgres://evportal@db.example:5432/evportal"
SHOW = (
    "import json, portal.settings as s; d = s.DATABASES['default']; "
    "print(json.dumps({'pool': d.get('OPTIONS', {}).get('pool'), 'age': d['CONN_MAX_AGE'], "
    "'checks': d.get('CONN_HEALTH_CHECKS'), 'name': d.get('OPTIONS', {}).get('application_name'), "
    "'no_ss_cursors': d.get('DISABLE_SERVER_SIDE_CURSORS'), 'async': s.DB_ASYNC_POOL_SIZE}, "
    "default=str))"
)


def settings_with(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "CONN_", "PGB"))}
    clean.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={**clean, "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        raise AssertionError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_uses_a_bounded_pool_and_no_persistent_connections():
    shown = settings_with(DATABASE_URL=PG, CONN_MAX_AGE="60")
    assert shown["pool"]["max_size"] == 12  # 8 database threads + 4
    assert shown["pool"]["min_size"] == 1
    assert shown["age"] == 0  # Django's pool refuses persistent connections
    assert shown["checks"] is True  # the pool tests a connection before handing it out
    assert shown["name"] == "evportal"
    assert shown["async"] == 8
    assert shown["no_ss_cursors"] is False


def test_pool_size_follows_the_database_threads_and_can_be_set():
    assert settings_with(DATABASE_URL=PG, DB_EXECUTOR_THREADS="4")["pool"]["max_size"] == 8
    assert settings_with(DATABASE_URL=PG, DB_POOL_SIZE="30")["pool"]["max_size"] == 30


def test_a_pool_without_room_for_requests_refuses_to_start():
    with pytest.raises(AssertionError, match="DB_POOL_SIZE=8 leaves no connection"):
        settings_with(DATABASE_URL=PG, DB_POOL_SIZE="8")


def test_without_the_pool_connections_persist_as_before():
    shown = settings_with(DATABASE_URL=PG, DB_POOL="false", CONN_MAX_AGE="60")
    assert shown["pool"] is None and shown["age"] == 60


def test_pgbouncer_transaction_pooling_turns_off_server_side_cursors():
    shown = settings_with(DATABASE_URL=PG, PGBOUNCER_TRANSACTION_POOLING="true")
    assert shown["no_ss_cursors"] is True
    assert shown["pool"]["max_size"] == 12  # the process's own bound stays


def test_sqlite_has_no_pool_options():
    shown = settings_with()
    assert shown["pool"] is None and shown["age"] == 0
