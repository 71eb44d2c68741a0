"""Creating a charger never tells a host whether a station id exists in another organization."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from chargers.models import Charger

pytestmark = pytest.mark.django_db


def create(user, station_id: str, prop):
    api = APIClient()
    api.force_authenticate(user)
    return api.post(
        "/api/v1/chargers/", {"station_id": station_id, "property": prop.pk}, format="json"
    )


def test_a_taken_station_id_gets_one_answer_whoever_has_it(mine, theirs):
    own = create(mine.owner, mine.charger.station_id, mine.prop)
    foreign = create(mine.owner, theirs.charger.station_id, mine.prop)
    assert own.status_code == foreign.status_code == 400
    assert own.json() == foreign.json() == {"station_id": ["This station id cannot be used."]}
    assert (
        Charger.objects.filter(station_id=theirs.charger.station_id).get().property_id
        == theirs.prop.pk
    )


def test_a_free_station_id_is_created(mine):
    assert create(mine.owner, "FRESH-1", mine.prop).status_code == 201


def test_a_malformed_station_id_still_explains_the_format(mine):
    response = create(mine.owner, "has space", mine.prop)
    assert response.status_code == 400 and "letters, digits" in str(response.json()["station_id"])


@pytest.mark.parametrize(
    "url, param",
    [
        ("/api/v1/tokens/", "organization"),
        ("/api/v1/tokens/", "msp"),
        ("/api/v1/chargers/", "property"),
        ("/api/v1/rates/", "charger"),
        ("/api/v1/payouts/", "organization"),
        ("/api/v1/payments/", "session"),
    ],
)
def test_filtering_by_another_organizations_id_answers_like_an_unknown_id(url, param, mine, theirs):
    api = APIClient()
    api.force_authenticate(mine.owner)
    foreign = {
        "organization": theirs.org.pk,
        "msp": theirs.msp.pk,
        "property": theirs.prop.pk,
        "charger": theirs.charger.pk,
        "session": theirs.session.pk,
    }[param]
    refused, unknown = api.get(url, {param: foreign}), api.get(url, {param: 987654321})
    assert refused.status_code == unknown.status_code == 400
    assert str(refused.json()).replace(str(foreign), "<id>") == str(unknown.json()).replace(
        "987654321", "<id>"
    )
