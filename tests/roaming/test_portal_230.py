"""Portal, issue 54: the partners' view (role, version, errors in words, moving to 2.3.0), a PTP's
terminals and the sessions paid at them, and a location's parking places and help phone."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from roaming import payments
from roaming.models import Delivery, ParkingPlace, Partner, TerminalAssignment
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.roaming.conftest import connected_partner
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def owner(operator):
    return MembershipFactory(organization=operator["org"], role="owner").user


@pytest.fixture
def viewer(operator):
    return MembershipFactory(organization=operator["org"], role="viewer").user


@pytest.fixture
def ptp(operator):
    return connected_partner(
        operator["org"],
        token="ptp-token",
        name="Terminals Inc",
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
    )


def test_the_list_shows_each_partners_role_and_version(client, owner, partner, ptp):
    client.force_login(owner)
    page = client.get("/roaming/partners/").content.decode()
    rows = re.findall(r"<tr>.*?</tr>", re.search(r"<tbody>.*?</tbody>", page, re.S).group(0), re.S)
    emsp_row = next(r for r in rows if "DE*EMS" in r)
    ptp_row = next(r for r in rows if "AT*PTP" in r)
    assert 'data-label="Role">eMSP (mobility provider)' in emsp_row
    assert 'data-label="OCPI">2.2.1' in emsp_row
    assert 'data-label="Role">Payment terminal provider' in ptp_row
    assert 'data-label="OCPI">2.3.0' in ptp_row


def test_a_partners_page_says_its_error_in_words_and_offers_the_newer_version(
    client, owner, viewer, partner
):
    Partner.objects.filter(pk=partner.pk).update(
        versions_offered=["2.2.1", "2.3.0"],
        last_error="POST cdrs: HTTP 503",
        last_error_at=timezone.now(),
    )
    client.force_login(owner)
    page = client.get(f"/roaming/partners/{partner.pk}/").content.decode()
    assert "Sending a charge detail record (CDR) failed: its server failed (HTTP 503)" in page
    assert "POST cdrs: HTTP 503" in page  # the raw text, for support
    assert "Move to OCPI 2.3.0" in page and "(it offers 2.2.1, 2.3.0)" in page
    client.force_login(viewer)
    assert "Move to OCPI" not in client.get(f"/roaming/partners/{partner.pk}/").content.decode()
    assert client.post(f"/roaming/partners/{partner.pk}/version-update/").status_code == 403


def test_moving_a_partner_to_2_3_0_from_its_page(client, owner, live_server, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    from roaming import services

    stub = EmspStub(versions=("2.2.1",))
    try:
        partner = services.partner_connect(
            organization=owner.memberships.get().organization,
            name="Stub",
            versions_url=stub.versions_url,
            token_a=stub.token_a,
            our_versions_url=f"{live_server.url}/ocpi/versions",
        )
        client.force_login(owner)
        refused = client.post(f"/roaming/partners/{partner.pk}/version-update/", follow=True)
        assert "stays on OCPI 2.2.1" in refused.content.decode()
        stub.versions = ("2.2.1", "2.3.0")
        settings.SITE_URL = live_server.url  # the versions URL we give it in the update
        moved = client.post(f"/roaming/partners/{partner.pk}/version-update/", follow=True)
    finally:
        stub.close()
    assert "now speaks OCPI 2.3.0" in moved.content.decode()
    assert Partner.objects.get(pk=partner.pk).version == "2.3.0"


def test_a_ptps_page_lists_its_terminals_and_an_owner_assigns_evses(
    client, owner, viewer, operator, ptp
):
    terminal, _ = payments.terminal_receive(
        partner=ptp, body={"terminal_id": "T-1", "address": "Quay 1", "city": "Utrecht"}
    )
    client.force_login(viewer)
    page = client.get(f"/roaming/partners/{ptp.pk}/").content.decode()
    assert "T-1" in page and "Quay 1" in page and "No session paid at a terminal yet" in page
    assert client.post(f"/roaming/terminals/{terminal.pk}/assign/", {}).status_code == 403

    client.force_login(owner)
    page = client.get(f"/roaming/partners/{ptp.pk}/").content.decode()
    assert f'value="{operator["cp_public"].pk}:1"' in page  # its public roaming EVSEs
    assert f'value="{operator["cp_private"].pk}:1"' not in page
    response = client.post(
        f"/roaming/terminals/{terminal.pk}/assign/",
        {f"t{terminal.pk}-evses": [f"{operator['cp_public'].pk}:2"]},
        follow=True,
    )
    assert "now serves 0 location(s) and 1 single EVSE(s)" in response.content.decode()
    row = TerminalAssignment.objects.get(terminal=terminal)
    assert (row.charger_id, row.connector_id) == (operator["cp_public"].pk, 2)
    assert Delivery.objects.filter(partner=ptp, module="payments").exists()
    # A charger that is not one of its choices (another operator's, an unknown one): refused.
    refused = client.post(
        f"/roaming/terminals/{terminal.pk}/assign/",
        {f"t{terminal.pk}-evses": ["999999:1"]},
        follow=True,
    )
    assert "public roaming chargers only" in refused.content.decode()
    assert TerminalAssignment.objects.filter(terminal=terminal).count() == 1


def test_another_operators_member_cannot_see_or_assign_a_terminal(client, operator, ptp):
    terminal, _ = payments.terminal_receive(partner=ptp, body={"terminal_id": "T-1"})
    stranger = MembershipFactory(role="owner").user
    client.force_login(stranger)
    assert client.get(f"/roaming/partners/{ptp.pk}/").status_code == 404
    assert client.post(f"/roaming/terminals/{terminal.pk}/assign/", {}).status_code == 404


def test_an_owner_keeps_a_locations_parking_places(client, owner, viewer, operator):
    prop = operator["public"]
    client.force_login(owner)
    page = client.get(f"/roaming/locations/{prop.pk}/parking/").content.decode()
    assert "Add a parking place" in page

    client.post(
        f"/roaming/locations/{prop.pk}/parking/",
        {
            "new-physical_reference": "P12",
            "new-vehicle_types": ["PERSONAL_VEHICLE", "DISABLED"],
            "new-restricted_to_type": "on",
            "new-parking_space_width": "360",
            "new-standards": "PAS 1899",
            "new-chargers": [operator["cp_public"].pk],
            "new-drive_through": "unknown",
        },
    )
    place = ParkingPlace.objects.get(property=prop)
    assert (place.physical_reference, place.vehicle_types, place.standards) == (
        "P12",
        ["PERSONAL_VEHICLE", "DISABLED"],
        ["PAS 1899"],
    )
    assert place.restricted_to_type and place.parking_space_width == 360
    assert [link.charger_id for link in place.evses.all()] == [operator["cp_public"].pk]

    client.post(f"/roaming/locations/{prop.pk}/parking/", {"remove": [place.pk]})
    assert not ParkingPlace.objects.filter(property=prop).exists()
    client.force_login(viewer)
    assert client.post(f"/roaming/locations/{prop.pk}/parking/", {}).status_code == 403


def test_the_roaming_data_page_keeps_the_help_phone_and_who_may_charge(client, owner, operator):
    prop = operator["public"]
    client.force_login(owner)
    page = client.get(f"/roaming/locations/{prop.pk}/").content.decode()
    fields = dict(re.findall(r'name="(loc-[a-z_0-9]+)" value="([^"]*)"', page))
    data = {
        **fields,
        "loc-address": "1 Quay",
        "loc-city": "Utrecht",
        "loc-country": "NLD",
        "loc-latitude": "52.0907374",
        "loc-longitude": "5.1214201",
        "loc-open_24_7": "on",
        "loc-help_phone": "+31 30 1234567",
    }
    for charger in prop.chargers.all():
        data.update(
            {
                f"cp{charger.pk}-standard": "IEC_62196_T2",
                f"cp{charger.pk}-format": "SOCKET",
                f"cp{charger.pk}-power_type": "AC_3_PHASE",
                f"cp{charger.pk}-max_voltage": "230",
                f"cp{charger.pk}-max_amperage": "32",
            }
        )
    data[f"cp{operator['cp_public'].pk}-parking_restrictions"] = ["CUSTOMERS", "EV_ONLY"]
    response = client.post(f"/roaming/locations/{prop.pk}/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    prop.ocpi_profile.refresh_from_db()
    assert prop.ocpi_profile.help_phone == "+31 30 1234567"
    assert operator["cp_public"].ocpi_profile.parking_restrictions == ["CUSTOMERS", "EV_ONLY"]


def test_the_api_shows_version_roles_and_error_words(client, owner, partner):
    from rest_framework.test import APIClient

    Partner.objects.filter(pk=partner.pk).update(
        versions_offered=["2.2.1", "2.3.0"],
        roles=[{"role": "EMSP", "country_code": "DE", "party_id": "EMS", "name": "Stub"}],
        last_error="PUT sessions: HTTP 404",
        last_error_at=timezone.now(),
        last_pull_at=timezone.now() - timedelta(hours=1),
    )
    api = APIClient()
    api.force_authenticate(owner)
    data = api.get(f"/api/v1/roaming/partners/{partner.pk}/").json()
    assert (data["version"], data["newer_version"], data["versions_offered"]) == (
        "2.2.1",
        "2.3.0",
        ["2.2.1", "2.3.0"],
    )
    assert data["roles"][0]["party_id"] == "EMS"
    assert data["last_error_words"].startswith("Sending a session failed: the address it gave us")
    assert data["last_sync_at"] is not None


def test_the_api_keeps_parking_places_in_the_roaming_data(client, owner, operator):
    from rest_framework.test import APIClient

    prop = operator["public"]
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/v1/properties/{prop.pk}/"
    place = {
        "physical_reference": "P1",
        "vehicle_types": ["VAN"],
        "max_vehicle_height": 275,
        "chargers": [{"station_id": "PUB-1", "evse_position": "RIGHT"}],
    }
    response = api.patch(
        url, {"roaming_data": {"help_phone": "+31 1", "parking_places": [place]}}, format="json"
    )
    assert response.status_code == 200, response.content
    (saved,) = response.json()["roaming_data"]["parking_places"]
    assert saved["chargers"] == [{"station_id": "PUB-1", "evse_position": "RIGHT"}]
    assert (saved["max_vehicle_height"], response.json()["roaming_data"]["help_phone"]) == (
        275,
        "+31 1",
    )
    # The same id keeps the place; a new list without it removes it.
    kept = api.patch(
        url,
        {"roaming_data": {"parking_places": [{**place, "id": saved["id"], "roofed": True}]}},
        format="json",
    ).json()["roaming_data"]["parking_places"]
    assert [(p["id"], p["roofed"]) for p in kept] == [(saved["id"], True)]
    # Another location's charger, another location's place, no vehicle type: 400, nothing changes.
    elsewhere = ChargerFactory(property=PropertyFactory(), station_id="ELSEWHERE-1")
    other_place = ParkingPlace.objects.create(property=operator["closed"], vehicle_types=["BUS"])
    for bad in (
        {**place, "chargers": [{"station_id": elsewhere.station_id}]},
        {**place, "id": other_place.pk},
        {**place, "vehicle_types": []},
        {**place, "vehicle_types": ["SPACESHIP"]},
    ):
        refused = api.patch(url, {"roaming_data": {"parking_places": [bad]}}, format="json")
        assert refused.status_code == 400, (bad, refused.content)
    assert [p.pk for p in ParkingPlace.objects.filter(property=prop)] == [saved["id"]]
    assert (
        api.patch(url, {"roaming_data": {"parking_places": []}}, format="json").status_code == 200
    )
    assert not ParkingPlace.objects.filter(property=prop).exists()
