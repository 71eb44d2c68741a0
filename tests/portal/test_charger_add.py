"""Issue 17: Add charger in the portal, with the API's Station ID rules, a password shown once
and a printable setup card (OCPP URL, Station ID, password, QR label)."""

import pytest
from django.urls import reverse

from chargers.models import Charger
from chargers.security import credentials

pytestmark = pytest.mark.django_db


def _add(site):
    return reverse("chargers:charger-add", args=[site.prop.pk])


def test_owner_adds_a_charger_and_sees_its_password_once_on_the_setup_card(client, site):
    client.force_login(site.manager)
    response = client.post(
        _add(site), {"station_id": "NEW-CP-7", "name": "Entrance", "security_profile": "1"}
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    charger = Charger.objects.get(station_id="NEW-CP-7")
    assert (
        charger.property == site.prop
        and charger.name == "Entrance"
        and charger.security_profile == 1
    )
    password = response.context["password"]
    assert password and len(password) >= 16
    assert credentials.verify(charger.ocpp_password_hash, password)
    body = response.content.decode()
    assert password in body and "shown only this once" in body
    assert "ws://testserver/ocpp/" in body and "ws://testserver/ocpp/NEW-CP-7" in body
    assert "http://testserver/s/NEW-CP-7" in body and "<svg" in body
    assert "setup-card.css" in body
    # The card again later: everything but the password.
    again = client.get(reverse("chargers:charger-setup-card", args=["NEW-CP-7"])).content.decode()
    assert password not in again and "Not shown again" in again and "NEW-CP-7" in again


def test_station_id_follows_the_api_rules(client, site, other, api_client):
    client.force_login(site.owner)
    for bad in ("has space", "colon:id", "ümlaut"):
        response = client.post(_add(site), {"station_id": bad, "security_profile": "1"})
        assert (
            response.status_code == 400 and "Station IDs use letters" in response.content.decode()
        ), bad
    response = client.post(_add(site), {"station_id": "x" * 49, "security_profile": "1"})
    assert response.status_code == 400 and "at most 48 characters" in response.content.decode()
    # Taken elsewhere and taken here get the same answer: no hint about other organizations.
    for taken in (other.charger.station_id, site.charger.station_id):
        response = client.post(_add(site), {"station_id": taken, "security_profile": "1"})
        assert (
            response.status_code == 400
            and "This station id cannot be used." in response.content.decode()
        )
    # The API answers the same words for the same id.
    api_client.force_authenticate(site.owner)
    api = api_client.post(
        "/api/v1/chargers/",
        {"station_id": other.charger.station_id, "property": site.prop.pk},
        format="json",
    )
    assert api.status_code == 400 and api.json()["station_id"] == [
        "This station id cannot be used."
    ]
    assert Charger.objects.filter(property=site.prop).count() == 1


def test_profile_3_gets_no_password_and_profile_0_is_not_offered(client, site):
    client.force_login(site.owner)
    response = client.post(_add(site), {"station_id": "TLS-1", "security_profile": "3"})
    assert response.status_code == 200 and response.context["password"] is None
    assert Charger.objects.get(station_id="TLS-1").ocpp_password_hash == ""
    response = client.post(_add(site), {"station_id": "OPEN-1", "security_profile": "0"})
    assert response.status_code == 400 and not Charger.objects.filter(station_id="OPEN-1").exists()


def test_viewers_and_other_organizations_cannot_add(client, site, other):
    client.force_login(site.viewer)
    assert (
        client.post(_add(site), {"station_id": "V-1", "security_profile": "1"}).status_code == 403
    )
    client.force_login(other.owner)
    assert (
        client.post(_add(site), {"station_id": "V-1", "security_profile": "1"}).status_code == 404
    )
    assert (
        client.get(
            reverse("chargers:charger-setup-card", args=[site.charger.station_id])
        ).status_code
        == 404
    )
    assert not Charger.objects.filter(station_id="V-1").exists()


def test_add_charger_is_offered_to_editors_only(client, site):
    client.force_login(site.owner)
    assert (
        _add(site)
        in client.get(reverse("chargers:location-detail", args=[site.prop.pk])).content.decode()
    )
    assert _add(site) in client.get(reverse("chargers:charger-list")).content.decode()
    client.force_login(site.viewer)
    assert (
        _add(site)
        not in client.get(reverse("chargers:location-detail", args=[site.prop.pk])).content.decode()
    )
    assert _add(site) not in client.get(reverse("chargers:charger-list")).content.decode()
