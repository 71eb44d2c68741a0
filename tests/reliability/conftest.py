"""The MREC codes the data migrations seed (reliability 0004, 0005, 0007) are rows like any other: a
transactional test elsewhere in the suite flushes them. Tests here that use the database start
with them in place, as a migrated database has them."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

# The seeding migrations themselves, in order: the tests see the very rows a migration writes.
_SEEDS = [
    importlib.import_module(f"reliability.migrations.{name}").seed
    for name in (
        "0004_seed_mrec_codes",
        "0005_seed_more_mrec_codes",
        "0007_mrec_descriptions",
        "0010_faults58_mrec_vocabulary",
    )
]


@pytest.fixture(autouse=True)
def _mrec_codes_seeded(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    for seed in _SEEDS:
        seed(apps, None)
