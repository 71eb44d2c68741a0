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


def _admins_with_a_date_hierarchy():
    from django.contrib import admin

    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        # Third-party admins (django-axes' sign-in attempts, django-auditlog's entries) have the
        # same Django defect: not ours to patch.
        if model_admin.date_hierarchy and _ours(type(model_admin).__module__)
    ]


def _ours(module: str) -> bool:
    import sys
    from pathlib import Path

    from django.conf import settings

    return Path(sys.modules[module].__file__ or "").is_relative_to(Path(settings.BASE_DIR)) and (
        ".venv" not in (sys.modules[module].__file__ or "")
    )


def test_every_date_hierarchy_takes_the_calendars_edge_as_a_bad_filter(admin_client):
    """December 9999 (and its last day) made Django step past date.max: a 500 on every admin
    with a date hierarchy. Now the admin's usual redirect to "?e=1", as for any bad filter."""
    admins = _admins_with_a_date_hierarchy()
    assert len(admins) >= 8
    for model, model_admin in admins:
        field = model_admin.date_hierarchy
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for query in (
            f"{field}__year=9999&{field}__month=12",
            f"{field}__year=9999&{field}__month=12&{field}__day=31",
        ):
            response = admin_client.get(f"{url}?{query}")
            assert response.status_code == 302, (url, query, response.status_code)
            assert response["Location"].endswith("?e=1")
        assert admin_client.get(f"{url}?{field}__year=2026").status_code == 200, url


def test_a_row_in_the_last_year_of_the_calendar_still_lists(admin_client, sessions):
    """No period follows December 9999 to probe up to: Django's own query answers instead."""
    charger = ChargingSession.objects.first().charger
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=99,
        id_tag="T",
        started_at=dt.datetime(9999, 12, 15, tzinfo=dt.UTC),
        status="completed",
    )
    page = admin_client.get("/admin/chargers/chargingsession/")
    assert page.status_code == 200
    assert b"started_at__year=9999" in page.content and b"started_at__year=2024" in page.content
