"""The portal's Network list: chargers by property and unit, moves by owners/managers only, logged."""

import pytest

from chargers.models import Charger
from stays.models import ChargerPlacement, Unit
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def network():
    prop = PropertyFactory(name="Dune Apartments")
    garage = PropertyFactory(organization=prop.organization, name="Town Garage")
    a1 = Unit.objects.create(property=prop, name="Apartment 1")
    a2 = Unit.objects.create(property=prop, name="Apartment 2")
    ChargerFactory(property=prop, unit=a1, station_id="DUNE-A1")
    ChargerFactory(property=prop, station_id="DUNE-SHARED")
    ChargerFactory(property=garage, station_id="GARAGE-1")
    ChargerFactory(station_id="ELSEWHERE-1")  # another organization's
    return prop, garage, a1, a2


def _login(client, organization, role):
    user = MembershipFactory(organization=organization, role=role).user
    client.force_login(user)
    return user


def test_network_list_groups_chargers_by_property_and_unit_and_hides_other_organizations(
    client, network
):
    prop, _, _, _ = network
    _login(client, prop.organization, "viewer")
    page = client.get("/network/").content.decode()
    dune, garage = page.index("Dune Apartments"), page.index("Town Garage")
    shared, apt1, apt2 = (
        page.index("Shared (no unit)"),
        page.index("Apartment 1"),
        page.index("Apartment 2"),
    )
    assert (
        dune
        < shared
        < page.index("DUNE-SHARED")
        < apt1
        < page.index("DUNE-A1")
        < apt2
        < garage
        < page.index("GARAGE-1")
    )
    assert "ELSEWHERE-1" not in page
    assert "Move to" not in page  # viewers see no move form


def test_manager_moves_a_charger_to_another_unit_and_the_move_is_logged(client, network):
    prop, garage, a1, a2 = network
    manager = _login(client, prop.organization, "manager")
    response = client.post("/network/DUNE-A1/move/", {"place": f"{prop.pk}:{a2.pk}"})
    assert response.status_code == 302
    assert Charger.objects.get(station_id="DUNE-A1").unit_id == a2.pk
    client.post("/network/DUNE-A1/move/", {"place": f"{garage.pk}:"})
    charger = Charger.objects.get(station_id="DUNE-A1")
    assert (charger.property_id, charger.unit_id) == (garage.pk, None)
    log = list(
        ChargerPlacement.objects.order_by("id").values_list(
            "from_unit", "to_unit", "to_property", "changed_by"
        )
    )
    assert log == [(a1.pk, a2.pk, prop.pk, manager.pk), (a2.pk, None, garage.pk, manager.pk)]
    page = client.get("/network/").content.decode()
    assert 'id="moves"' in page and "Town Garage" in page


def test_a_viewer_or_a_foreign_place_cannot_move_a_charger(client, network):
    prop, _, a1, a2 = network
    _login(client, prop.organization, "viewer")
    assert client.post("/network/DUNE-A1/move/", {"place": f"{prop.pk}:{a2.pk}"}).status_code == 403
    client.logout()
    _login(client, prop.organization, "owner")
    foreign = PropertyFactory()
    foreign_unit = Unit.objects.create(property=foreign, name="Theirs")
    client.post("/network/DUNE-A1/move/", {"place": f"{foreign.pk}:{foreign_unit.pk}"})
    client.post(
        "/network/DUNE-A1/move/", {"place": f"{prop.pk}:{foreign_unit.pk}"}
    )  # unit of another property
    assert client.post("/network/ELSEWHERE-1/move/", {"place": f"{prop.pk}:"}).status_code == 404
    assert Charger.objects.get(station_id="DUNE-A1").unit_id == a1.pk
    assert not ChargerPlacement.objects.exists()


def test_a_host_creates_a_unit_and_moves_a_charger_into_it_without_the_admin(client, network):
    """Issue 35 item 1: units are created in the portal and "Move to" offers them at once."""
    prop, _, _, _ = network
    _login(client, prop.organization, "owner")
    page = client.get("/network/").content.decode()
    assert f'action="/network/properties/{prop.pk}/units/"' in page
    response = client.post(
        f"/network/properties/{prop.pk}/units/", {"name": " Cabin 3 ", "kind": "cabin"}
    )
    assert response.status_code == 302
    cabin = Unit.objects.get(property=prop, name="Cabin 3")
    assert cabin.kind == "cabin"
    page = client.get("/network/").content.decode()
    assert f'<option value="{prop.pk}:{cabin.pk}">Dune Apartments – Cabin 3</option>' in page
    client.post("/network/DUNE-SHARED/move/", {"place": f"{prop.pk}:{cabin.pk}"})
    assert Charger.objects.get(station_id="DUNE-SHARED").unit_id == cabin.pk
    # The same name twice is refused in words, nothing added.
    response = client.post(
        f"/network/properties/{prop.pk}/units/", {"name": "Cabin 3", "kind": "cabin"}, follow=True
    )
    assert "already has a unit of that name" in response.content.decode()
    assert Unit.objects.filter(property=prop, name="Cabin 3").count() == 1


def test_a_viewer_cannot_add_a_unit(client, network):
    prop, _, _, _ = network
    _login(client, prop.organization, "viewer")
    assert "Add unit" not in client.get("/network/").content.decode()
    response = client.post(f"/network/properties/{prop.pk}/units/", {"name": "X", "kind": "room"})
    assert response.status_code == 403
    assert not Unit.objects.filter(name="X").exists()
