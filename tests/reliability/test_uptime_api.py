"""GET /api/v1/uptime/ and its NEVI / CEC CSV exports, the portal's uptime page, and their
tenant scoping."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from reliability.models import Exclusion, PortEvent
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(charger):
    """Port 1 faulted 120 s (GroundFailure), port 2 up, within the last hour."""
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    rows = [
        (1, start, "Available", "NoError"),
        (2, start, "Available", "NoError"),
        (1, start + timedelta(minutes=10), "Faulted", "GroundFailure"),
        (1, start + timedelta(minutes=12), "Available", "NoError"),
    ]
    for connector_id, at, status, error in rows:
        PortEvent.objects.create(
            charger=charger,
            connector_id=connector_id,
            kind="status",
            at=at,
            status=status,
            error_code=error,
        )
    return start, now


def test_uptime_per_port_and_in_aggregate(api_client, host, history):
    start, end = history
    api_client.force_authenticate(host)
    response = api_client.get(
        "/api/v1/uptime/",
        {"station_id": "CP-TEST-1", "start": start.isoformat(), "end": end.isoformat()},
    )
    assert response.status_code == 200, response.data
    ports = {p["connector_id"]: p for p in response.data["ports"]}
    assert ports[1]["station_id"] == "CP-TEST-1"
    assert ports[1]["outage_seconds"] == 120 and ports[1]["excluded_seconds"] == 0
    assert ports[1]["uptime_percent"] == round((3600 - 120) / 3600 * 100, 3)
    (outage,) = ports[1]["outages"]
    assert set(outage) >= {"start", "end", "cause", "mrec_code", "excluded"}
    assert (outage["cause"], outage["excluded"]) == ("faulted", False)
    assert ports[2]["uptime_percent"] == 100.0 and ports[2]["outages"] == []
    aggregate = response.data["aggregate"]
    assert aggregate["ports"] == 2 and aggregate["outage_seconds"] == 120
    assert aggregate["uptime_percent"] == round((7200 - 120) / 7200 * 100, 3)
    assert aggregate["ports_below_97"] == 1  # 2 minutes in an hour is 96.7 %
    assert ports[1]["below_97"] and not ports[2]["below_97"]


def test_bad_periods_are_refused_in_words(api_client, host, charger):
    api_client.force_authenticate(host)
    assert api_client.get("/api/v1/uptime/", {"start": "yesterday"}).status_code == 400
    reversed_ = api_client.get("/api/v1/uptime/", {"start": "2026-02-01", "end": "2026-01-01"})
    assert reversed_.status_code == 400 and "after the start" in str(reversed_.data)
    # One day asked as start = end: refused, saying a date is its midnight and how to ask for it.
    same = api_client.get("/api/v1/uptime/kpis/", {"start": "2026-01-15", "end": "2026-01-15"})
    assert same.status_code == 400 and "end=2026-01-16" in str(same.data)
    one_day = api_client.get("/api/v1/uptime/kpis/", {"start": "2026-01-15", "end": "2026-01-16"})
    assert one_day.status_code == 200


def test_nevi_csv_has_a_row_per_port_with_the_680_112_fields(api_client, host, history, charger):
    start, end = history
    Exclusion.objects.create(
        charger=charger,
        connector_id=1,
        start=start + timedelta(minutes=11),
        end=start + timedelta(minutes=12),
        reason="grid_outage",
    )
    api_client.force_authenticate(host)
    response = api_client.get(
        "/api/v1/uptime/nevi.csv", {"start": start.isoformat(), "end": end.isoformat()}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["station_id"], r["connector_id"]) for r in rows] == [
        ("CP-TEST-1", "1"),
        ("CP-TEST-1", "2"),
    ]
    port1 = rows[0]
    for field in (
        "sessions",
        "unsuccessful_sessions",
        "unsuccessful_session_error_codes",
        "energy_kwh",
        "peak_kw",
        "payment_methods",
        "month_1_uptime_percent",
        "month_1_outage_minutes",
        "month_1_excluded_minutes",
    ):
        assert field in port1
    assert (port1["outage_minutes"], port1["excluded_minutes"]) == ("2.00", "1.00")
    assert port1["outage_durations_minutes"] == "1.00;1.00"


def test_cec_csv_summary_and_fifteen_minute_records(api_client, host, history):
    start, end = history
    api_client.force_authenticate(host)
    summary = api_client.get(
        "/api/v1/uptime/cec.csv", {"start": start.isoformat(), "end": end.isoformat()}
    )
    rows = list(csv.DictReader(io.StringIO(summary.content.decode())))
    assert [r["connector_id"] for r in rows] == ["1", "2"] and rows[0]["outage_minutes"] == "2.00"
    records = api_client.get(
        "/api/v1/uptime/cec.csv",
        {"start": start.isoformat(), "end": end.isoformat(), "records": "intervals"},
    )
    intervals = list(csv.DictReader(io.StringIO(records.content.decode())))
    assert len(intervals) == 2 * 4  # two ports, an hour of 15-minute records
    down = [r for r in intervals if r["state"] == "down"]
    assert [(r["connector_id"], r["down_seconds"], r["cause"]) for r in down] == [
        ("1", "120.0", "faulted")
    ]


def test_other_organizations_chargers_are_not_found(api_client, history):
    outsider = MembershipFactory().user
    api_client.force_authenticate(outsider)
    for url in ("/api/v1/uptime/", "/api/v1/uptime/nevi.csv", "/api/v1/uptime/cec.csv"):
        assert api_client.get(url, {"station_id": "CP-TEST-1"}).status_code == 404
    listed = api_client.get("/api/v1/uptime/")
    assert listed.status_code == 200 and listed.data["ports"] == []
    mine = ChargerFactory(property__organization=MembershipFactory(user=outsider).organization)
    assert api_client.get("/api/v1/uptime/", {"property": mine.property_id}).status_code == 200
    other_property = PortEvent.objects.first().charger.property_id
    assert api_client.get("/api/v1/uptime/", {"property": other_property}).status_code == 404


def test_portal_page_shows_the_month_the_flag_and_exclusions(client, host, charger, history):
    start, _ = history
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    PortEvent.objects.filter(connector_id=2).delete()
    PortEvent.objects.create(
        charger=charger, connector_id=2, kind="status", at=month_start, status="Faulted"
    )
    client.force_login(host)
    page = client.get(f"/chargers/{charger.station_id}/uptime/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Port 1" in html and "GroundFailure" in html
    assert html.count("below-target") == 1  # port 2, faulted all month
    response = client.post(
        f"/chargers/{charger.station_id}/uptime/",
        {
            "connector_id": "1",
            "start": (start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
            "end": (start + timedelta(days=11)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "vandalism",
        },
    )
    assert response.status_code == 400 and "10 days" in response.content.decode()
    assert not Exclusion.objects.exists()


def test_portal_page_is_read_only_for_viewers_and_hidden_from_others(client, charger, history):
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    client.force_login(viewer)
    page = client.get(f"/chargers/{charger.station_id}/uptime/")
    assert page.status_code == 200 and "exclusion-form" not in page.content.decode()
    refused = client.post(
        f"/chargers/{charger.station_id}/uptime/",
        {
            "connector_id": "",
            "start": "2026-01-01T00:00",
            "end": "2026-01-01T01:00",
            "reason": "grid_outage",
        },
    )
    assert refused.status_code == 403 and not Exclusion.objects.exists()
    client.force_login(MembershipFactory().user)
    assert client.get(f"/chargers/{charger.station_id}/uptime/").status_code == 404
