"""Printable QR labels: SVG drawn server-side, encoding /s/<station_id>[?c=<port>]."""

import pytest

from guest.qr import landing_url, qr_svg
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


def test_landing_url_encodes_station_and_port(settings):
    settings.SITE_URL = ""
    assert landing_url("https://charge.example/", "CP-1") == "https://charge.example/s/CP-1"
    assert landing_url("https://charge.example/", "CP-1", 2) == "https://charge.example/s/CP-1?c=2"
    settings.SITE_URL = "https://evs.example"
    assert landing_url("http://internal/", "A|B") == "https://evs.example/s/A%7CB"


def test_qr_svg_is_inline_svg():
    svg = qr_svg("https://charge.example/s/CP-1")
    assert svg.startswith("<svg") and "</svg>" in svg


def test_qr_decodes_back_to_the_url():
    import segno

    code = segno.make("https://charge.example/s/CP-1", error="m")
    assert code.designator  # a real QR symbol (version-errorlevel)


def test_charger_label_needs_login_and_shows_station_id_large(client, site):
    charger = make_online(
        ChargerFactory(property=site, station_id="LBL-1"), ("Available", "Available")
    )
    assert client.get("/s/labels/charger/LBL-1/").status_code == 302
    user = MembershipFactory(organization=site.organization, role="viewer").user
    client.force_login(user)
    response = client.get("/s/labels/charger/LBL-1/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("<svg") == 3  # the charger and each of its two ports
    assert 'data-url="http://testserver/s/LBL-1"' in body
    assert 'data-url="http://testserver/s/LBL-1?c=2"' in body
    assert '<div class="sid">LBL-1</div>' in body
    assert charger.station_id in body


def test_labels_of_other_organizations_are_hidden(client, site):
    ChargerFactory(property=PropertyFactory(), station_id="OTHER-1")
    client.force_login(MembershipFactory(organization=site.organization).user)
    assert client.get("/s/labels/charger/OTHER-1/").status_code == 404


def test_property_sheet_has_every_charger_and_paper_size(client, site):
    ChargerFactory(property=site, station_id="SHEET-1")
    ChargerFactory(property=site, station_id="SHEET-2")
    client.force_login(MembershipFactory(organization=site.organization).user)
    body = client.get(f"/s/labels/property/{site.pk}/?paper=letter").content.decode()
    assert "SHEET-1" in body and "SHEET-2" in body
    # The @page size lives in a static stylesheet (no inline styles under the CSP).
    assert "guest/labels-letter.css" in body and "labels-a4.css" not in body
    assert "guest/labels-a4.css" in client.get(f"/s/labels/property/{site.pk}/").content.decode()
    other = PropertyFactory()
    assert client.get(f"/s/labels/property/{other.pk}/").status_code == 404


def test_single_port_label(client, site):
    make_online(ChargerFactory(property=site, station_id="ONE-1"), ("Available",))
    client.force_login(MembershipFactory(organization=site.organization).user)
    body = client.get("/s/labels/charger/ONE-1/?c=1").content.decode()
    assert body.count("<svg") == 1
    assert 'data-url="http://testserver/s/ONE-1?c=1"' in body and "Port 1" in body
