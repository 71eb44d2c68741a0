"""The test databases are built from the models, and the migrations are checked against them once.

Migrating an empty database runs ~120 migrations whose state Django re-renders on every schema
operation: 18–21 CPU-s on this machine, paid three times a run (the PostgreSQL template, the
SQLite template, the pool check's database) while the other workers waited for the template.
Creating the same tables from the models (`TEST["MIGRATE"] = False`, Django's own switch) takes
0.5–0.6 CPU-s. What a deployed database runs is still the migrations: `migrated_schema` runs
them all on an empty database of its own and `describe` lets
`tests/backoffice/test_migrated_schema.py` compare every table, column, index and constraint
with the database the tests use, and the rows the data migrations seed with the ones
`tests/reference_data.py` seeds (in both passes: PostgreSQL and SQLite).

Every migration is recorded as applied in a database built from the models, so a test that
migrates back and forth (tests/billing/test_tax_mode.py) finds what a migrated database has.

`python -m tests.schema OUT` (DATABASE_URL naming an empty database) migrates it and writes its
description to OUT as JSON: the comparison's other side, in a process of its own (real settings,
its own connection).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# Tables whose rows are bookkeeping, not data a migration seeds: the migrations' own record, and
# the content types and permissions Django creates after migrating (on both sides alike).
BOOKKEEPING = {"django_migrations", "django_content_type", "auth_permission"}


def build_from_models(connection: Any) -> None:
    """Make `connection`'s test database from the models (its tables, indexes and constraints),
    not by running the migrations; call before `create_test_db`."""
    from django.conf import settings

    for settings_dict in (settings.DATABASES[connection.alias], connection.settings_dict):
        settings_dict.setdefault("TEST", {})["MIGRATE"] = False


def record_migrations_applied(connection: Any) -> None:
    """Record every migration as applied, as `migrate` would have (a database built from the
    models holds what all of them make)."""
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connection)
    recorder.ensure_schema()
    applied = set(recorder.applied_migrations())
    nodes = MigrationLoader(connection, ignore_no_migrations=True).graph.nodes
    Migration = recorder.Migration
    Migration.objects.using(connection.alias).bulk_create(
        [Migration(app=app, name=name) for app, name in sorted(nodes) if (app, name) not in applied]
    )


def migrate_back(connection: Any, target: tuple[str, str]) -> Any:
    """Unapply the migrations after `target` (app, name) and those that depend on them, as
    `MigrationExecutor(connection).migrate([target])` does, and return the executor.

    Django's executor walks every migration of the plan that comes after the first one it
    unapplies with the project's models rendered, re-rendering them at each operation: going
    back three migrations of `authorization` took 35 CPU-s (one `__init__` of a model class per
    model per operation). Here each state before an unapplied migration is the same sum of the
    same migrations' operations (`mutate_state` on the models' descriptions, which renders
    nothing) and is rendered once, when its migration is unapplied: ~1 CPU-s each. For a
    migration late in the plan Django's own walk is the cheaper (billing 0008: 2.7 CPU-s against
    3.7 here; roaming 0019: 1.6 against 2.2): this pays where many migrations lie between.
    """
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.state import ProjectState

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan([target])
    assert all(backwards for _, backwards in plan), f"{target} is not behind what is applied"
    graph = executor.loader.graph
    full_plan = executor.migration_plan(graph.leaf_nodes(), clean_start=True)
    applied = {graph.nodes[key] for key in executor.loader.applied_migrations if key in graph.nodes}
    to_unapply = {migration for migration, _ in plan}
    state = ProjectState(real_apps=executor.loader.unmigrated_apps)
    before: dict[Any, ProjectState] = {}
    for migration, _ in full_plan:  # the order and the rule of Django's _migrate_all_backwards
        if not to_unapply:
            break
        if migration in to_unapply:
            before[migration] = state.clone()
            to_unapply.remove(migration)
            migration.mutate_state(state, preserve=False)
        elif migration in applied:
            migration.mutate_state(state, preserve=False)
    for migration, _ in plan:
        executor.unapply_migration(before[migration], migration)
    executor.loader.build_graph()  # what is applied now
    return executor


def _postgres_tables(cursor: Any) -> dict[str, dict[str, list]]:
    """Columns, indexes and constraints of every table in `public`, as PostgreSQL defines them."""
    tables: dict[str, dict[str, list]] = {}
    cursor.execute(
        "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision,"
        " numeric_scale, is_nullable, column_default, is_identity, collation_name"
        " FROM information_schema.columns WHERE table_schema = 'public'"
    )
    for table, *column in cursor.fetchall():
        tables.setdefault(table, {"columns": [], "indexes": [], "constraints": []})
        tables[table]["columns"].append([str(value) for value in column])
    cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    for table, definition in cursor.fetchall():
        tables[table]["indexes"].append(definition)
    cursor.execute(
        "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.condeferrable,"
        " k.condeferred FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    for table, name, kind, definition, deferrable, deferred in cursor.fetchall():
        tables[table]["constraints"].append(f"{name} {kind} {definition} {deferrable} {deferred}")
    return tables


def _clauses(sql: str) -> list[str]:
    """The named constraints inside a CREATE TABLE statement (Django's SQLite schema editor writes
    unique and check constraints there), each up to its comma or the statement's closing
    parenthesis at the top level."""
    clauses = []
    for match in re.finditer(r'CONSTRAINT ("[^"]+") ', sql):
        depth, end = 0, match.end()
        while end < len(sql):
            char = sql[end]
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            end += 1
        clauses.append(f"{match.group(1)} {sql[match.end() : end]}")
    return clauses


def _sqlite_tables(cursor: Any) -> dict[str, dict[str, list]]:
    """Columns, indexes, foreign keys and named constraints of every table, as SQLite has them."""
    tables: dict[str, dict[str, list]] = {}
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    for table, sql in cursor.fetchall():
        cursor.execute(f'PRAGMA table_info("{table}")')
        columns = [[str(value) for value in row[1:]] for row in cursor.fetchall()]
        cursor.execute(f'PRAGMA foreign_key_list("{table}")')
        keys = [" ".join(str(value) for value in row[2:]) for row in cursor.fetchall()]
        tables[table] = {"columns": columns, "indexes": [], "constraints": keys + _clauses(sql)}
    cursor.execute(
        "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    for table, sql in cursor.fetchall():
        tables[table]["indexes"].append(sql)
    return tables


def _data_columns(table: str) -> list[str]:
    """The columns of `table` whose values a seed decides, sorted by name (a migration adds a
    column at the end, the models put it in their order): no keys (ids come from sequences, which
    a database the tests flushed and seeded again has moved on) and no times of writing."""
    from django.apps import apps

    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return sorted(
                field.column
                for field in model._meta.concrete_fields
                if not (field.primary_key or field.is_relation)
                and not (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
            )
    return []


def _rows(cursor: Any, table: str) -> list[list[str]]:
    """A table's rows, sorted, each its data columns (a table of keys alone gives one entry per
    row)."""
    columns = ", ".join(f'"{name}"' for name in _data_columns(table)) or "1"
    cursor.execute(f'SELECT {columns} FROM "{table}"')
    return sorted([str(value) for value in row] for row in cursor.fetchall())


def describe(connection: Any) -> dict[str, Any]:
    """Every table's columns, indexes and constraints (each list sorted; the names included, as a
    later migration removes an index or constraint by its name), and the rows of every table that
    is not bookkeeping and has any."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tables = _postgres_tables(cursor)
        else:
            tables = _sqlite_tables(cursor)
        rows = {}
        for table in sorted(set(tables) - BOOKKEEPING):
            content = _rows(cursor, table)
            if content:
                rows[table] = content
    for parts in tables.values():
        for key in parts:
            parts[key] = sorted(parts[key])
    return {"tables": tables, "rows": rows}


def migrated_schema(out: str) -> None:
    """Migrate the (empty) database DATABASE_URL names and write its description to `out`."""
    import os

    import django
    from django.core.management import call_command
    from django.db import connection

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    with open(out, "w") as handle:
        json.dump(describe(connection), handle)


if __name__ == "__main__":
    migrated_schema(sys.argv[1])
