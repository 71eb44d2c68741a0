"""Seed 002 item 5: reimbursement cards are set up per location's chargers in Locations, and the
authorization engine then refuses them at other stations (reimbursement_not_allowed)."""

import pytest
from django.urls import reverse

from authorization.decisions import Context
from authorization.models import Token
from authorization.services import decide_sync
from chargers.sessions.services import charger_facts
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _detail(site):
    return reverse("chargers:location-detail", args=[site.prop.pk])


def test_a_card_allowed_at_this_location_charges_here_and_nowhere_else(client, site):
    elsewhere = ChargerFactory(
        property=site.prop.__class__.objects.create(
            organization=site.org, name="Other site", timezone="UTC", currency="EUR"
        ),
        station_id="ELSEWHERE-1",
    )
    client.force_login(site.manager)
    response = client.post(
        reverse("chargers:location-reimbursement", args=[site.prop.pk]),
        {"uid": "EMP-0042", "label": "Jo (home)", "stations": [site.charger.station_id]},
        follow=True,
    )
    token = Token.objects.get(organization=site.org, uid="EMP-0042")
    assert token.allowed_station_ids == [site.charger.station_id] and token.label == "Jo (home)"
    body = response.content.decode()
    assert "EMP-0042" in body and "Remove from this location" in body
    assert decide_sync(
        uid="EMP-0042", charger=charger_facts(site.charger), context=Context.LOCAL
    ).accepted
    refused = decide_sync(uid="EMP-0042", charger=charger_facts(elsewhere), context=Context.LOCAL)
    assert refused.reason == "reimbursement_not_allowed"


def test_removing_the_last_location_says_the_card_is_no_longer_limited(client, site):
    site.token.allowed_station_ids = [site.charger.station_id]
    site.token.save()
    client.force_login(site.owner)
    assert site.token.uid in client.get(_detail(site)).content.decode()
    response = client.post(
        reverse("chargers:location-reimbursement-remove", args=[site.prop.pk, site.token.pk]),
        follow=True,
    )
    site.token.refresh_from_db()
    assert site.token.allowed_station_ids == []
    assert "no longer limited" in response.content.decode()


def test_only_this_locations_chargers_and_own_cards_and_editors(client, site, other):
    client.force_login(site.owner)
    url = reverse("chargers:location-reimbursement", args=[site.prop.pk])
    response = client.post(url, {"uid": "X-1", "stations": [other.charger.station_id]})
    assert response.status_code == 400 and not Token.objects.filter(uid="X-1").exists()
    remove_theirs = reverse(
        "chargers:location-reimbursement-remove", args=[site.prop.pk, other.token.pk]
    )
    assert client.post(remove_theirs).status_code == 404
    client.force_login(site.viewer)
    assert (
        client.post(url, {"uid": "X-1", "stations": [site.charger.station_id]}).status_code == 403
    )
    assert "Allow this card here" not in client.get(_detail(site)).content.decode()
    client.force_login(other.owner)
    assert (
        client.post(url, {"uid": "X-1", "stations": [site.charger.station_id]}).status_code == 404
    )


def test_a_location_with_many_chargers_lists_them_a_page_at_a_time_and_takes_typed_station_ids(
    client, site, other
):
    ChargerFactory.create_batch(60, property=site.prop)
    station_ids = sorted(site.prop.chargers.values_list("station_id", flat=True))
    client.force_login(site.manager)
    first = client.get(_detail(site)).content.decode()
    assert "(61)" in first and "Page 1 of 2" in first
    assert (
        station_ids[0] in first
        and station_ids[-1] not in first.split('class="reimbursement-form"')[0]
    )
    assert station_ids[-1] in client.get(_detail(site) + "?page=2").content.decode()
    assert 'type="checkbox" name="stations"' not in first  # a wall of 61 boxes: typed instead
    url = reverse("chargers:location-reimbursement", args=[site.prop.pk])
    # Another location's charger is refused by name, and nothing is created.
    refused = client.post(
        url, {"uid": "EMP-7", "stations": f"{station_ids[0]}, {other.charger.station_id}"}
    )
    assert (
        refused.status_code == 400 and "Not a charger at this location" in refused.content.decode()
    )
    assert not Token.objects.filter(uid="EMP-7").exists()
    client.post(url, {"uid": "EMP-7", "stations": f"{station_ids[0]} {station_ids[5]}"})
    assert Token.objects.get(uid="EMP-7").allowed_station_ids == sorted(
        [station_ids[0], station_ids[5]]
    )
    client.post(url, {"uid": "EMP-8", "stations": "*"})
    assert sorted(Token.objects.get(uid="EMP-8").allowed_station_ids) == station_ids
