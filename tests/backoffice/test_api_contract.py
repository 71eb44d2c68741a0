"""The REST contract integrators and acceptance checks use, and tenant isolation on every endpoint."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from authorization.models import Token
from chargers.models import Charger
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    MspFactory,
    PropertyFactory,
    TokenFactory,
    TokenGroupFactory,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_staff_builds_an_organization_and_a_member_signs_in_with_email():
    staff = get_user_model().objects.create_user(
        "ops", "ops@example.com", "ops-pass-123456", is_staff=True
    )
    api = client_for(staff)
    org = api.post("/api/v1/organizations/", {"name": "Sunny Flats"}, format="json")
    assert org.status_code == 201
    org_id = org.json()["id"]
    member = api.post(
        f"/api/v1/organizations/{org_id}/members/",
        {"email": "Host@Sunny.example", "password": "host-pass-123456", "role": "owner"},
        format="json",
    )
    assert member.status_code == 201

    anonymous = APIClient()
    token = anonymous.post(
        "/api/v1/auth/token/",
        {"username": "host@sunny.example", "password": "host-pass-123456"},
        format="json",
    )
    assert token.status_code == 200
    host = APIClient()
    host.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    prop = host.post(
        "/api/v1/properties/",
        {
            "organization": org_id,
            "name": "Garage",
            "address": "Main St 1",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
        },
        format="json",
    )
    assert prop.status_code == 201, prop.json()
    charger = host.post(
        "/api/v1/chargers/",
        {
            "station_id": "SUN-01",
            "property": prop.json()["id"],
            "access_mode": "guest",
            "ownership": "network",
            "ocpp_password": "a-very-long-password-1",
            "license_valid_until": "2027-12-31",
            "out_of_order": False,
        },
        format="json",
    )
    assert charger.status_code == 201, charger.json()
    body = charger.json()
    assert "ocpp_password" not in body and body["has_password"] is True
    assert body["status"] == "offline" and body["connectors"] == []
    assert Charger.objects.get(station_id="SUN-01").check_ocpp_password("a-very-long-password-1")
    tok = host.post(
        "/api/v1/tokens/",
        {"uid": "04aabbcc", "organization": org_id, "valid": True, "expires_at": None},
        format="json",
    )
    assert tok.status_code == 201 and Token.objects.get().uid == "04aabbcc"
    patched = host.patch("/api/v1/chargers/SUN-01/", {"out_of_order": True}, format="json")
    assert patched.status_code == 200 and patched.json()["out_of_order"] is True


def test_non_staff_cannot_create_organizations():
    user = MembershipFactory().user
    assert (
        client_for(user).post("/api/v1/organizations/", {"name": "X"}, format="json").status_code
        == 403
    )


def test_viewer_is_read_only():
    charger = ChargerFactory()
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api = client_for(viewer)
    assert api.get(f"/api/v1/chargers/{charger.station_id}/").status_code == 200
    assert (
        api.patch(
            f"/api/v1/chargers/{charger.station_id}/", {"out_of_order": True}, format="json"
        ).status_code
        == 403
    )
    assert (
        api.post(
            f"/api/v1/chargers/{charger.station_id}/commands/Reset/",
            {"type": "Soft"},
            format="json",
        ).status_code
        == 403
    )


def test_short_ocpp_password_is_refused():
    charger = ChargerFactory()
    owner = MembershipFactory(organization=charger.property.organization).user
    response = client_for(owner).patch(
        f"/api/v1/chargers/{charger.station_id}/", {"ocpp_password": "short"}, format="json"
    )
    assert response.status_code == 400 and "ocpp_password" in response.json()


@pytest.mark.django_db(transaction=True)
def test_commands_answer_409_when_offline_and_400_for_bad_payloads():
    charger = ChargerFactory()
    owner = MembershipFactory(organization=charger.property.organization).user
    api = client_for(owner)
    url = f"/api/v1/chargers/{charger.station_id}/commands"
    assert api.post(f"{url}/Reset/", {"type": "Soft"}, format="json").status_code == 409
    assert api.post(f"{url}/Reset/", {"type": "Sideways"}, format="json").status_code == 400
    assert api.post(f"{url}/BootNotification/", {}, format="json").status_code == 400


def test_openapi_schema_is_published(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200 and b"/api/v1/chargers/" in response.content


def _two_tenants():
    mine = ChargerFactory(station_id="MINE-1")
    theirs = ChargerFactory(station_id="THEIRS-1")
    me = MembershipFactory(organization=mine.property.organization).user
    other_org = theirs.property.organization
    return me, mine, theirs, other_org


def test_a_host_never_sees_another_organizations_objects():
    me, mine, theirs, other_org = _two_tenants()
    their_token = TokenFactory(organization=other_org)
    their_group = TokenGroupFactory(organization=other_org)
    their_msp = MspFactory(organization=other_org)
    api = client_for(me)
    detail_urls = [
        f"/api/v1/chargers/{theirs.station_id}/",
        f"/api/v1/chargers/{theirs.station_id}/logs/",
        f"/api/v1/properties/{theirs.property_id}/",
        f"/api/v1/organizations/{other_org.pk}/",
        f"/api/v1/organizations/{other_org.pk}/members/",
        f"/api/v1/tokens/{their_token.pk}/",
        f"/api/v1/token-groups/{their_group.pk}/",
        f"/api/v1/msps/{their_msp.pk}/",
    ]
    for url in detail_urls:
        assert api.get(url).status_code == 404, url
    assert (
        api.post(
            f"/api/v1/chargers/{theirs.station_id}/commands/BadAction/", {}, format="json"
        ).status_code
        == 404
    )
    assert (
        api.patch(
            f"/api/v1/chargers/{theirs.station_id}/", {"out_of_order": True}, format="json"
        ).status_code
        == 404
    )
    for url in [
        "/api/v1/chargers/",
        "/api/v1/properties/",
        "/api/v1/organizations/",
        "/api/v1/tokens/",
        "/api/v1/token-groups/",
        "/api/v1/msps/",
        "/api/v1/sessions/",
        "/api/v1/authorizations/",
    ]:
        body = api.get(url).json()
        text = str(body)
        assert (
            "THEIRS-1" not in text and their_token.uid not in text and their_msp.name not in text
        ), url


def test_a_host_cannot_attach_objects_to_another_organization():
    me, mine, theirs, other_org = _two_tenants()
    api = client_for(me)
    response = api.post(
        "/api/v1/chargers/", {"station_id": "SNEAKY", "property": theirs.property_id}, format="json"
    )
    assert (
        response.status_code in (400, 403)
        and not Charger.objects.filter(station_id="SNEAKY").exists()
    )
    response = api.post(
        "/api/v1/tokens/", {"uid": "X1", "organization": other_org.pk}, format="json"
    )
    assert response.status_code in (400, 403) and not Token.objects.filter(uid="X1").exists()
    their_group = TokenGroupFactory(organization=other_org)
    response = api.patch(
        f"/api/v1/chargers/{mine.station_id}/", {"token_groups": [their_group.pk]}, format="json"
    )
    assert response.status_code == 400
    response = api.post(
        "/api/v1/properties/", {"organization": other_org.pk, "name": "X"}, format="json"
    )
    assert response.status_code in (400, 403)


def test_sessions_filter_by_station_and_expose_energy():
    from datetime import UTC, datetime

    from chargers.models import ChargingSession

    charger = ChargerFactory(station_id="S-1")
    owner = MembershipFactory(organization=charger.property.organization).user
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=77,
        id_tag="T",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        stopped_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        meter_start_wh=100,
        meter_stop_wh=12_345,
        status="completed",
    )
    rows = client_for(owner).get("/api/v1/sessions/", {"station_id": "S-1"}).json()["results"]
    assert rows[0]["energy_kwh"] == "12.245" and rows[0]["transaction_id"] == 77
    assert set(rows[0]) >= {
        "id",
        "transaction_id",
        "station_id",
        "connector_id",
        "id_tag",
        "started_at",
        "stopped_at",
        "meter_start_wh",
        "meter_stop_wh",
        "energy_kwh",
        "stop_reason",
        "status",
    }
    assert (
        client_for(owner).get("/api/v1/sessions/", {"station_id": "OTHER"}).json()["results"] == []
    )


def test_property_validation_errors_are_clear():
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization).user
    response = client_for(owner).post(
        "/api/v1/properties/",
        {
            "organization": prop.organization_id,
            "name": "X",
            "timezone": "Mars/Base",
            "currency": "euro",
        },
        format="json",
    )
    assert response.status_code == 400 and {"timezone", "currency"} <= set(response.json())
