"""Reference rows the data migrations seed (support's vendor error codes, reliability's MREC
codes) are rows like any other: a transactional test flushes every table when it ends, so a
later test in the same worker would find them gone where a migrated database has them. The
root conftest's autouse fixture puts them back, with the very seed functions of the migrations,
whenever a database test finds them missing (one query per test otherwise)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.apps import apps

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
    ("chargers.Deviation", ["chargers.migrations.0026_seed_quirk_profiles"]),
]


def _seeds(modules: list[str]) -> list[Callable[[Any, Any], None]]:
    return [importlib.import_module(name).seed for name in modules]


def ensure() -> None:
    """Seed each kind of reference row that is missing (as the migrations do)."""
    for label, modules in _SEEDED:
        if not apps.get_model(label).objects.exists():
            for seed in _seeds(modules):
                seed(apps, None)
