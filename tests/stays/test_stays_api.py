"""Units, a charger's unit and a property's calendars through the API, tenant-scoped; moves are logged."""

import pytest
from rest_framework.test import APIClient

from stays.models import CalendarFeed, ChargerPlacement, Unit
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def site():
    prop = PropertyFactory()
    other_prop = PropertyFactory(organization=prop.organization, name="Second building")
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    return prop, other_prop, owner, viewer


def test_owner_creates_and_renames_units_and_a_duplicate_name_is_refused(site):
    prop, _, owner, _ = site
    api = _client(owner)
    created = api.post(
        "/api/v1/units/",
        {"property": prop.pk, "name": "Cabin 1", "kind": "cabin", "external_id": "L-77"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["kind"] == "cabin" and created.json()["external_id"] == "L-77"
    again = api.post("/api/v1/units/", {"property": prop.pk, "name": "cabin 1"}, format="json")
    assert again.status_code == 400 and "already has a unit" in str(again.json()["name"])
    renamed = api.patch(
        f"/api/v1/units/{created.json()['id']}/", {"name": "Cabin One"}, format="json"
    )
    assert renamed.status_code == 200 and Unit.objects.get().name == "Cabin One"
    assert api.get("/api/v1/units/", {"property": prop.pk}).json()["count"] == 1


def test_viewer_reads_units_but_cannot_write(site):
    prop, _, _, viewer = site
    Unit.objects.create(property=prop, name="A1")
    api = _client(viewer)
    assert api.get("/api/v1/units/").json()["count"] == 1
    # As for every write: a property the user may not write in answers like one that does not exist.
    refused = api.post("/api/v1/units/", {"property": prop.pk, "name": "B"}, format="json")
    assert refused.status_code == 400 and "does not exist" in str(refused.json()["property"])
    unit = Unit.objects.get()
    assert api.patch(f"/api/v1/units/{unit.pk}/", {"name": "X"}, format="json").status_code == 403
    assert (
        api.post(
            f"/api/v1/properties/{prop.pk}/calendars/",
            {"url": "https://example.com/a.ics"},
            format="json",
        ).status_code
        == 403
    )
    assert not CalendarFeed.objects.exists()


def test_another_organizations_property_calendars_are_404_and_a_foreign_unit_is_refused(site):
    prop, _, owner, _ = site
    foreign = PropertyFactory()
    foreign_unit = Unit.objects.create(property=foreign, name="Theirs")
    CalendarFeed.objects.create(property=foreign, name="Theirs", url="https://example.com/t.ics")
    api = _client(owner)
    assert api.get(f"/api/v1/properties/{foreign.pk}/calendars/").status_code == 404
    assert (
        api.post(
            f"/api/v1/properties/{foreign.pk}/calendars/",
            {"url": "https://example.com/a.ics"},
            format="json",
        ).status_code
        == 404
    )
    answer = api.post(
        f"/api/v1/properties/{prop.pk}/calendars/",
        {"url": "https://example.com/a.ics", "unit": foreign_unit.pk},
        format="json",
    )
    assert answer.status_code == 400 and "does not exist" in str(answer.json()["unit"])
    assert CalendarFeed.objects.count() == 1


def test_a_calendar_url_into_a_private_network_is_refused(site):
    prop, _, owner, _ = site
    answer = _client(owner).post(
        f"/api/v1/properties/{prop.pk}/calendars/",
        {"url": "http://10.0.0.5/cal.ics"},
        format="json",
    )
    assert answer.status_code == 400 and "private" in str(answer.json()["url"])


def test_a_unit_of_another_property_is_refused_for_a_charger_and_a_move_is_logged(site):
    prop, other_prop, owner, _ = site
    here = Unit.objects.create(property=prop, name="A1")
    there = Unit.objects.create(property=other_prop, name="B1")
    charger = ChargerFactory(property=prop)
    api = _client(owner)
    url = f"/api/v1/chargers/{charger.station_id}/"
    refused = api.patch(url, {"unit": there.pk}, format="json")
    assert refused.status_code == 400 and "another property" in str(refused.json()["unit"])
    assert not ChargerPlacement.objects.exists()

    assert api.patch(url, {"unit": here.pk}, format="json").json()["unit"] == here.pk
    moved = api.patch(url, {"property": other_prop.pk, "unit": there.pk}, format="json")
    assert (
        moved.status_code == 200
        and moved.json()["unit"] == there.pk
        and moved.json()["property"] == other_prop.pk
    )
    log = list(
        ChargerPlacement.objects.order_by("id").values_list(
            "from_property", "from_unit", "to_property", "to_unit", "changed_by"
        )
    )
    assert log == [
        (prop.pk, None, prop.pk, here.pk, owner.pk),
        (prop.pk, here.pk, other_prop.pk, there.pk, owner.pk),
    ]
    # Moving to another property without naming a unit leaves the charger shared there.
    back = api.patch(url, {"property": prop.pk}, format="json")
    assert back.status_code == 200 and back.json()["unit"] is None
