"""Inputs that used to answer 500 now answer 400/404/409 with a clear message."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from authorization.models import Token
from backoffice.models import Membership
from chargers.models import Charger
from tests.security.conftest import changed_tables, db_state

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# -- NUL characters (PostgreSQL cannot store or compare them) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/chargers/?search=%00",
        "/api/v1/chargers/?search=CP%00x",
        "/api/v1/chargers/A-CP-1/logs/?search=%00",
        "/api/v1/chargers/%00/",
        "/api/v1/tokens/?uid=%00",
        "/api/v1/properties/?search=a%00b",
    ],
)
def test_nul_in_an_api_query_or_path_is_400(url, mine):
    response = api_for(mine.owner).get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_nul_in_a_json_body_is_400_outside_the_payment_webhooks(client):
    # (The payment webhooks verify and store an event holding \u0000: tests/billing/test_webhooks.py.)
    response = client.post(
        "/api/v1/support/assistant/", b'{"message": "a\\u0000b"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Text may not contain the NUL character (\\0)."}


@pytest.mark.parametrize(
    "url", ["/ocpi/2.2.1/tokens/NL/PRB/a%00b", "/ocpi/versions?x=%00", "/ocpi/%00"]
)
def test_nul_in_an_ocpi_path_or_query_is_400_in_the_ocpi_envelope(url, client):
    # A partner's client parses every answer as the OCPI response object (status 2001).
    response = client.get(url)
    assert response.status_code == 400
    body = response.json()
    assert body["status_code"] == 2001 and "NUL" in body["status_message"]
    assert body["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "name, args",
    [
        ("authorization:token-list", []),
        ("authorization:msp-list", []),
        ("chargers:location-list", []),
        ("chargers:charger-list", []),
        ("chargers:session-list", []),
        ("authorization:roaming", []),
    ],
)
def test_nul_in_a_portal_search_box_is_400(name, args, client, mine):
    client.force_login(mine.owner)
    for key in ("q", "uid", "token"):
        response = client.get(reverse(name, args=args), {key: "04\x00A1"})
        assert response.status_code == 400, (name, key)


def test_nul_in_a_json_body_or_form_field_is_400_and_writes_nothing(client, mine):
    api = api_for(mine.owner)
    client.force_login(mine.owner)
    before = db_state()
    response = api.post(
        "/api/v1/tokens/", {"uid": "A\u0000B", "organization": mine.org.pk}, format="json"
    )
    assert response.status_code == 400
    response = api.post(
        f"/api/v1/chargers/{mine.charger.station_id}/commands/DataTransfer/",
        {"vendorId": "x\u0000"},
        format="json",
    )
    assert response.status_code == 400
    response = client.post(
        reverse("authorization:token-group-list"),
        {"organization": mine.org.pk, "name": "Night\x00shift"},
    )
    assert response.status_code == 400
    assert changed_tables(before, db_state()) == []


def test_an_escaped_backslash_u0000_is_ordinary_text(mine):
    # JSON "\\u0000" is the six characters \u0000, not a NUL: accepted.
    response = api_for(mine.owner).post(
        "/api/v1/tokens/",
        {"uid": "X1", "organization": mine.org.pk, "label": "\\u0000"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Token.objects.get(uid="X1").label == "\\u0000"


# -- members without a password: the invitation email --------------------------------------------


def test_adding_a_new_member_without_password_invites_them(mine):
    response = api_for(mine.owner).post(
        f"/api/v1/organizations/{mine.org.pk}/members/",
        {"email": "New.Person@Example.com", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (
        Membership.objects.get(organization=mine.org, user__username="new.person@example.com").role
        == "viewer"
    )
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.com"]
    assert (
        "set your password" in mail.outbox[0].body.lower()
        or "/accounts/reset/" in mail.outbox[0].body
    )


def test_whether_an_address_has_an_account_is_not_revealed(mine, theirs):
    api = api_for(mine.owner)
    url = f"/api/v1/organizations/{mine.org.pk}/members/"
    existing = api.post(url, {"email": theirs.owner.username, "role": "viewer"}, format="json")
    new = api.post(url, {"email": "nobody.yet@example.com", "role": "viewer"}, format="json")
    assert existing.status_code == new.status_code == 201
    assert (
        set(existing.json())
        == set(new.json())
        == {"id", "user_id", "email", "role", "invitation_sent"}
    )
    assert existing.json()["invitation_sent"] is new.json()["invitation_sent"] is True
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [theirs.owner.username, "nobody.yet@example.com"]
    )
    theirs.owner.refresh_from_db()
    assert theirs.owner.check_password(
        "secret-pass-123"
    )  # an existing account's password is untouched


# -- ids that are not whole numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/organizations/abc/members/",
        "/api/v1/organizations/1.5/",
        "/api/v1/tokens/abc/",
        "/api/v1/token-groups/-1/",
        "/api/v1/msps/%C2%B2/",
        "/api/v1/rates/x/",
        "/api/v1/properties/1e3/",
    ],
)
def test_non_integer_ids_are_404(url, mine):
    api = api_for(mine.owner)
    assert api.get(url).status_code == 404
    assert api.post(url, {}, format="json").status_code == 404


# -- deleting what history depends on ------------------------------------------------------------


def test_deleting_a_charger_with_sessions_is_409_and_says_what_to_do(mine):
    before = db_state()
    response = api_for(mine.owner).delete(f"/api/v1/chargers/{mine.charger.station_id}/")
    assert response.status_code == 409
    # The tenant's charger also has an uptime exclusion: its history names both.
    assert response.json()["detail"] == (
        "This charger has 1 charging session and 1 exclusion; mark it out of order instead of "
        "deleting it."
    )
    assert changed_tables(before, db_state()) == []


def test_deleting_a_location_with_chargers_is_409(mine):
    response = api_for(mine.owner).delete(f"/api/v1/properties/{mine.prop.pk}/")
    assert response.status_code == 409
    assert (
        response.json()["detail"]
        == "This property has 1 charger; move its chargers to another location first."
    )


def test_deleting_a_charger_without_history_works(mine):
    spare = Charger.objects.create(station_id="SPARE-1", property=mine.prop)
    assert api_for(mine.owner).delete(f"/api/v1/chargers/{spare.station_id}/").status_code == 204
    assert not Charger.objects.filter(station_id="SPARE-1").exists()


def test_admin_refuses_to_delete_a_charger_with_sessions_without_an_error(client, mine):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser(
        "ops@example.com", "ops@example.com", "ops-pass-123456"
    )
    client.force_login(staff)
    response = client.post(
        reverse("admin:chargers_charger_delete", args=[mine.charger.pk]), {"post": "yes"}
    )
    assert response.status_code == 200 and b"Cannot delete charger" in response.content
    assert Charger.objects.filter(pk=mine.charger.pk).exists()


# -- a token's owner ----------------------------------------------------------------------------------


def test_patching_msp_null_on_a_card_of_the_organization_changes_nothing(mine):
    response = api_for(mine.owner).patch(
        f"/api/v1/tokens/{mine.token.pk}/", {"msp": None}, format="json"
    )
    assert response.status_code == 200
    mine.token.refresh_from_db()
    assert mine.token.organization_id == mine.org.pk and mine.token.msp_id is None


def test_a_token_cannot_be_moved_off_its_msp(mine):
    response = api_for(mine.owner).patch(
        f"/api/v1/tokens/{mine.msp_token.pk}/", {"msp": None}, format="json"
    )
    assert response.status_code == 400 and "msp" in response.json()
    mine.msp_token.refresh_from_db()
    assert mine.msp_token.msp_id == mine.msp.pk


def test_an_msp_cannot_be_moved_into_another_organization_the_user_also_manages(mine, theirs):
    Membership.objects.create(user=mine.owner, organization=theirs.org, role="owner")
    response = api_for(mine.owner).patch(
        f"/api/v1/msps/{mine.msp.pk}/", {"organization": theirs.org.pk}, format="json"
    )
    assert response.status_code == 400 and "organization" in response.json()
    mine.msp.refresh_from_db()
    assert mine.msp.organization_id == mine.org.pk


# -- digits that int() does not read ----------------------------------------------------------------


def test_a_superscript_port_number_is_not_a_server_error(client, mine):
    # "²".isdigit() is True, but int("²") fails: ports are read with isdecimal().
    Charger.objects.filter(pk=mine.charger.pk).update(
        connection_id="c1", last_seen_at=timezone.now()
    )
    response = client.get(f"/s/{mine.charger.station_id}", {"c": "²"})
    assert response.status_code == 200 and b"Port 1" in response.content
    client.force_login(mine.owner)
    assert (
        client.get(
            reverse("guest:label-charger", args=[mine.charger.station_id]), {"c": "²"}
        ).status_code
        == 200
    )
