"""The OCPP version a charger connected with is stored and shown: API, portal Overview, admin."""

import pytest

from chargers.models import Charger

pytestmark = pytest.mark.django_db


@pytest.fixture
def charger201(charger):
    Charger.objects.filter(pk=charger.pk).update(ocpp_version="2.0.1")
    charger.refresh_from_db()
    return charger


def test_api_shows_the_version_read_only(api_client, host, charger201):
    api_client.force_authenticate(host)
    url = f"/api/v1/chargers/{charger201.station_id}/"
    assert api_client.get(url).json()["ocpp_version"] == "2.0.1"
    assert api_client.patch(url, {"ocpp_version": "1.6"}, format="json").status_code == 200
    charger201.refresh_from_db()
    assert charger201.ocpp_version == "2.0.1"


def test_portal_overview_shows_the_protocol(client, host, charger201):
    client.force_login(host)
    page = client.get(f"/chargers/{charger201.station_id}/").content.decode()
    assert "OCPP 2.0.1" in page


def test_admin_lists_the_protocol(admin_client, charger201):
    page = admin_client.get("/admin/chargers/charger/").content.decode()
    assert "2.0.1" in page
