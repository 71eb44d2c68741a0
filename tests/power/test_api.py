"""The power API: budget GET/PUT/DELETE, live reading, allocations; validation, tenants, roles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import ChargingSession
from power.models import Circuit, ConnectorAllocation, ConnectorPower, SiteBudget
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db
A = Decimal

BUDGET = {
    "limit_a": "63",
    "phases": 3,
    "voltage": 230,
    "policy": "equal",
    "schedule": [{"start": "17:00", "end": "21:00", "limit_a": "40"}],
    "circuits": [
        {"name": "Main garage", "limit_a": "40"},
        {"name": "Sub", "limit_a": "32", "parent": "Main garage"},
    ],
}


def url(prop, tail: str = "") -> str:
    return f"/api/v1/properties/{prop.pk}/power/{tail}"


def start(charger, minutes_ago: int = 5) -> ChargingSession:
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=charger.pk,
        id_tag="TAG",
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        meter_start_wh=0,
    )


@pytest.fixture
def client(api_client, host):
    api_client.force_authenticate(host)
    return api_client


def test_put_creates_the_budget_and_get_returns_it(client, prop):
    assert client.get(url(prop)).status_code == 404
    response = client.put(url(prop), BUDGET, format="json")
    assert response.status_code == 200, response.json()
    body = client.get(url(prop)).json()
    assert body["limit_a"] == "63.0" and body["policy"] == "equal"
    assert body["circuits"] == [
        {"name": "Main garage", "limit_a": "40.0", "parent": None},
        {"name": "Sub", "limit_a": "32.0", "parent": "Main garage"},
    ]
    assert body["schedule"][0]["limit_a"] == "40.0"
    assert body["source"] in ("static", "schedule")
    assert Circuit.objects.get(name="Sub").parent.name == "Main garage"


def test_put_sets_connectors_and_allocations_follow(client, prop):
    chargers = [ChargerFactory(property=prop) for _ in range(3)]
    for i, c in enumerate(chargers):
        start(c, minutes_ago=10 - i)
    body = dict(BUDGET, schedule=[], limit_a="20")
    body["connectors"] = [
        {
            "station_id": chargers[0].station_id,
            "connector_id": 1,
            "phases": 1,
            "max_a": "16",
            "circuit": "Sub",
        }
    ]
    assert client.put(url(prop), body, format="json").status_code == 200
    assert ConnectorPower.objects.get(charger=chargers[0]).circuit.name == "Sub"
    rows = client.get(url(prop, "allocations/")).json()
    # The single-phase one shares L1 with the others: L1 is full at 20 A, nobody rises further.
    assert [(r["station_id"], r["limit_a"], r["waiting"]) for r in rows] == [
        (c.station_id, "6.6", False) for c in sorted(chargers, key=lambda c: c.station_id)
    ]
    keys = {"station_id", "connector_id", "limit_a", "measured_a", "waiting", "reason"}
    assert all(set(r) >= keys for r in rows)
    # Both units (issue 45 item 1): W over the phases the car draws on, at the site's voltage.
    watts = {r["station_id"]: (r["limit_w"], r["number_phases"], r["unit"]) for r in rows}
    assert watts[chargers[0].station_id] == ("1518", 1, "A")  # 6.6 A x 230 V x 1
    assert watts[chargers[1].station_id] == ("4554", 3, "A")  # 6.6 A x 230 V x 3


def test_a_live_reading_lowers_every_limit_at_once(client, prop):
    for i in range(3):
        start(ChargerFactory(property=prop), minutes_ago=10 - i)
    client.put(url(prop), dict(BUDGET, schedule=[], circuits=[]), format="json")
    assert {a.limit_a for a in ConnectorAllocation.objects.all()} == {A(21)}
    response = client.post(
        url(prop, "reading/"), {"limit_a": "30", "valid_for_s": 60}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["source"] == "live" and response.json()["limit_in_force_a"] == "30.0"
    assert {a.limit_a for a in ConnectorAllocation.objects.all()} == {A(10)}
    # In kW: 13.8 kW / (230 V × 3) = 20 A.
    client.post(url(prop, "reading/"), {"limit_kw": "13.8"}, format="json")
    assert SiteBudget.objects.get().live_limit_a == A(20)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"limit_a": "-1"}, "limit_a"),
        ({"limit_a": "abc"}, "limit_a"),
        ({"policy": "fastest"}, "policy"),
        ({"phases": 2}, "phases"),
        ({"voltage": 12}, "voltage"),
        ({"schedule": [{"start": "25:00", "end": "07:00", "limit_a": "10"}]}, "schedule"),
        (
            {"schedule": [{"start": "07:00", "end": "09:00", "limit_a": "10", "days": [7]}]},
            "schedule",
        ),
        ({"circuits": [{"name": "A", "limit_a": "10", "parent": "B"}]}, "circuits"),
        (
            {
                "circuits": [
                    {"name": "A", "limit_a": "10", "parent": "B"},
                    {"name": "B", "limit_a": "10", "parent": "A"},
                ]
            },
            "circuits",
        ),
        (
            {"circuits": [{"name": "A", "limit_a": "10"}, {"name": "A", "limit_a": "12"}]},
            "circuits",
        ),
        ({"connectors": [{"station_id": "NOPE", "connector_id": 1}]}, "connectors"),
    ],
)
def test_bad_input_is_a_clear_400_and_changes_nothing(client, prop, change, field):
    response = client.put(url(prop), dict(BUDGET, **change), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not SiteBudget.objects.exists() and not Circuit.objects.exists()


def test_the_budget_may_be_given_in_kw(client, prop):
    body = dict(BUDGET, circuits=[])
    del body["limit_a"]
    body["limit_kw"] = "43.47"  # 63 A × 230 V × 3 = 43.47 kW
    response = client.put(url(prop), body, format="json")
    assert response.status_code == 200 and response.json()["limit_a"] == "63.0"
    both = dict(body, limit_a="63")
    assert client.put(url(prop), both, format="json").status_code == 400


def test_a_reading_needs_a_budget_and_one_value(client, prop):
    assert client.post(url(prop, "reading/"), {"limit_a": "30"}, format="json").status_code == 404
    client.put(url(prop), BUDGET, format="json")
    assert client.post(url(prop, "reading/"), {}, format="json").status_code == 400
    both = {"limit_a": "30", "limit_kw": "10"}
    assert client.post(url(prop, "reading/"), both, format="json").status_code == 400


def test_another_organizations_property_is_not_found_for_every_method(api_client, prop):
    other = PropertyFactory()
    SiteBudget.objects.create(property=other, limit_a=A(63))
    outsider = MembershipFactory(role="owner").user
    api_client.force_authenticate(outsider)
    assert api_client.get(url(other)).status_code == 404
    assert api_client.put(url(other), BUDGET, format="json").status_code == 404
    assert api_client.delete(url(other)).status_code == 404
    assert (
        api_client.post(url(other, "reading/"), {"limit_a": "1"}, format="json").status_code == 404
    )
    assert api_client.get(url(other, "allocations/")).status_code == 404
    assert SiteBudget.objects.get(property=other).limit_a == A(63)


def test_a_viewer_reads_but_may_not_write(api_client, prop):
    SiteBudget.objects.create(property=prop, limit_a=A(63))
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    api_client.force_authenticate(viewer)
    assert api_client.get(url(prop)).status_code == 200
    assert api_client.get(url(prop, "allocations/")).status_code == 200
    assert api_client.put(url(prop), BUDGET, format="json").status_code == 403
    assert (
        api_client.post(url(prop, "reading/"), {"limit_a": "1"}, format="json").status_code == 403
    )
    assert api_client.delete(url(prop)).status_code == 403
    assert SiteBudget.objects.get(property=prop).live_limit_a is None


def test_anonymous_is_refused(api_client, prop):
    assert api_client.get(url(prop)).status_code in (401, 403)


def test_delete_removes_the_budget_and_the_allocation(client, prop):
    start(ChargerFactory(property=prop))
    client.put(url(prop), BUDGET, format="json")
    assert ConnectorAllocation.objects.count() == 1
    assert client.delete(url(prop)).status_code == 204
    assert not SiteBudget.objects.exists() and not ConnectorAllocation.objects.exists()
