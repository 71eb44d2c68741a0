"""The admin's date hierarchy over millions of rows (sessions, decisions) probes the index for
each year, month or day instead of SELECT DISTINCT over the table, and offers exactly the links
Django's own query would (backoffice/admin_paging.py, ProbedDatesQuerySet)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.admin_paging import ProbedDatesQuerySet
from chargers.models import ChargingSession
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Edges on purpose: 23:30 UTC on New Year's Eve is already next year in Amsterdam, 22:30 UTC on
# the last day of March is April there (summer time), and a leap day.
MOMENTS = [
    dt.datetime(2023, 12, 31, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 31, 22, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 31, 21, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 12, 31, 22, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC),
]


@pytest.fixture
def sessions():
    charger = ChargerFactory()
    ChargingSession.objects.bulk_create(
        ChargingSession(
            charger=charger,
            connector_id=1,
            transaction_id=n + 1,
            id_tag="T",
            started_at=moment,
            status="completed",
        )
        for n, moment in enumerate(MOMENTS)
    )


def _both(kind: str, **filters) -> tuple[list, list]:
    plain: QuerySet = ChargingSession.objects.filter(**filters)
    probed = ProbedDatesQuerySet(model=ChargingSession, query=plain.query.chain())
    return list(plain.datetimes("started_at", kind)), list(probed.datetimes("started_at", kind))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam"])
def test_the_same_years_months_and_days_as_djangos_own(sessions, zone):
    with timezone.override(ZoneInfo(zone)):
        for kind, filters in [
            ("year", {}),
            ("month", {"started_at__year": 2024}),
            ("day", {"started_at__year": 2024, "started_at__month": 3}),
            ("day", {"started_at__year": 2024, "started_at__month": 4}),
            ("month", {"started_at__year": 2025}),
        ]:
            django_own, probed = _both(kind, **filters)
            assert [m.timetuple()[:3] for m in probed] == [m.timetuple()[:3] for m in django_own], (
                zone,
                kind,
                filters,
            )
    with timezone.override(AMSTERDAM):
        years = _both("year")[1]
    assert [y.year for y in years] == [2024, 2026]  # 2023's only session is 2024 there
    with timezone.override(dt.UTC):
        years = _both("year")[1]
    assert [y.year for y in years] == [2023, 2024, 2026]


def test_the_changelist_reads_no_distinct(admin_client, sessions):
    with CaptureQueriesContext(connection) as queries:
        for query in ("", "?started_at__year=2024", "?started_at__year=2024&started_at__month=3"):
            page = admin_client.get(f"/admin/chargers/chargingsession/{query}")
            assert page.status_code == 200
    assert not any("DISTINCT" in q["sql"].upper() for q in queries.captured_queries)
    years = admin_client.get("/admin/chargers/chargingsession/").content.decode()
    assert "started_at__year=2024" in years and "started_at__year=2026" in years
    assert "started_at__year=2025" not in years  # no session in 2025 (UTC), so no link
    march = admin_client.get("/admin/chargers/chargingsession/?started_at__year=2024").content
    assert b"started_at__month=3" in march and b"started_at__month=5" not in march


def test_decisions_too(admin_client):
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get("/admin/authorization/authorizationdecision/")
    assert page.status_code == 200
    assert not any("DISTINCT" in q["sql"].upper() for q in queries.captured_queries)
