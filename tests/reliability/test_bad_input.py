"""Bad input to the reliability surfaces is a 400 naming the field, never a 500 (issue 47 item 5):
the uptime API's period and property, the Uptime tab's month, an exclusion's port and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargers.models import Connector
from reliability.models import Exclusion

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(api_client, host, charger):
    for port in (1, 2):
        Connector.objects.create(charger=charger, connector_id=port, status="Available")
    api_client.force_authenticate(host)
    return api_client


@pytest.mark.parametrize(
    "path", ["/api/v1/uptime/", "/api/v1/uptime/nevi.csv", "/api/v1/uptime/cec.csv"]
)
@pytest.mark.parametrize(
    "query, field",
    [
        ("start=2026-02-30", "start"),
        ("end=2026-02-30T10:00:00Z", "end"),
        ("start=0001-01-01", "start"),
        ("start=0001-01-01T00:00:00", "start"),
        ("end=9999-12-31", "end"),
        ("start=2026-13-01", "start"),
        ("property=%C2%B2", "property"),  # "²": a digit to str.isdigit, not to int()
        ("property=99999999999999999999999", "property"),
    ],
)
def test_a_bad_period_or_property_is_a_400_naming_the_field(owner_client, path, query, field):
    response = owner_client.get(f"{path}?station_id=CP-TEST-1&{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    "month", ["9999-12", "0001-01", "1-1", "2026-13", "2026-00", "x", "2026-1-1"]
)
def test_the_uptime_tab_refuses_a_month_it_cannot_show(client, host, charger, month):
    client.force_login(host)
    response = client.get(f"/chargers/{charger.station_id}/uptime/", {"month": month})
    assert response.status_code == 400
    assert b"month" in response.content


def test_the_uptime_tab_shows_a_month_in_the_window(client, host, charger):
    client.force_login(host)
    response = client.get(f"/chargers/{charger.station_id}/uptime/", {"month": "2026-01"})
    assert response.status_code == 200
    assert b"January 2026" in response.content


def exclusion(**overrides):
    data = {
        "station_id": "CP-TEST-1",
        "connector_id": 1,
        "start": datetime(2026, 2, 2, 8, tzinfo=UTC).isoformat(),
        "end": datetime(2026, 2, 2, 10, tzinfo=UTC).isoformat(),
        "reason": "grid_outage",
    }
    return data | overrides


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"connector_id": 2**31}, "connector_id"),
        ({"connector_id": 2**63}, "connector_id"),
        ({"connector_id": 99999}, "connector_id"),
        ({"connector_id": 3}, "connector_id"),  # the charger has ports 1 and 2
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"end": "9999-12-31T00:00:00Z"}, "end"),
        ({"start": "2026-02-30T00:00:00Z"}, "start"),
    ],
)
def test_an_exclusion_outside_the_charger_or_the_window_is_a_400(owner_client, overrides, field):
    response = owner_client.post("/api/v1/exclusions/", exclusion(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Exclusion.objects.exists()


def test_an_exclusion_cannot_hide_faults_yet_to_come(owner_client):
    """A grid outage or a disaster is entered after it happened: it cannot end in the future,
    where it would hide a real fault; planned maintenance may be entered ahead (72 h a year)."""
    future = datetime.now(UTC) + timedelta(days=2)
    grid = owner_client.post(
        "/api/v1/exclusions/",
        exclusion(start=datetime.now(UTC).isoformat(), end=future.isoformat()),
        format="json",
    )
    assert grid.status_code == 400 and "end" in grid.json()
    planned = owner_client.post(
        "/api/v1/exclusions/",
        exclusion(
            reason="planned_maintenance",
            start=future.isoformat(),
            end=(future + timedelta(hours=4)).isoformat(),
        ),
        format="json",
    )
    assert planned.status_code == 201, planned.content


def test_a_body_that_is_not_utf8_is_a_400_in_plain_words(owner_client):
    answer = owner_client.post(
        "/api/v1/exclusions/", b'{"note": "caf\xe9"}', content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "The body is not UTF-8 text, as JSON must be: byte 0xe9 at position 13."
    )


def test_a_json_body_nested_too_deeply_is_a_400_on_any_route(owner_client, client):
    deep = "[" * 100_000 + "]" * 100_000
    api = owner_client.post("/api/v1/exclusions/", deep, content_type="application/json")
    assert api.status_code == 400 and "nested too deeply" in api.json()["detail"]
    with_nul = owner_client.post(
        "/api/v1/exclusions/",
        deep[:50_000] + '"\\u0000"' + deep[50_000:],
        content_type="application/json",
    )
    assert with_nul.status_code == 400
    for path in ("/ocpi/2.2.1/credentials", "/billing/webhooks/stripe/", "/stays/"):
        answer = client.post(path, deep, content_type="application/json")
        assert answer.status_code == 400, path
    # A roaming partner's client reads the OCPI envelope, never a text page.
    ocpi = client.post("/ocpi/2.2.1/credentials", deep, content_type="application/json").json()
    assert ocpi["status_code"] == 2001 and "nested too deeply" in ocpi["status_message"]
    # Nesting that a real body has still passes.
    fine = owner_client.post("/api/v1/exclusions/", exclusion(note="[[[{}]]]"), format="json")
    assert fine.status_code == 201


@pytest.mark.parametrize("debug", [False, True])
def test_a_body_over_the_upload_limit_is_a_400_in_the_callers_form(
    owner_client, client, settings, debug
):
    """Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before any view: the API says so in
    its {"detail"}, OCPI in its envelope (a partner's client parses JSON), never an HTML page."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    settings.DEBUG = debug  # `make run` serves with DEBUG: the same answers, never a debug page
    big = '{"note": "' + "x" * (1024 * 1024) + '"}'
    api = owner_client.post("/api/v1/exclusions/", big, content_type="application/json")
    assert api.status_code == 400
    assert api.json() == {"detail": "The body is larger than the 1 MB this site takes."}
    ocpi = client.post("/ocpi/2.2.1/credentials", big, content_type="application/json")
    assert ocpi.status_code == 400 and ocpi.json()["status_code"] == 2001
    assert ocpi.json()["status_message"] == "The body is larger than the 1 MB this site takes."
    page = client.post("/accounts/login/", {"username": "x" * (1024 * 1024)})
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
    assert b"Traceback" not in page.content


@pytest.mark.parametrize(
    "start, end",
    [
        (datetime(1, 1, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)),
        (datetime(2026, 2, 2, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_an_exclusion_stored_before_the_bounds_does_not_break_the_uptime_tab(
    client, host, charger, start, end
):
    """Rows entered before the window was enforced stay readable, withdrawn or not."""
    Connector.objects.create(charger=charger, connector_id=1, status="Available")
    row = Exclusion.objects.create(
        charger=charger, connector_id=None, start=start, end=end, reason="grid_outage"
    )
    client.force_login(host)
    url = f"/chargers/{charger.station_id}/uptime/"
    assert client.get(url).status_code == 200
    row.withdrawn_at = datetime.now(UTC)
    row.save()
    assert client.get(url).status_code == 200
