"""The fast flush keeps the migrations' reference rows only while they are the rows last seeded
(tests/reference_data.py): a test that changed one gets them deleted and seeded again, so no
later test reads its change. Both backends: PostgreSQL compares table digests, SQLite the
rows' hash."""

import pytest

from reliability.models import FaultCode
from tests import reference_data

pytestmark = pytest.mark.django_db(transaction=True)


def _reference_tables() -> set[str]:
    return {model._meta.db_table for model in reference_data._models()}


def test_unchanged_reference_rows_are_kept_and_changed_ones_are_not():
    reference_data.ensure()
    tables = reference_data.kept_tables()
    assert tables == _reference_tables()
    assert {"reliability_faultcode", "chargers_quirkprofile_deviations"} <= tables

    code = FaultCode.objects.order_by("code").first()
    code.description = "changed by a test"
    code.save()
    assert reference_data.kept_tables() == set()


def test_rows_seeded_and_then_rolled_back_are_never_taken_as_seeded():
    for model in reference_data._models()[::-1]:
        model.objects.all().delete()
    reference_data.ensure()
    assert reference_data.kept_tables() == _reference_tables()
    # A test's transaction seeds them and rolls back: the empty tables are not the seeded ones.
    FaultCode.objects.all().delete()
    assert reference_data.kept_tables() == set()
    reference_data.ensure()
    assert FaultCode.objects.exists()
    assert reference_data.kept_tables() == _reference_tables()
