"""The migrations make what the tests run on (tests/schema.py).

The test databases are built from the models, so this is where every migration runs: on an
empty database of this test's own, in a process of its own, on each backend of the run (the
PostgreSQL pass and the SQLite pass). Every table, column, index and constraint the migrations
make must be the one the models make, and the rows the data migrations seed the ones
tests/reference_data.py puts back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests import parallel, reference_data, schema
from tests.conftest import _test_database_url

ROOT = Path(__file__).resolve().parents[2]

# Django's own, not ours: contrib.auth's many-to-many tables get an integer id from its models
# (AuthConfig.default_auto_field) and a bigint from its migrations, whose historical apps take
# the project's DEFAULT_AUTO_FIELD. Their id columns alone are left out of the comparison.
AUTH_THROUGH = {"auth_group_permissions", "auth_user_groups", "auth_user_user_permissions"}


def _comparable(description: dict) -> dict:
    for table in AUTH_THROUGH & set(description["tables"]):
        columns = description["tables"][table]["columns"]
        description["tables"][table]["columns"] = [c for c in columns if c[0] != "id"]
    return description


def _migrate_and_describe(url: str, out: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true"}
    subprocess.run(
        [sys.executable, "-m", "tests.schema", str(out)], cwd=ROOT, env=env, check=True, timeout=580
    )
    return json.loads(out.read_text())


def _migrated(tmp_path: Path) -> dict:
    """The description of an empty database after `migrate`, on this run's backend."""
    out = tmp_path / "migrated.json"
    if not settings.IS_POSTGRES:
        return _migrate_and_describe(f"sqlite:///{tmp_path / 'migrated.sqlite3'}", out)
    ours = _test_database_url()
    name = f"{settings.DATABASES['default']['NAME']}_migrated"
    with parallel._postgres_admin() as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg.execute(f'CREATE DATABASE "{name}"')
    try:
        return _migrate_and_describe(f"{ours.rsplit('/', 1)[0]}/{name}", out)
    finally:
        parallel.drop_database(name)


# Every migration in a fresh process: 18-21 CPU-s, which took over 280 s of wall time beside a
# dozen other busy processes. A generous deadline, not a speed check.
@pytest.mark.timeout(600)
@pytest.mark.django_db
def test_the_migrations_make_the_tables_and_rows_the_tests_run_on(tmp_path):
    from django.db import connection

    reference_data.ensure()
    ours = _comparable(schema.describe(connection))
    migrated = _comparable(_migrated(tmp_path))

    assert sorted(migrated["tables"]) == sorted(ours["tables"])
    for table, parts in ours["tables"].items():
        for part, items in parts.items():
            assert migrated["tables"][table][part] == items, (table, part)
    assert migrated["rows"] == ours["rows"]
