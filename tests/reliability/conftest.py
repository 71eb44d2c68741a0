"""The MREC codes a data migration seeds (reliability 0004) are rows like any other: a
transactional test elsewhere in the suite flushes them. Tests here that use the database start
with them in place, as a migrated database has them."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

_SEED = importlib.import_module("reliability.migrations.0004_seed_mrec_codes").seed


@pytest.fixture(autouse=True)
def _mrec_codes_seeded(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    _SEED(apps, None)
