"""Issue 45 item 5: one request cannot burn a core. Every list a request sends is bounded and
refused at once with a 400 naming the field; the circuit check is linear."""

from __future__ import annotations

from decimal import Decimal

import pytest

from power import allocation, services
from power.models import SiteBudget
from tests.factories import MembershipFactory

A = Decimal
BUDGET = {"limit_a": "63", "phases": 3, "voltage": 230, "policy": "equal"}


def url(prop, tail: str = "") -> str:
    return f"/api/v1/properties/{prop.pk}/power/{tail}"


def chain(depth: int) -> list[dict]:
    return [
        {"name": f"C{i}", "limit_a": "32", "parent": f"C{i - 1}" if i else None}
        for i in range(depth)
    ]


@pytest.fixture
def client(api_client, host):
    api_client.force_authenticate(host)
    return api_client


def test_the_circuit_check_walks_each_circuit_once():
    # 100,000 deep: each circuit is walked up once, so this is as cheap as a flat list.
    parents = {f"C{i}": f"C{i - 1}" if i else allocation.MAIN for i in range(100_000)}
    allocation.check_tree(parents)
    parents["C0"] = "C99999"  # the chain now closes on itself
    with pytest.raises(allocation.CircuitError, match="loop"):
        allocation.check_tree(parents)
    with pytest.raises(allocation.CircuitError, match="'C5' hangs from an unknown"):
        allocation.check_tree({"C5": "nowhere"})
    paths = allocation.circuit_paths(
        allocation.Budget(
            A(63),
            circuits=(
                allocation.Circuit("B", A(16), "A"),
                allocation.Circuit("A", A(32), allocation.MAIN),
            ),
        )
    )
    assert paths == {
        allocation.MAIN: (allocation.MAIN,),
        "A": ("A", allocation.MAIN),
        "B": ("B", "A", allocation.MAIN),
    }


@pytest.mark.django_db
def test_a_5000_deep_circuit_chain_is_refused_with_a_400(client, prop):
    response = client.put(url(prop), {**BUDGET, "circuits": chain(5000)}, format="json")
    assert response.status_code == 400
    assert "circuits" in response.json()
    assert not SiteBudget.objects.exists()
    # At the bound, a deep chain is accepted.
    deep = chain(services.MAX_CIRCUITS)
    assert client.put(url(prop), {**BUDGET, "circuits": deep}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_20000_entry_schedule_is_refused_with_a_400(client, prop):
    entry = {"start": "17:00", "end": "21:00", "limit_a": "40"}
    response = client.put(url(prop), {**BUDGET, "schedule": [entry] * 20_000}, format="json")
    assert response.status_code == 400 and "schedule" in response.json()
    days = {**entry, "days": [0, 1, 2, 3, 4, 5, 6] * 1000}
    response = client.put(url(prop), {**BUDGET, "schedule": [days]}, format="json")
    assert response.status_code == 400 and "schedule" in response.json()
    assert not SiteBudget.objects.exists()


@pytest.mark.django_db
def test_a_reading_beyond_the_site_is_a_400_naming_limit_kw(client, prop):
    assert client.put(url(prop), BUDGET, format="json").status_code == 200
    response = client.post(url(prop, "reading/"), {"limit_kw": "999999"}, format="json")
    assert response.status_code == 400 and "limit_kw" in response.json()
    assert SiteBudget.objects.get(property=prop).live_limit_a is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [
        ("circuits", "Garage: 99999999 A"),
        ("connectors", "ROW-1/1: 3 phases, 6-99999999 A"),
        ("schedule", "17:00-21:00 40 A\n" * 101),
        ("circuits", "\n".join(f"C{i}: 32 A" for i in range(201))),
    ],
)
def test_the_portal_refuses_amperes_and_lists_beyond_their_bounds(client, host, prop, field, value):
    from tests.factories import ChargerFactory

    ChargerFactory(property=prop, station_id="ROW-1")
    client.force_login(host)
    data = {"limit_a": "63", "phases": "3", "voltage": "230", "policy": "equal", field: value}
    response = client.post(f"/locations/{prop.pk}/power/", data)
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not SiteBudget.objects.exists()


@pytest.mark.django_db
def test_a_token_group_with_too_many_tokens_is_refused_before_any_is_read(client, prop):
    org = prop.organization
    MembershipFactory(organization=org)
    response = client.post(
        "/api/v1/token-groups/",
        {"organization": org.pk, "name": "Fleet", "tokens": list(range(1, 20_002))},
        format="json",
    )
    assert response.status_code == 400 and response.json()["tokens"] == ["At most 1000 items."]
