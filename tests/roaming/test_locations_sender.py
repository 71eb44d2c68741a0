"""Locations sender: only public roaming chargers, with EVSE status; pagination and date filters."""

from datetime import timedelta

from django.utils import timezone

from roaming.models import LocationProfile
from tests.factories import ChargerFactory, PropertyFactory
from tests.roaming.conftest import auth, located, online


def _get(client, url, **headers):
    return client.get(url, HTTP_AUTHORIZATION=auth(), **headers)


def test_only_public_roaming_chargers_at_located_properties_are_published(
    client, operator, partner
):
    response = _get(client, "/ocpi/2.2.1/locations")

    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 1000
    assert [loc["id"] for loc in body["data"]] == [str(operator["public"].pk)]
    location = body["data"][0]
    assert (location["country_code"], location["party_id"], location["publish"]) == (
        "NL",
        "EVB",
        True,
    )
    assert location["coordinates"] == {"latitude": "52.090737", "longitude": "5.121420"}
    # One EVSE per OCPP connector of the public charger; connector 0 and the private and
    # guest-only chargers are not there.
    statuses = {evse["uid"]: evse["status"] for evse in location["evses"]}
    assert statuses == {"PUB-1*1": "AVAILABLE", "PUB-1*2": "CHARGING"}
    assert location["evses"][0]["evse_id"] == "NL*EVB*EPUB11"


def test_an_offline_charger_is_unknown_and_an_out_of_order_one_outoforder(
    client, operator, partner
):
    charger = operator["cp_public"]
    type(charger).objects.filter(pk=charger.pk).update(connection_id="")
    evses = _get(client, "/ocpi/2.2.1/locations").json()["data"][0]["evses"]
    assert {e["status"] for e in evses} == {"UNKNOWN"}
    type(charger).objects.filter(pk=charger.pk).update(out_of_order=True)
    evses = _get(client, "/ocpi/2.2.1/locations").json()["data"][0]["evses"]
    assert {e["status"] for e in evses} == {"OUTOFORDER"}


def test_a_charger_that_switches_roaming_off_disappears(client, operator, partner):
    charger = operator["cp_public"]
    type(charger).objects.filter(pk=charger.pk).update(roaming_enabled=False)
    assert _get(client, "/ocpi/2.2.1/locations").json()["data"] == []


def test_pages_carry_link_total_and_limit_and_keep_the_filters(client, operator, partner):
    for n in range(4):
        prop = PropertyFactory(organization=operator["org"], roaming_enabled=True)
        located(prop)
        online(ChargerFactory(property=prop, station_id=f"MORE-{n}"), {1: "Available"})

    first = _get(client, "/ocpi/2.2.1/locations?limit=2&date_from=2000-01-01T00:00:00Z")

    assert first["X-Total-Count"] == "5" and first["X-Limit"] == "2"
    assert len(first.json()["data"]) == 2
    link = first["Link"]
    assert link.startswith(
        "<http://testserver/ocpi/2.2.1/locations?offset=2&limit=2&date_from=2000-01-01"
    )
    assert link.endswith('>; rel="next"')
    ids = [loc["id"] for loc in first.json()["data"]]
    url = link[1 : link.index(">")].replace("http://testserver", "")
    while url:
        page = _get(client, url)
        ids += [loc["id"] for loc in page.json()["data"]]
        url = (
            page["Link"][1 : page["Link"].index(">")].replace("http://testserver", "")
            if page.has_header("Link")
            else ""
        )
    assert len(ids) == len(set(ids)) == 5


def test_date_to_is_exclusive_and_date_from_inclusive(client, operator, partner):
    all_locations = _get(client, "/ocpi/2.2.1/locations").json()["data"]
    stamp = all_locations[0]["last_updated"]
    assert len(_get(client, f"/ocpi/2.2.1/locations?date_from={stamp}").json()["data"]) == 1
    assert _get(client, f"/ocpi/2.2.1/locations?date_to={stamp}").json()["data"] == []
    later = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _get(client, f"/ocpi/2.2.1/locations?date_from={later}").json()["data"] == []
    assert _get(client, "/ocpi/2.2.1/locations?date_from=soon").json()["status_code"] == 2001


def test_one_location_evse_and_connector_and_404_for_unpublished_ones(client, operator, partner):
    loc = operator["public"].pk
    assert _get(client, f"/ocpi/2.2.1/locations/{loc}").json()["data"]["id"] == str(loc)
    evse = _get(client, f"/ocpi/2.2.1/locations/{loc}/PUB-1*2").json()["data"]
    assert evse["status"] == "CHARGING"
    connector = _get(client, f"/ocpi/2.2.1/locations/{loc}/PUB-1*2/1").json()["data"]
    assert connector["standard"] == "IEC_62196_T2"
    for url in (
        f"/ocpi/2.2.1/locations/{operator['closed'].pk}",
        f"/ocpi/2.2.1/locations/{loc}/PRIV-1*1",
        f"/ocpi/2.2.1/locations/{loc}/PUB-1*2/9",
    ):
        response = _get(client, url)
        assert response.status_code == 404 and response.json()["status_code"] == 2003


def test_another_operators_partner_sees_none_of_our_locations(client, operator):
    from tests.roaming.conftest import connected_partner

    other = PropertyFactory(roaming_enabled=True)
    connected_partner(other.organization)
    assert _get(client, "/ocpi/2.2.1/locations").json()["data"] == []


def test_token_a_and_a_pending_partner_get_401_on_locations(client, operator):
    from roaming import services

    _, token_a = services.partner_invite(organization=operator["org"], name="New")
    response = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth(token_a))
    assert response.status_code == 401


def test_location_data_changes_move_last_updated(client, operator, partner):
    before = _get(client, "/ocpi/2.2.1/locations").json()["data"][0]["last_updated"]
    profile = LocationProfile.objects.get(property=operator["public"])
    LocationProfile.objects.filter(pk=profile.pk).update(
        updated_at=timezone.now() + timedelta(hours=1)
    )
    after = _get(client, "/ocpi/2.2.1/locations").json()["data"][0]["last_updated"]
    assert after > before
