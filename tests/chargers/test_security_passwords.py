"""Charger passwords: generated, shown once, hashed fast and salted, binary AuthorizationKeys,
legacy PBKDF2 hashes upgraded, and the API/portal rules for profiles and rotation."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse
from rest_framework.test import APIClient

from chargers.connections import handshake
from chargers.models import Charger
from chargers.security import credentials
from tests.chargers.security_helpers import scope
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

# The OCPP-J 1.6 §6 example key (with 0xFF bytes, not UTF-8), padded to 16 bytes.
BINARY_KEY = bytes.fromhex("0001020304050607FFFFFFCCCCCCCCCCCC")[:16]


def test_generated_passwords_are_40_hex_digits_and_never_repeat():
    first, second = credentials.generate_password(), credentials.generate_password()
    assert len(first) == 40 and int(first, 16) >= 0 and first != second
    assert credentials.authorization_key_error(first) == ""


def test_the_hash_is_salted_and_holds_no_password():
    password = credentials.generate_password()
    one, two = credentials.make_hash(password), credentials.make_hash(password)
    assert one != two and password not in one
    assert credentials.verify(one, password) and credentials.verify(two, password.encode())
    assert not credentials.verify(one, password[:-1] + ("0" if password[-1] != "0" else "1"))
    assert not credentials.verify("", password)


def test_an_authorization_key_verifies_as_raw_bytes_or_as_its_hex_text():
    stored = credentials.make_hash(BINARY_KEY.hex().upper())
    assert credentials.verify(stored, BINARY_KEY)  # what OCPP-J §6 puts on the wire
    assert credentials.verify(stored, BINARY_KEY.hex())  # what many chargers send instead
    assert not credentials.verify(stored, BINARY_KEY[:-1] + b"\x00")


def test_a_plain_text_password_verifies_as_sent():
    stored = credentials.make_hash("a-very-long-password-1")
    assert credentials.verify(stored, b"a-very-long-password-1")
    assert not credentials.verify(stored, b"a-very-long-password-2")


def test_legacy_pbkdf2_hashes_still_verify():
    legacy = PBKDF2PasswordHasher().encode(
        "correct-horse-battery", "somesalt12345678", iterations=5000
    )
    assert credentials.verify(legacy, b"correct-horse-battery")
    assert not credentials.verify(legacy, b"\xffcorrect-horse")  # not UTF-8: no crash, no match


def test_authorization_key_rules():
    assert credentials.authorization_key_error("ab" * 16) == ""
    assert credentials.authorization_key_error("ab" * 20) == ""
    for bad in ("ab" * 15, "ab" * 21, "abc" * 11, "zz" * 16, 1234, None):
        assert credentials.authorization_key_error(bad)


def test_the_key_is_masked_in_stored_payloads():
    payload = {"key": "authorizationKey", "value": "ab" * 20}
    assert credentials.redact_payload("ChangeConfiguration", payload)["value"] == credentials.MASK
    assert (
        credentials.redact_payload(
            "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}
        )["value"]
        == "60"
    )


@pytest.mark.django_db(transaction=True)
async def test_a_binary_authorization_key_connects():
    await sync_to_async(ChargerFactory)(
        station_id="BIN-1", security_profile=1, ocpp_password=BINARY_KEY.hex()
    )
    charger = await handshake.admit(scope("BIN-1", password=BINARY_KEY), "BIN-1")
    assert charger.station_id == "BIN-1"


@pytest.mark.django_db(transaction=True)
async def test_a_legacy_hash_is_replaced_by_the_fast_one_on_login():
    charger = await sync_to_async(ChargerFactory)(station_id="OLD-1", security_profile=1)
    charger.ocpp_password_hash = PBKDF2PasswordHasher().encode(
        "correct-horse-battery", "somesalt12345678", iterations=5000
    )
    await charger.asave()
    await handshake.admit(scope("OLD-1", password="correct-horse-battery"), "OLD-1")
    charger = await Charger.objects.aget(pk=charger.pk)
    assert credentials.is_fast(charger.ocpp_password_hash)
    assert charger.check_ocpp_password("correct-horse-battery")


# -- API ---------------------------------------------------------------------------------------


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def owner_and_property(db):
    prop = PropertyFactory()
    return MembershipFactory(organization=prop.organization, role="owner").user, prop


def test_a_new_charger_gets_a_password_shown_once(owner_and_property):
    owner, prop = owner_and_property
    api = api_for(owner)
    created = api.post(
        "/api/v1/chargers/", {"station_id": "NEW-1", "property": prop.pk}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["security_profile"] == 1 and body["has_password"] is True
    password = body["ocpp_password"]
    charger = Charger.objects.get(station_id="NEW-1")
    assert charger.check_ocpp_password(password) and password not in charger.ocpp_password_hash
    assert "ocpp_password" not in api.get("/api/v1/chargers/NEW-1/").json()


def test_hosts_cannot_create_or_set_profile_0_or_lower_a_profile(owner_and_property):
    owner, prop = owner_and_property
    api = api_for(owner)
    refused = api.post(
        "/api/v1/chargers/",
        {"station_id": "NEW-0", "property": prop.pk, "security_profile": 0},
        format="json",
    )
    assert refused.status_code == 400 and "security_profile" in refused.json()
    assert not Charger.objects.filter(station_id="NEW-0").exists()
    api.post(
        "/api/v1/chargers/",
        {"station_id": "NEW-2", "property": prop.pk, "security_profile": 2},
        format="json",
    )
    lowered = api.patch("/api/v1/chargers/NEW-2/", {"security_profile": 1}, format="json")
    assert lowered.status_code == 400
    assert Charger.objects.get(station_id="NEW-2").security_profile == 2


def test_staff_may_set_profile_0_and_raising_it_again_generates_a_password(owner_and_property):
    _, prop = owner_and_property
    staff = get_user_model().objects.create_user(
        "ops", "ops@example.com", "ops-pass-123456", is_staff=True
    )
    api = api_for(staff)
    created = api.post(
        "/api/v1/chargers/",
        {"station_id": "OPEN-1", "property": prop.pk, "security_profile": 0},
        format="json",
    )
    assert created.status_code == 201 and "ocpp_password" not in created.json()
    raised = api.patch("/api/v1/chargers/OPEN-1/", {"security_profile": 1}, format="json")
    assert raised.status_code == 200
    assert Charger.objects.get(station_id="OPEN-1").check_ocpp_password(
        raised.json()["ocpp_password"]
    )


def test_rotating_replaces_the_password_at_once(owner_and_property):
    owner, prop = owner_and_property
    api = api_for(owner)
    old = api.post(
        "/api/v1/chargers/", {"station_id": "ROT-1", "property": prop.pk}, format="json"
    ).json()["ocpp_password"]
    rotated = api.post("/api/v1/chargers/ROT-1/rotate-password/", {}, format="json")
    assert rotated.status_code == 200
    new = rotated.json()["ocpp_password"]
    charger = Charger.objects.get(station_id="ROT-1")
    assert new != old and charger.check_ocpp_password(new) and not charger.check_ocpp_password(old)


def test_viewers_cannot_rotate(owner_and_property):
    _, prop = owner_and_property
    charger = ChargerFactory(property=prop, security_profile=1, ocpp_password="x" * 20)
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    assert (
        api_for(viewer)
        .post(f"/api/v1/chargers/{charger.station_id}/rotate-password/", {}, format="json")
        .status_code
        == 403
    )


def test_the_overview_shows_a_rotated_password_once(client, owner_and_property):
    owner, prop = owner_and_property
    charger = ChargerFactory(property=prop, security_profile=1, ocpp_password="x" * 20)
    client.force_login(owner)
    response = client.post(reverse("chargers:charger-rotate-password", args=[charger.station_id]))
    assert response.status_code == 200
    password = response.context["new_password"]
    assert password in response.content.decode()
    charger.refresh_from_db()
    assert charger.check_ocpp_password(password)
    again = client.get(reverse("chargers:charger-detail", args=[charger.station_id]))
    assert password not in again.content.decode()


def test_the_overview_warns_about_a_charger_without_authentication(client, owner_and_property):
    owner, prop = owner_and_property
    charger = ChargerFactory(property=prop, security_profile=0)
    client.force_login(owner)
    page = client.get(
        reverse("chargers:charger-detail", args=[charger.station_id])
    ).content.decode()
    assert "without authentication" in page


def test_a_reported_authorization_key_is_masked_in_stored_answers():
    answer = {
        "configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": "ab" * 20},
            {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
        ]
    }
    stored = credentials.redact_response(answer)
    assert stored["configurationKey"][0]["value"] == credentials.MASK
    assert stored["configurationKey"][1]["value"] == "60"
    assert credentials.redact_response({"status": "Accepted"}) == {"status": "Accepted"}
