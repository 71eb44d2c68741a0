"""Portal: the roaming partners page (state, pushes, pulls, errors, counts), invite / connect,
the per-partner OCPI log search, unregistering, and a location's roaming data."""

import re

import pytest
from django.utils import timezone

from roaming import ocpi, services
from roaming.models import Delivery, EvseProfile, LocationProfile, OcpiLog, Partner
from tests.factories import MembershipFactory, OrganizationFactory, PropertyFactory
from tests.roaming.conftest import connected_partner
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def owner(operator):
    return MembershipFactory(organization=operator["org"], role="owner").user


@pytest.fixture
def viewer(operator):
    return MembershipFactory(organization=operator["org"], role="viewer").user


def test_the_partner_list_shows_state_last_push_and_pull_errors_and_counts(client, owner, partner):
    Partner.objects.filter(pk=partner.pk).update(
        last_push_at=timezone.now(),
        last_pull_at=timezone.now(),
        last_error="PATCH locations: OCPI 2001: bad",
        last_error_at=timezone.now(),
        last_error_ocpi_status=2001,
    )
    services.delivery_enqueue(
        partner=partner, module="cdrs", object_key="cdr:1", method="POST", path="", body={}
    )
    client.force_login(owner)

    page = client.get("/roaming/partners/").content.decode()

    row = re.search(r"<tbody>.*?</tbody>", page, re.S).group(0)
    assert "eMSP" in row and "DE*EMS" in row and "Connected" in row
    # The error in words: what failed and why (the raw text is on the partner's page).
    assert (
        "Sending a charger&#x27;s status failed: it refused the data as invalid (OCPI 2001)" in row
    )
    assert '<td data-label="Waiting"><span class="badge badge-warn">1</span>' in row


def test_an_owner_invites_a_partner_and_sees_token_a_once(client, owner, operator):
    client.force_login(owner)

    response = client.post(
        "/roaming/partners/",
        {"action": "invite", "invite-organization": operator["org"].pk, "invite-name": "New eMSP"},
    )

    token_a = re.search(r'id="token-a">([^<]+)<', response.content.decode()).group(1)
    partner = Partner.objects.get(name="New eMSP")
    assert partner.state == "pending" and partner.token_a_hash == ocpi.token_hash(token_a)
    assert "http://testserver/ocpi/versions" in response.content.decode()
    assert token_a not in client.get("/roaming/partners/").content.decode()


def test_an_owner_connects_to_a_partner_from_its_versions_url(
    client, owner, operator, live_server, settings
):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.SITE_URL = live_server.url  # the stub calls our versions URL back
    stub = EmspStub()
    try:
        client.force_login(owner)
        response = client.post(
            "/roaming/partners/",
            {
                "action": "connect",
                "connect-organization": operator["org"].pk,
                "connect-name": "Stub",
                "connect-versions_url": stub.versions_url,
                "connect-token_a": stub.token_a,
            },
        )
        partner = Partner.objects.get(name="Stub")
        assert (
            response.status_code == 302
            and response["Location"] == f"/roaming/partners/{partner.pk}/"
        )
        assert partner.state == "connected" and partner.outgoing_token == stub.cpo_token
    finally:
        stub.close()


def test_a_partner_url_in_a_private_network_is_refused_by_the_form(
    client, owner, operator, settings
):
    settings.MSP_URL_ALLOWLIST = []
    client.force_login(owner)
    response = client.post(
        "/roaming/partners/",
        {
            "action": "connect",
            "connect-organization": operator["org"].pk,
            "connect-name": "Evil",
            "connect-versions_url": "http://127.0.0.1:8000/ocpi/versions",
            "connect-token_a": "x",
        },
    )
    assert response.status_code == 200 and not Partner.objects.filter(name="Evil").exists()


def test_viewers_cannot_add_partners_and_other_operators_partners_are_404(
    client, viewer, operator, partner
):
    client.force_login(viewer)
    assert (
        client.post(
            "/roaming/partners/",
            {"action": "invite", "invite-organization": operator["org"].pk, "invite-name": "x"},
        ).status_code
        == 403
    )
    assert client.post(f"/roaming/partners/{partner.pk}/unregister/").status_code == 403
    foreign = connected_partner(OrganizationFactory(), token="foreign-token")
    assert client.get(f"/roaming/partners/{foreign.pk}/").status_code == 404
    assert "foreign" not in client.get("/roaming/partners/").content.decode()
    assert Partner.objects.filter(state="connected").count() == 2


def test_the_ocpi_log_of_a_partner_is_searchable(client, owner, partner):
    OcpiLog.objects.create(
        partner=partner,
        direction="in",
        module="tokens",
        method="PUT",
        url="/ocpi/2.2.1/tokens/DE/EMS/AA01",
        http_status=200,
        ocpi_status=2001,
        error="bad uid",
    )
    OcpiLog.objects.create(
        partner=partner,
        direction="out",
        module="locations",
        method="PATCH",
        url="https://emsp/locations/NL/EVB/1/CP*1",
        http_status=200,
        ocpi_status=1000,
    )
    client.force_login(owner)

    found = client.get(f"/roaming/partners/{partner.pk}/?q=2001").content.decode()
    assert "/tokens/DE/EMS/AA01" in found and "CP*1" not in found
    found = client.get(f"/roaming/partners/{partner.pk}/?q=locations").content.decode()
    assert "CP*1" in found and "AA01" not in found


def test_unregistering_stops_the_partner_calling_us(client, owner, partner):
    client.force_login(owner)
    client.post(f"/roaming/partners/{partner.pk}/unregister/")
    partner.refresh_from_db()
    assert partner.state == "unregistered"
    from tests.roaming.conftest import auth

    assert client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth()).status_code == 401


