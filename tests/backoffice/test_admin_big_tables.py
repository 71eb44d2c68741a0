"""Admin lists of tables with millions of rows page without COUNT(*) or SELECT DISTINCT over the
table, and the OCPP message search uses indexed, exact lookups (Station ID or idTag)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.admin_paging import CAP, EstimatedCountPaginator
from chargers.models import ChargingSession, OcppMessage
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def log():
    one, two = ChargerFactory(station_id="ADM-1"), ChargerFactory(station_id="ADM-2")
    rows = [
        OcppMessage(
            charger=one if n % 2 else two,
            direction="in",
            message_type=2,
            unique_id=f"u{n}",
            action="Authorize" if n % 5 == 0 else "Heartbeat",
            id_tag="CARD42" if n % 5 == 0 else "",
            payload={},
            timestamp=timezone.now(),
        )
        for n in range(40)
    ]
    OcppMessage.objects.bulk_create(rows)
    return one, two


def test_message_search_is_exact_by_station_id_or_id_tag(admin_client, log):
    page = admin_client.get("/admin/chargers/ocppmessage/", {"q": "ADM-1"})
    assert page.status_code == 200 and page.context["cl"].result_count == 20
    by_tag = admin_client.get("/admin/chargers/ocppmessage/", {"q": "CARD42"})
    assert by_tag.context["cl"].result_count == 8
    assert (
        admin_client.get("/admin/chargers/ocppmessage/", {"q": "ADM"}).context["cl"].result_count
        == 0
    )
    # The action filter offers fixed OCPP actions instead of reading them from the table.
    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/admin/chargers/ocppmessage/", {"action": "Authorize"})
    assert not any("DISTINCT" in q["sql"].upper() for q in queries)
    assert "Authorize" in admin_client.get("/admin/chargers/ocppmessage/").content.decode()


def test_filtered_counts_stop_at_the_cap():
    charger = ChargerFactory()
    start = timezone.now() - timedelta(days=1)
    ChargingSession.objects.bulk_create(
        [
            ChargingSession(
                charger=charger,
                connector_id=1,
                transaction_id=500_000 + n,
                id_tag="X",
                started_at=start + timedelta(seconds=n),
                meter_start_wh=0,
                status="completed",
            )
            for n in range(CAP + 50)
        ]
    )
    paginator = EstimatedCountPaginator(
        ChargingSession.objects.filter(id_tag="X").order_by("-id"), 100
    )
    assert paginator.count == CAP + 1  # "more than 10,000": bounded work
    small = EstimatedCountPaginator(
        ChargingSession.objects.filter(transaction_id__lt=500_010).order_by("-id"), 100
    )
    assert small.count == 10


def test_session_and_decision_lists_render(admin_client, log):
    assert (
        admin_client.get("/admin/chargers/chargingsession/", {"stop_reason": "Remote"}).status_code
        == 200
    )
    assert (
        admin_client.get(
            "/admin/authorization/authorizationdecision/", {"status": "Invalid"}
        ).status_code
        == 200
    )
    assert admin_client.get("/admin/chargers/metervalue/").status_code == 200


def test_session_and_decision_searches_are_exact(admin_client, log):
    from authorization.models import AuthorizationDecision

    one, _ = log
    ChargingSession.objects.create(
        charger=one,
        connector_id=1,
        transaction_id=777,
        id_tag="CARD42",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    sessions = "/admin/chargers/chargingsession/"
    for term in ("777", "ADM-1", "CARD42"):
        assert admin_client.get(sessions, {"q": term}).context["cl"].result_count == 1, term
    assert admin_client.get(sessions, {"q": "77"}).context["cl"].result_count == 0
    AuthorizationDecision.objects.create(
        uid="04a1b2c3",
        uid_normalized="04A1B2C3",
        station_id="ADM-1",
        context="local",
        status="Invalid",
        reason="unknown_token",
        step=2,
        message="Unknown card.",
    )
    decisions = "/admin/authorization/authorizationdecision/"
    for term in ("04A1B2C3", "04a1b2c3", "ADM-1"):
        assert admin_client.get(decisions, {"q": term}).context["cl"].result_count == 1, term
    assert admin_client.get(decisions, {"q": "04A1"}).context["cl"].result_count == 0
