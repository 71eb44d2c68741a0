"""The Sessions list counts at most CAP + 1 sessions (a COUNT(*) over a million sessions was a
third of the page's time, docs/performance.md "Pages"): past the cap it says so and points to
the dates and the CSV export, and paging still works."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chargers.models import ChargingSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def many(site):
    start = timezone.now() - timedelta(days=1)
    ChargingSession.objects.bulk_create(
        ChargingSession(
            charger=site.charger,
            connector_id=1,
            transaction_id=5000 + n,
            id_tag="MANY",
            started_at=start + timedelta(minutes=n),
            status="completed",
        )
        for n in range(60)
    )


def test_over_the_cap_the_list_says_more_than(client, site, many, monkeypatch):
    monkeypatch.setattr("backoffice.admin_paging.CAP", 55)
    monkeypatch.setattr("chargers.web.views.CAP", 55)
    client.force_login(site.owner)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(reverse("chargers:session-list")).content.decode()
    assert "More than 55 sessions: narrow the dates" in body
    assert "Page 1</span>" in body and "Page 1 of" not in body
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 56" in sql for sql in counts)
    second = client.get(reverse("chargers:session-list") + "?page=2").content.decode()
    assert "Page 2</span>" in second


def test_under_the_cap_the_exact_count(client, site, many):
    client.force_login(site.owner)
    body = client.get(reverse("chargers:session-list")).content.decode()
    total = ChargingSession.objects.filter(charger__property=site.prop).count()
    assert f"{total} sessions</span>" in body and "More than" not in body
    assert "Page 1 of 2" in body or total <= 50
