"""The row snapshots the tenant and write-rule checks compare (tests/db_snapshot.py) see every
change: a row created, deleted, or changed in place with the row count unchanged."""

from __future__ import annotations

import pytest

from backoffice.models import Organization
from chargers.models import Charger
from tests import db_snapshot
from tests.factories import ChargerFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

reads: list[str] = []


def _rows(model):
    reads.append(model._meta.label)
    return sorted(model._base_manager.values_list())


def test_a_change_in_place_is_seen_and_an_unchanged_table_is_not_read_again():
    charger = ChargerFactory()
    OrganizationFactory()
    models = [Charger, Organization]
    first = db_snapshot.take(models, _rows)
    reads.clear()
    assert db_snapshot.take(models, _rows) == first
    # PostgreSQL: both tables' digests match, nothing is read again (SQLite reads all).
    assert reads == (
        []
        if db_snapshot.digests(models) is not None
        else ["chargers.Charger", "backoffice.Organization"]
    )

    Charger.objects.filter(pk=charger.pk).update(vendor="Changed in place")
    reads.clear()
    second = db_snapshot.take(models, _rows)
    assert second["chargers.Charger"] != first["chargers.Charger"]
    assert second["backoffice.Organization"] == first["backoffice.Organization"]
    assert "chargers.Charger" in reads

    Charger.objects.filter(pk=charger.pk).delete()
    ChargerFactory()
    third = db_snapshot.take(models, _rows)
    assert third["chargers.Charger"] != second["chargers.Charger"]


def test_the_prepared_statement_outlives_a_rollback():
    """PostgreSQL: the digests' statement is prepared in a savepoint that is rolled back, and
    executed again after it (a prepared statement is the session's, not the transaction's)."""
    from django.db import transaction

    models = [Charger, Organization]
    with transaction.atomic():
        first = db_snapshot.digests(models)
        OrganizationFactory()
        transaction.set_rollback(True)
    assert db_snapshot.digests(models) == first


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_the_statement_again():
    from django.db import connection

    models = [Charger, Organization]
    first = db_snapshot.digests(models)
    connection.close()
    assert db_snapshot.digests(models) == first
    OrganizationFactory()
    second = db_snapshot.digests(models)
    if first is not None:
        assert second != first


def test_a_worker_database_plans_no_parallel_query():
    """Under xdist on PostgreSQL each worker's clone runs without parallel plans
    (tests/parallel.py): the snapshots over ~130 never-analyzed tables were planned parallel,
    and every snapshot forked two PostgreSQL workers."""
    from django.db import connection

    from tests import parallel

    if connection.vendor != "postgresql" or not parallel.WORKER:
        pytest.skip("a worker's PostgreSQL clone only")
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"


def test_the_tables_read_are_confirmed_alone_and_a_write_meanwhile_is_not_cached():
    """PostgreSQL: after reading the tables that changed, the digests are taken again of those
    tables only (one small statement, not the one over every table), and a table written between
    its digest and its read is not cached: the next snapshot reads it again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no digests: every table is read every time")
    charger = ChargerFactory()
    models = [Charger, Organization]
    db_snapshot.take(models, _rows)
    Charger.objects.filter(pk=charger.pk).update(vendor="Changed once")
    with CaptureQueriesContext(connection) as queries:
        db_snapshot.take(models, _rows)
    executed = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("EXECUTE ")]
    assert len(executed) == 2, queries.captured_queries
    with connection.cursor() as cursor:  # what the second one, the confirmation, digests
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE name = %s",
            [executed[1].split()[1]],
        )
        (statement,) = cursor.fetchone()
    assert "'chargers.Charger'" in statement and "'backoffice.Organization'" not in statement

    written = []

    def _written_then_read(model):
        if model is Charger and not written:  # a writer between the digest and this read
            Charger.objects.filter(pk=charger.pk).update(vendor="Written meanwhile")
            written.append(model)
        return _rows(model)

    Charger.objects.filter(pk=charger.pk).update(vendor="Before")
    db_snapshot.take(models, _written_then_read)
    # Back to the content of the digest taken before that write: its rows are "Before" again,
    # and those are what the next snapshot gives (not the ones read under the old digest).
    Charger.objects.filter(pk=charger.pk).update(vendor="Before")
    assert db_snapshot.take(models, _written_then_read) == {
        "chargers.Charger": _rows(Charger),
        "backoffice.Organization": _rows(Organization),
    }
