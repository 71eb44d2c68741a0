"""Issue 51 item 8: the pages a host or agent uses on a big fleet cost a number of queries that
does not grow with the chargers needing attention or the sessions listed (the dashboard, the
sessions list, the admin's session search, the sessions API); `docs/performance.md`, "Pages"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from chargers.models import ChargingSession, Connector
from tests.factories import ChargerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _troubled(site, first: int, count: int) -> None:
    """Chargers that need attention: a faulted port, offline for a day, a session each."""
    long_ago = timezone.now() - timedelta(days=1)
    for n in range(first, first + count):
        charger = ChargerFactory(
            property=site.prop, station_id=f"TROUBLE-{n:03d}", last_seen_at=long_ago
        )
        Connector.objects.create(
            charger=charger, connector_id=1, status="Faulted", error_code="GroundFailure"
        )
        ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=900000 + n,
            id_tag=site.token.uid,
            token=site.token,
            started_at=long_ago,
            stopped_at=long_ago + timedelta(minutes=30),
            meter_start_wh=0,
            meter_stop_wh=5000,
            status="completed",
        )


def _count(fetch) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = fetch()
    assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def _pages(site):
    web = APIClient()
    web.force_login(site.owner)
    api = APIClient()
    api.force_authenticate(site.owner)
    admin = APIClient()
    admin.force_login(UserFactory(username="agent", is_staff=True, is_superuser=True))
    session_admin = reverse("admin:chargers_chargingsession_changelist")
    return {
        "dashboard": lambda: web.get(reverse("backoffice:dashboard")),
        "sessions": lambda: web.get(reverse("chargers:session-list")),
        "sessions api": lambda: api.get("/api/v1/sessions/"),
        "admin session search": lambda: admin.get(f"{session_admin}?q={site.token.uid}"),
        "admin sessions": lambda: admin.get(session_admin),
        "admin chargers": lambda: admin.get(reverse("admin:chargers_charger_changelist")),
    }


@pytest.mark.parametrize(
    "page",
    [
        "dashboard",
        "sessions",
        "sessions api",
        "admin session search",
        "admin sessions",
        "admin chargers",
    ],
)
def test_queries_do_not_grow_with_chargers_needing_attention_or_rows(site, page):
    fetch = _pages(site)[page]
    # Past the dashboard's 8 diagnosed chargers (support.findings.MAX_CHARGERS): its Needs
    # attention diagnoses at most 8, whatever the fleet.
    _troubled(site, 0, 9)
    fetch()  # warm: sessions, caches
    few, _ = _count(fetch)
    _troubled(site, 9, 11)
    many, sql = _count(fetch)
    assert many <= few, (page, few, many, sql)


@pytest.mark.parametrize("name", ["backoffice:dashboard", "support:ticket-list"])
def test_needs_attention_rows_do_not_compute_each_chargers_uptime(site, name, capsys):
    """The dashboard's and the support page's Needs attention name each charger's problem in a
    short row; its uptime and success this month are on the charger's own pages, so the rows
    read no port timeline (it cost ~35 queries a charger: 335 queries for 9 chargers)."""
    _troubled(site, 0, 9)
    web = APIClient()
    web.force_login(site.owner)
    web.get(reverse(name))
    total, sql = _count(lambda: web.get(reverse(name)))
    with capsys.disabled():
        print(f"\n{name}: {total} queries with 9 chargers needing attention")
    assert [q for q in sql if 'FROM "reliability_portevent"' in q] == []
    assert total <= 200, total
