"""The host's Power page: budget form, live card, roles and tenants."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import ChargingSession
from power import services
from power.models import Circuit, SiteBudget
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def page(prop) -> str:
    return f"/locations/{prop.pk}/power/"


def test_the_host_saves_a_budget_with_schedule_and_circuits(client, host, prop):
    client.force_login(host)
    assert client.get(page(prop)).status_code == 200
    response = client.post(
        page(prop),
        {
            "limit_a": "63",
            "phases": "3",
            "voltage": "230",
            "policy": "priority",
            "schedule": "17:00-21:00 40 A\n",
            "circuits": "Garage: 32 A\nRow B: 16 A under Garage",
        },
    )
    assert response.status_code == 302
    site = SiteBudget.objects.get(property=prop)
    assert site.policy == "priority" and site.schedule == [
        {"start": "17:00", "end": "21:00", "limit_a": "40"}
    ]
    assert Circuit.objects.get(name="Row B").parent.name == "Garage"
    body = client.get(page(prop)).content.decode()
    # The page shows them back as rows of inputs (issue 51 item 2).
    assert 'name="sched-0-start" id="sched-0-start" value="17:00"' in body
    assert 'name="sched-0-limit" id="sched-0-limit" value="40"' in body
    assert 'name="circ-1-name" id="circ-1-name" value="Row B"' in body
    assert 'name="circ-1-parent" id="circ-1-parent" value="Garage"' in body


def test_the_host_sets_the_connectors_electrical_data(client, host, prop):
    from power.models import ConnectorPower

    one = ChargerFactory(property=prop, station_id="ROW-1")
    two = ChargerFactory(property=prop, station_id="ROW-2")
    ConnectorPower.objects.create(charger=two, connector_id=1)  # not listed below: removed
    client.force_login(host)
    data = {"limit_a": "63", "phases": "3", "voltage": "230", "policy": "equal"}
    data["circuits"] = "Garage: 32 A"
    data["connectors"] = "ROW-1/1: 1 phase STR, 6-32 A, Garage\nROW-1/2: 3 phases, 6-16 A"
    assert client.post(page(prop), data).status_code == 302
    rows = {r.connector_id: r for r in ConnectorPower.objects.filter(charger=one)}
    assert (rows[1].phases, rows[1].phase_rotation, rows[1].max_a, rows[1].circuit.name) == (
        1,
        "STR",
        Decimal(32),
        "Garage",
    )
    assert rows[2].phases == 3 and rows[2].circuit is None
    assert not ConnectorPower.objects.filter(charger=two).exists()
    body = client.get(page(prop)).content.decode()
    assert "ROW-1/1: 1 phase STR, 6.0-32.0 A, Garage" in body


@pytest.mark.parametrize(
    "field, value",
    [
        ("schedule", "evenings 40"),
        ("circuits", "A: 10 A under B"),
        ("limit_a", "-3"),
        ("connectors", "ELSEWHERE/1: 3 phases, 6-16 A"),
        ("connectors", "bad line"),
    ],
)
def test_bad_input_shows_the_form_again_and_changes_nothing(client, host, prop, field, value):
    client.force_login(host)
    data = {"limit_a": "63", "phases": "3", "voltage": "230", "policy": "equal"}
    data[field] = value
    response = client.post(page(prop), data)
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not SiteBudget.objects.exists()


def test_the_live_card_shows_each_connector_and_who_waits(client, host, prop):
    SiteBudget.objects.create(property=prop, limit_a=Decimal(6))
    for i in range(2):
        ChargingSession.objects.create(
            charger=ChargerFactory(property=prop, station_id=f"POWER-{i}"),
            connector_id=1,
            transaction_id=i + 1,
            id_tag="TAG",
            started_at=timezone.now() - timedelta(minutes=10 - i),
            meter_start_wh=0,
        )
    services.recompute(prop.pk)
    client.force_login(host)
    body = client.get(f"/locations/{prop.pk}/power/live/").content.decode()
    assert "POWER-0" in body and "POWER-1" in body
    assert "Waiting for power, you are next" in body
    assert 'id="power-chart"' in body
    # Both units (issue 45 item 1): 6 A over three phases at 230 V.
    assert "6.0 A <span" in body and "(4140 W over 3 phases)" in body


def test_a_viewer_sees_the_page_without_the_form_and_may_not_post(client, prop):
    SiteBudget.objects.create(property=prop, limit_a=Decimal(40))
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    client.force_login(viewer)
    body = client.get(page(prop)).content.decode()
    assert "save-power" not in body and "40.0 A per phase" in body
    assert client.post(page(prop), {"limit_a": "1"}).status_code == 403
    assert SiteBudget.objects.get().limit_a == Decimal(40)


def test_another_organizations_location_is_not_found(client, prop):
    outsider = MembershipFactory(role="owner").user
    client.force_login(outsider)
    other = PropertyFactory()
    assert client.get(page(other)).status_code == 404
    assert client.get(f"/locations/{other.pk}/power/live/").status_code == 404
    assert client.post(page(other), {"limit_a": "1"}).status_code == 404


def test_the_host_edits_time_windows_and_circuits_in_rows(client, host, prop):
    """Issue 51 item 2: one input per value; a blank row is dropped; a mistake is named by its
    row, in words for inputs, and saves nothing."""
    client.force_login(host)
    base = {"limit_a": "63", "phases": "3", "voltage": "230", "policy": "equal", "rows": "1"}
    rows = {
        "sched-count": "3",
        "sched-0-start": "17:00",
        "sched-0-end": "21:00",
        "sched-0-limit": "40",
        "sched-2-start": "7:00",
        "sched-2-end": "9:00",
        "sched-2-limit": "50",
        "circ-count": "3",
        "circ-0-name": "Garage",
        "circ-0-limit": "32",
        "circ-1-name": "Row B",
        "circ-1-limit": "16",
        "circ-1-parent": "Garage",
    }
    assert client.post(page(prop), {**base, **rows}).status_code == 302
    site = SiteBudget.objects.get(property=prop)
    assert site.schedule == [
        {"start": "17:00", "end": "21:00", "limit_a": "40"},
        {"start": "07:00", "end": "09:00", "limit_a": "50"},
    ]
    assert Circuit.objects.get(name="Row B").parent.name == "Garage"
    bad = {**rows, "sched-2-end": "", "circ-1-parent": "Attic"}
    response = client.post(page(prop), {**base, **bad})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Row 3: give a start and an end as 17:00 and the amperes." in body
    assert 'value="Attic"' in body  # what was typed comes back in its row
    SiteBudget.objects.get(property=prop)  # unchanged
    assert SiteBudget.objects.get(property=prop).schedule == site.schedule