def test_saving_a_locations_roaming_data_publishes_it_and_puts_it_to_partners(
    client, owner, operator, partner, django_capture_on_commit_callbacks
):
    prop = operator["nodata"]
    client.force_login(owner)
    charger = operator["cp_nodata"]
    data = {
        "loc-address": "Markt 1",
        "loc-city": "Gouda",
        "loc-postal_code": "2801",
        "loc-country": "nld",
        "loc-latitude": "52.011",
        "loc-longitude": "4.710",
        "loc-open_24_7": "on",
        f"cp{charger.pk}-standard": "IEC_62196_T2_COMBO",
        f"cp{charger.pk}-format": "CABLE",
        f"cp{charger.pk}-power_type": "DC",
        f"cp{charger.pk}-max_voltage": "920",
        f"cp{charger.pk}-max_amperage": "200",
        f"cp{charger.pk}-max_electric_power": "150000",
    }

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/roaming/locations/{prop.pk}/", data)

    assert response.status_code == 302
    assert LocationProfile.objects.get(property=prop).country == "NLD"
    assert EvseProfile.objects.get(charger=charger).power_type == "DC"
    assert len(callbacks) == 1
    from tests.roaming.conftest import auth

    locations = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth()).json()["data"]
    gouda = next(loc for loc in locations if loc["id"] == str(prop.pk))
    assert gouda["evses"][0]["connectors"][0]["standard"] == "IEC_62196_T2_COMBO"
    assert gouda["evses"][0]["connectors"][0]["max_electric_power"] == 150000
    assert gouda["address"] == "Markt 1"
    from roaming import services as roaming_services

    assert roaming_services.location_push_queue(property_id=prop.pk) == [partner.pk]
    put = Delivery.objects.get(partner=partner, object_key=f"location:{prop.pk}")
    assert (put.method, put.path, put.body["id"]) == ("PUT", f"/NL/EVB/{prop.pk}", str(prop.pk))


def test_a_viewer_sees_the_roaming_data_but_cannot_change_it(client, viewer, operator):
    client.force_login(viewer)
    prop = operator["public"]
    assert client.get(f"/roaming/locations/{prop.pk}/").status_code == 200
    assert client.post(f"/roaming/locations/{prop.pk}/", {"loc-city": "X"}).status_code == 403
    other = PropertyFactory()
    assert client.get(f"/roaming/locations/{other.pk}/").status_code == 404


def _connector_fields(charger) -> dict:
    return {
        f"cp{charger.pk}-standard": "IEC_62196_T2",
        f"cp{charger.pk}-format": "SOCKET",
        f"cp{charger.pk}-power_type": "AC_3_PHASE",
        f"cp{charger.pk}-max_voltage": "400",
        f"cp{charger.pk}-max_amperage": "32",
        f"cp{charger.pk}-max_electric_power": "22000",
    }


def test_a_host_enters_address_operator_and_opening_hours_of_a_location(client, owner, operator):
    """Issue 35 item 2: everything a partner publishes about a location is editable by the host,
    checked by the same rules as the API (roaming.location_data)."""
    prop = operator["nodata"]
    client.force_login(owner)
    page = client.get(f"/locations/{prop.pk}/").content.decode()
    assert f'href="/roaming/locations/{prop.pk}/" id="edit-address"' in page
    listing = client.get("/roaming/partners/").content.decode()
    assert "missing: city, country, coordinates" in listing
    assert f'<a href="/roaming/locations/{prop.pk}/" class="fix-link">Enter them' in listing
    data = {
        "loc-address": "Markt 1",
        "loc-city": "Gouda",
        "loc-postal_code": "2801 JG",
        "loc-country": "NLD",
        "loc-latitude": "52.0116",
        "loc-longitude": "4.7105",
        "loc-operator_name": "Gouda Parking",
        "loc-day1_begin": "08:00",
        "loc-day1_end": "18:00",
        "loc-day6_begin": "09:00",
        "loc-day6_end": "13:00",
        **_connector_fields(operator["cp_nodata"]),
    }
    # Hours given for a day without its closing time, or closing before opening: said per day.
    bad = client.post(f"/roaming/locations/{prop.pk}/", {**data, "loc-day6_end": "08:00"})
    assert bad.status_code == 200
    assert "Saturday: the closing time is before opening." in bad.content.decode()
    bad = client.post(
        f"/roaming/locations/{prop.pk}/",
        {k: v for k, v in data.items() if not k.startswith("loc-day")},
    )
    assert "Give the opening hours of at least one day, or tick Open 24/7." in bad.content.decode()
    assert not LocationProfile.objects.filter(property=prop).exists()

    assert client.post(f"/roaming/locations/{prop.pk}/", data).status_code == 302
    profile = LocationProfile.objects.get(property=prop)
    prop.refresh_from_db()
    assert prop.address == "Markt 1" and profile.operator_name == "Gouda Parking"
    assert profile.open_24_7 is False
    assert profile.regular_hours == [
        {"weekday": 1, "period_begin": "08:00", "period_end": "18:00"},
        {"weekday": 6, "period_begin": "09:00", "period_end": "13:00"},
    ]
    form = client.get(f"/roaming/locations/{prop.pk}/").content.decode()
    assert 'name="loc-day6_begin" value="09:00"' in form
    listing = client.get("/roaming/partners/").content.decode()
    assert "missing: city" not in listing.split(prop.name, 1)[1].split("</tr>")[0]
