"""The REST API of roaming (issue 33, item 14): OCPI partners, a location's roaming data on
/api/v1/properties/, and the stay behind a decision on /api/v1/decisions/."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision
from roaming.client import PARTNER_URL_MESSAGE
from roaming.models import Delivery, LocationProfile, OcpiLog, Partner
from stays.models import Reservation
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    OrganizationFactory,
    PropertyFactory,
    UserFactory,
)
from tests.roaming import spec
from tests.roaming.conftest import connected_partner, located
from tests.roaming.emsp_stub import EmspStub

PARTNERS = "/api/v1/roaming/partners/"


def api_for(organization, role="owner"):
    user = UserFactory()
    MembershipFactory(organization=organization, user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stub listens on loopback
    emsp = EmspStub()
    yield emsp
    emsp.close()


# -- partners ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_partner_invited_by_the_api_registers_with_the_token_a_returned_once(
    live_server, stub, settings
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    api = api_for(org)

    created = api.post(PARTNERS, {"organization": org.pk, "name": "Stub eMSP"}, format="json")

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "pending" and body["our_versions_url"] == (
        f"{live_server.url}/ocpi/versions"
    )
    token_a = body["token_a"]
    assert token_a and token_a not in json.dumps(api.get(f"{PARTNERS}{body['id']}/").json())
    stub.register_with(body["our_versions_url"], token_a)
    partner = api.get(f"{PARTNERS}{body['id']}/").json()
    assert (partner["state"], partner["country_code"], partner["party_id"]) == (
        "connected",
        "DE",
        "EMS",
    )
    assert token_a not in json.dumps(partner)
    assert [name for name in partner if "token" in name] == []


@pytest.mark.django_db(transaction=True)
def test_the_api_registers_with_a_partner_and_delete_unregisters_on_both_sides(
    live_server, stub, settings
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    api = api_for(org)

    created = api.post(
        PARTNERS,
        {
            "organization": org.pk,
            "name": "Stub",
            "versions_url": stub.versions_url,
            "token_a": stub.token_a,
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["state"], body["role"], body["party_id"]) == ("connected", "EMSP", "EMS")
    assert body["token_a"] is None and body["versions_url"] == stub.versions_url
    assert stub.requests_to("credentials", "POST")
    our_token = stub.our_token_at_cpo
    status, _, _ = stub.request("GET", f"{live_server.url}/ocpi/2.2.1/locations", token=our_token)
    assert status == 200

    deleted = api.delete(f"{PARTNERS}{body['id']}/")

    assert deleted.status_code == 204
    assert stub.requests_to("credentials", "DELETE")
    assert Partner.objects.get(pk=body["id"]).state == Partner.State.UNREGISTERED
    status, _, _ = stub.request("GET", f"{live_server.url}/ocpi/2.2.1/locations", token=our_token)
    assert status == 401
    assert api.get(f"{PARTNERS}{body['id']}/").json()["state"] == "unregistered"


@pytest.mark.django_db(transaction=True)
def test_a_partner_that_refuses_the_handshake_is_a_400_in_plain_words_and_nothing_is_kept(
    stub,
):
    org = OrganizationFactory()
    stub.refuse_credentials = True
    refused = api_for(org).post(
        PARTNERS,
        {
            "organization": org.pk,
            "name": "Stub",
            "versions_url": stub.versions_url,
            "token_a": stub.token_a,
        },
        format="json",
    )
    assert refused.status_code == 400
    assert "refused or could not be reached" in refused.json()["versions_url"][0]
    assert not Partner.objects.exists()


@pytest.mark.django_db
def test_partner_urls_go_through_the_outbound_guard_and_come_in_pairs(settings):
    settings.MSP_URL_ALLOWLIST = []
    org = OrganizationFactory()
    api = api_for(org)
    for url in ("http://127.0.0.1:8000/ocpi/versions", "https://169.254.169.254/versions"):
        refused = api.post(
            PARTNERS,
            {"organization": org.pk, "name": "X", "versions_url": url, "token_a": "a"},
            format="json",
        )
        assert refused.status_code == 400
        assert refused.json()["versions_url"] == [PARTNER_URL_MESSAGE]
    assert not OcpiLog.objects.exists()  # refused before any call
    alone = api.post(
        PARTNERS,
        {"organization": org.pk, "name": "X", "versions_url": "https://emsp.example/versions"},
        format="json",
    )
    assert alone.status_code == 400 and "together" in alone.json()["token_a"][0]
    assert not Partner.objects.exists()


@pytest.mark.django_db
def test_partners_are_the_organizations_own_and_only_owners_and_managers_write():
    org, other = OrganizationFactory(), OrganizationFactory()
    mine = connected_partner(org, token="mine", name="Mine")
    theirs = connected_partner(other, token="theirs", name="Theirs")
    owner, viewer = api_for(org), api_for(org, role="viewer")

    listed = owner.get(PARTNERS).json()["results"]
    assert [p["id"] for p in listed] == [mine.pk]
    assert listed[0]["counts"] == {"tokens": 0, "sessions": 0, "cdrs": 0, "waiting": 0}
    for method in ("get", "patch", "delete"):
        assert getattr(owner, method)(f"{PARTNERS}{theirs.pk}/").status_code == 404
    assert owner.post(PARTNERS, {"organization": other.pk, "name": "X"}).status_code == 400
    # A viewer's organization is not one it may write in: refused like an unknown one.
    refused = viewer.post(PARTNERS, {"organization": org.pk, "name": "X"})
    assert refused.status_code == 400 and "organization" in refused.json()
    assert viewer.patch(f"{PARTNERS}{mine.pk}/", {"name": "Y"}).status_code == 403
    assert Partner.objects.count() == 2
    assert viewer.delete(f"{PARTNERS}{mine.pk}/").status_code == 403
    renamed = owner.patch(
        f"{PARTNERS}{mine.pk}/", {"name": "Renamed", "state": "pending", "party_id": "ZZZ"}
    )
    assert renamed.status_code == 200
    mine.refresh_from_db()
    assert (mine.name, mine.state, mine.party_id) == ("Renamed", "connected", "EMS")
    theirs.refresh_from_db()
    assert (theirs.name, theirs.state) == ("Theirs", "connected")


# -- a location's roaming data on /api/v1/properties/ ------------------------------------------

ROAMING = {
    "city": "Utrecht",
    "postal_code": "3511 AB",
    "country": "nld",
    "latitude": "52.0907374",
    "longitude": "5.121420",
    "opening_hours": {"twentyfourseven": True},
    "operator_name": "Sunny Parking",
}


@pytest.mark.django_db
def test_roaming_data_is_read_and_written_on_the_property_and_pushed_to_partners(
    django_capture_on_commit_callbacks,
):
    org = OrganizationFactory(name="Operator")
    prop = PropertyFactory(organization=org, roaming_enabled=True)
    ChargerFactory(property=prop, station_id="API-1")
    connected_partner(org)
    api = api_for(org)
    url = f"/api/v1/properties/{prop.pk}/"
    assert api.get(url).json()["roaming_data"] is None

    with django_capture_on_commit_callbacks(execute=True):
        saved = api.patch(url, {"roaming_data": ROAMING}, format="json")

    assert saved.status_code == 200, saved.content
    assert saved.json()["roaming_data"] == {
        **ROAMING,
        "country": "NLD",
        "help_phone": "",
        "energy_mix": None,
        "parking_places": [],
    }
    profile = LocationProfile.objects.get(property=prop)
    assert (str(profile.latitude), profile.operator_name) == ("52.0907374", "Sunny Parking")
    (put,) = Delivery.objects.filter(module="locations", method="PUT")
    assert put.body["coordinates"] == {"latitude": "52.0907374", "longitude": "5.121420"}
    assert put.body["operator"] == {"name": "Sunny Parking"}
    assert put.body["country"] == "NLD"

    # Partial: only what is given changes.
    hours = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}],
    }
    patched = api.patch(url, {"roaming_data": {"opening_hours": hours}}, format="json")
    assert patched.status_code == 200
    assert patched.json()["roaming_data"]["opening_hours"] == hours
    assert patched.json()["roaming_data"]["city"] == "Utrecht"

    # null: no roaming data, the location is no longer published.
    removed = api.patch(url, {"roaming_data": None}, format="json")
    assert removed.status_code == 200 and removed.json()["roaming_data"] is None
    assert not LocationProfile.objects.filter(property=prop).exists()


@pytest.mark.django_db
def test_a_new_property_can_carry_its_roaming_data():
    org = OrganizationFactory()
    created = api_for(org).post(
        "/api/v1/properties/",
        {"organization": org.pk, "name": "Garage", "roaming_data": ROAMING},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["roaming_data"]["country"] == "NLD"


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("country", "XXX", "ISO 3166-1 alpha-3"),
        ("country", "NL", "3"),
        ("latitude", 52.0907374, "string"),
        ("latitude", "52.09", "5 to 7 decimals"),
        ("latitude", "52.090737412", "5 to 7 decimals"),
        ("latitude", "95.000000", "Between -90 and 90"),
        ("longitude", "181.000000", "Between -180 and 180"),
        ("longitude", "5,121420", "5 to 7 decimals"),
        ("opening_hours", {"twentyfourseven": "yes"}, "twentyfourseven"),
        ("opening_hours", {"twentyfourseven": False}, "at least one regular_hours"),
        (
            "opening_hours",
            {
                "twentyfourseven": True,
                "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}],
            },
            "only when twentyfourseven is false",
        ),
        (
            "opening_hours",
            {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 8, "period_begin": "08:00", "period_end": "20:00"}],
            },
            "weekday",
        ),
        (
            "opening_hours",
            {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 1, "period_begin": "20:00", "period_end": "08:00"}],
            },
            "later than",
        ),
        (
            "opening_hours",
            {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 1, "period_begin": "8:00", "period_end": "20:00"}],
            },
            "HH:MM",
        ),
        (
            "opening_hours",
            {"twentyfourseven": True, "exceptional_closings": [{"period_begin": "tomorrow"}]},
            "exceptional_closings",
        ),
        ("opening_hours", {"twentyfourseven": True, "open": True}, "OCPI Hours object"),
    ],
)
@pytest.mark.django_db
def test_roaming_data_that_is_not_valid_ocpi_is_refused_and_nothing_changes(field, value, words):
    org = OrganizationFactory()
    prop = PropertyFactory(organization=org)
    located(prop)
    before = list(LocationProfile.objects.values())
    refused = api_for(org).patch(
        f"/api/v1/properties/{prop.pk}/",
        {"roaming_data": {**ROAMING, field: value}},
        format="json",
    )
    assert refused.status_code == 400
    assert words in json.dumps(refused.json()["roaming_data"][field])
    assert list(LocationProfile.objects.values()) == before


@pytest.mark.parametrize(
    "name",
    [
        "location_hours_247_open_exception_closing.json",
        "location_hours_opening_hours_with_exceptional_closing.json",
        "location_hours_opening_hours_with_exceptional_opening.json",
        "location_regularhours_example.json",
    ],
)
@pytest.mark.django_db
def test_the_specs_opening_hours_examples_are_taken_as_they_are(name):
    hours = spec.example(name)
    hours = hours.get("opening_times", hours)
    org = OrganizationFactory()
    prop = PropertyFactory(organization=org)
    saved = api_for(org).patch(
        f"/api/v1/properties/{prop.pk}/",
        {"roaming_data": {**ROAMING, "opening_hours": hours}},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    assert saved.json()["roaming_data"]["opening_hours"] == hours
    spec.check_object(hours, "mod_locations.asciidoc", "mod_locations_hours_class")


@pytest.mark.django_db
def test_new_roaming_data_needs_city_country_and_coordinates():
    org = OrganizationFactory()
    prop = PropertyFactory(organization=org)
    refused = api_for(org).patch(
        f"/api/v1/properties/{prop.pk}/", {"roaming_data": {"city": "Utrecht"}}, format="json"
    )
    assert refused.status_code == 400
    assert set(refused.json()["roaming_data"]) == {"country", "latitude", "longitude"}
    assert not LocationProfile.objects.exists()


@pytest.mark.django_db
def test_roaming_data_of_another_organizations_property_is_a_404_and_viewers_only_read():
    org, other = OrganizationFactory(), OrganizationFactory()
    theirs = PropertyFactory(organization=other)
    mine = PropertyFactory(organization=org)
    located(mine)
    for method in ("get", "patch"):
        answer = getattr(api_for(org), method)(
            f"/api/v1/properties/{theirs.pk}/", {"roaming_data": ROAMING}, format="json"
        )
        assert answer.status_code == 404
    viewer = api_for(org, role="viewer")
    assert viewer.get(f"/api/v1/properties/{mine.pk}/").json()["roaming_data"]["city"]
    denied = viewer.patch(f"/api/v1/properties/{mine.pk}/", {"roaming_data": None}, format="json")
    assert denied.status_code == 403
    assert LocationProfile.objects.filter(property=mine).exists()
    assert not LocationProfile.objects.filter(property=theirs).exists()


# -- decisions ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_decisions_name_the_stay_that_allowed_or_refused_the_start():
    org, other = OrganizationFactory(), OrganizationFactory()
    prop = PropertyFactory(organization=org)
    stay = Reservation.objects.create(
        property=prop,
        guest_name="Ann",
        external_id="HMABC123",
        check_in=timezone.now(),
        check_out=timezone.now() + timedelta(days=2),
    )
    common = {"station_id": "CP-1", "context": "local", "step": 1, "message": "m"}
    allowed = AuthorizationDecision.objects.create(
        organization=org,
        uid="CODE1",
        uid_normalized="CODE1",
        status="Accepted",
        reason="accepted_reservation",
        reservation=stay,
        **common,
    )
    plain = AuthorizationDecision.objects.create(
        organization=org,
        uid="CARD1",
        uid_normalized="CARD1",
        status="Accepted",
        reason="accepted_group",
        **common,
    )
    AuthorizationDecision.objects.create(
        organization=other,
        uid="CODE2",
        uid_normalized="CODE2",
        status="Invalid",
        reason="reservation_not_active",
        **common,
    )
    api = api_for(org)

    listed = {d["id"]: d for d in api.get("/api/v1/decisions/").json()["results"]}

    assert set(listed) == {allowed.pk, plain.pk}
    assert listed[allowed.pk]["reservation"] == {"id": stay.pk, "external_id": "HMABC123"}
    assert listed[plain.pk]["reservation"] is None
    filtered = api.get(f"/api/v1/decisions/?reservation={stay.pk}").json()["results"]
    assert [d["id"] for d in filtered] == [allowed.pk]
    same = api.get(f"/api/v1/authorizations/{allowed.pk}/").json()
    assert same["reservation"]["external_id"] == "HMABC123"


@pytest.mark.django_db
def test_the_schema_describes_the_new_endpoints_and_fields():
    org = OrganizationFactory()
    schema = api_for(org).get("/api/v1/schema/?format=json").json()
    assert {"/api/v1/roaming/partners/", "/api/v1/roaming/partners/{id}/"} <= set(schema["paths"])
    assert "/api/v1/decisions/" in schema["paths"]
    components = schema["components"]["schemas"]
    assert "roaming_data" in components["PropertyRoaming"]["properties"]
    assert set(components["RoamingData"]["properties"]) == {
        "city",
        "postal_code",
        "country",
        "latitude",
        "longitude",
        "opening_hours",
        "operator_name",
        "help_phone",
        "energy_mix",
        "parking_places",
    }
    assert "/api/v1/organizations/{organization_id}/access-points/{country}/" in schema["paths"]
    assert {"/api/v1/roaming/terminals/", "/api/v1/roaming/terminal-payments/"} <= set(
        schema["paths"]
    )
    assert "/api/v1/roaming/partners/{id}/version-update/" in schema["paths"]
    assert {"version", "newer_version", "roles", "last_error_words", "last_sync_at"} <= set(
        components["Partner"]["properties"]
    )
    assert "reservation" in components["Decision"]["properties"]
    created = schema["paths"]["/api/v1/roaming/partners/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("PartnerRegistration")
