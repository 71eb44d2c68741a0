"""Reference rows the data migrations seed (support's vendor error codes, reliability's MREC
codes) are rows like any other: a transactional test flushes every table when it ends, so a
later test in the same worker would find them gone where a migrated database has them. The
root conftest's autouse fixture puts them back, with the very seed functions of the migrations,
whenever a database test finds them missing (one query per test otherwise).

Seeding them takes ~0.15 CPU-s, and it was paid by every database test after a transactional one
(a test's own transaction rolls the seed back, so the tables stayed empty): the fast flush
(tests/conftest.py) now keeps these tables when they hold exactly the rows last seeded (their
digest, tests/db_snapshot.py), and deletes them only when a test changed them."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any

from auditlog.context import disable_auditlog
from django.apps import apps
from django.db.models import Model

from tests import db_snapshot

# (model, the seeding migrations in order) for each kind of reference row.
_SEEDED: list[tuple[str, list[str]]] = [
    ("support.VendorErrorCode", ["support.migrations.0003_seed_vendor_error_codes"]),
    (
        "reliability.FaultCode",
        [
            "reliability.migrations.0004_seed_mrec_codes",
            "reliability.migrations.0005_seed_more_mrec_codes",
            "reliability.migrations.0007_mrec_descriptions",
            "reliability.migrations.0010_faults58_mrec_vocabulary",
        ],
    ),
    (
        "chargers.Deviation",
        [
            "chargers.migrations.0026_seed_quirk_profiles",
            "chargers.migrations.0027_kwh_register_meter_start_stop",
            "chargers.migrations.0030_seed_clock_wrong",
        ],
    ),
]


def _seeds(modules: list[str]) -> list[Callable[[Any, Any], None]]:
    return [importlib.import_module(name).seed for name in modules]


# The digest of every reference table as last seeded (or as migrated), None before the first.
_pristine: dict[str, Any] | None = None


def _models() -> list[type[Model]]:
    """Every table the seeds write: the models above, the rows hanging off them (MREC mappings)
    and their many-to-many tables (quirk profiles and their deviations)."""
    labels = [label for label, _ in _SEEDED] + [
        "reliability.FaultCodeMapping",
        "chargers.QuirkProfile",
    ]
    models = [apps.get_model(label) for label in labels]
    through = [
        field.remote_field.through for model in models for field in model._meta.local_many_to_many
    ]
    return models + through


def _digests(models: list[type[Model]]) -> dict[str, Any]:
    """Each table's content in short: PostgreSQL's digests (tests/db_snapshot.py); on SQLite,
    which has no md5, the hash of its rows read here (a few hundred rows: milliseconds, where
    seeding them again took ~0.15 CPU-s)."""
    found = db_snapshot.digests(models)
    if found is not None:
        return found
    return {
        model._meta.label: hashlib.sha256(
            repr(sorted(model._base_manager.values_list(), key=repr)).encode()
        ).hexdigest()
        for model in models
    }


def kept_tables() -> set[str]:
    """The tables the fast flush may keep: all reference tables, if they hold exactly the rows
    last seeded; none otherwise (a test changed them, or nothing was seeded yet)."""
    if _pristine is None:
        return set()
    models = _models()
    if _digests(models) != _pristine:
        return set()
    return {model._meta.db_table for model in models}


def ensure() -> None:
    """Seed each kind of reference row that is missing (as the migrations do)."""
    global _pristine
    seeded = False
    for label, modules in _SEEDED:
        if not apps.get_model(label).objects.exists():
            # As in a migration, whose historical models are not registered with auditlog: the
            # seed writes reference rows, not audit entries (tests/schema.py compares the two).
            with disable_auditlog():
                for seed in _seeds(modules):
                    seed(apps, None)
            seeded = True
    if seeded or _pristine is None:
        # Rows a test's transaction then rolls back leave a digest no table will match.
        _pristine = _digests(_models())
