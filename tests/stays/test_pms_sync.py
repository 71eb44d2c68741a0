"""PMS adapters against recorded responses in each vendor's documented format (no network):
listings ↔ units, incremental pulls, plain-words errors with back-off, signed webhooks."""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from stays.models import Listing, PmsIntegration, Reservation, Unit
from stays.services.pms import (
    integration_credentials,
    integration_credentials_set,
    pms_sync,
    pms_webhook,
)
from tests.factories import PropertyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)

GUESTY_LISTINGS = {
    "results": [
        {"_id": "64a1f0c2e4b0a1", "title": "Lake cabin 1", "nickname": "Cabin 1"},
        {"_id": "64a1f0c2e4b0a2", "title": "Lake cabin 2", "nickname": "Cabin 2"},
    ],
    "count": 2,
    "limit": 100,
    "skip": 0,
}
GUESTY_RESERVATIONS = {
    "results": [
        {
            "_id": "65b2000000000001",
            "listingId": "64a1f0c2e4b0a1",
            "checkIn": "2026-07-01T13:00:00.000Z",
            "checkOut": "2026-07-04T09:00:00.000Z",
            "status": "confirmed",
            "confirmationCode": "GY-7Q2",
            "guest": {
                "fullName": "Anna Smith",
                "email": "anna@example.com",
                "phone": "+31 6 1234 5678",
            },
            "lastUpdatedAt": "2026-06-20T08:00:00.000Z",
        },
        {
            "_id": "65b2000000000002",
            "listingId": "64a1f0c2e4b0a2",
            "checkIn": "2026-07-10T13:00:00.000Z",
            "checkOut": "2026-07-12T09:00:00.000Z",
            "status": "canceled",
            "guest": {"fullName": "Bo Berg"},
            "lastUpdatedAt": "2026-06-21T10:30:00.000Z",
        },
    ],
    "count": 2,
    "limit": 100,
    "skip": 0,
}


def _transport(routes, seen):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        for (method, path), answer in routes.items():
            if request.method == method and request.url.path == path:
                status, body = answer(request) if callable(answer) else answer
                return httpx.Response(
                    status, json=body, headers={"Retry-After": "30"} if status == 429 else {}
                )
        return httpx.Response(404, json={"error": "not found"})

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.fixture
def site():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin1 = Unit.objects.create(property=prop, name="Cabin 1", external_id="64a1f0c2e4b0a1")
    cabin2 = Unit.objects.create(property=prop, name="Cabin 2")
    return prop, cabin1, cabin2


def _integration(prop, vendor, credentials, **extra):
    integration = PmsIntegration.objects.create(
        organization=prop.organization, vendor=vendor, **extra
    )
    integration_credentials_set(integration=integration, credentials=credentials)
    return integration


def test_credentials_are_stored_encrypted(site):
    integration = _integration(
        site[0], "guesty", {"client_id": "cid", "client_secret": "very-secret"}
    )
    integration.refresh_from_db()
    assert "very-secret" not in integration.credentials_encrypted
    assert integration_credentials(integration)["client_secret"] == "very-secret"


def test_guesty_sync_maps_listings_by_external_id_and_pulls_incrementally(site):
    prop, cabin1, cabin2 = site
    integration = _integration(prop, "guesty", {"client_id": "cid", "client_secret": "sec"})
    seen = []
    routes = {
        ("POST", "/oauth2/token"): (
            200,
            {"token_type": "Bearer", "access_token": "tok", "expires_in": 86400},
        ),
        ("GET", "/v1/listings"): (200, GUESTY_LISTINGS),
        ("GET", "/v1/reservations"): (200, GUESTY_RESERVATIONS),
    }
    result = pms_sync(integration_id=integration.pk, client=_transport(routes, seen), now=NOW)
    # Cabin 1's external id is the Guesty listing id: mapped; Cabin 2's listing is not yet.
    assert result.ok and result.listings == 2 and result.reservations == 1 and result.unmapped == 1
    anna = Reservation.objects.get()
    assert (anna.unit, anna.guest_name, anna.status, anna.source) == (
        cabin1,
        "Anna Smith",
        "confirmed",
        "guesty",
    )
    assert anna.check_in == datetime(2026, 7, 1, 13, tzinfo=UTC)
    integration.refresh_from_db()
    assert integration.state == "ok" and integration.cursor == "2026-06-21T10:30:00.000Z"
    assert "not mapped" in integration.last_error
    assert seen[-1].headers["Authorization"] == "Bearer tok"

    Listing.objects.filter(external_id="64a1f0c2e4b0a2").update(unit=cabin2)
    seen.clear()
    pms_sync(integration_id=integration.pk, client=_transport(routes, seen), now=NOW)
    query = dict(seen[-1].url.params)
    assert json.loads(query["filters"]) == [
        {"field": "lastUpdatedAt", "operator": "$gte", "value": "2026-06-21T10:30:00.000Z"}
    ]
    assert Reservation.objects.get(external_id="65b2000000000002").status == "cancelled"


def test_revoked_key_is_explained_and_the_sync_backs_off(site):
    integration = _integration(site[0], "guesty", {"client_id": "cid", "client_secret": "old"})
    routes = {("POST", "/oauth2/token"): (401, {"error": "invalid_client"})}
    result = pms_sync(integration_id=integration.pk, client=_transport(routes, []), now=NOW)
    integration.refresh_from_db()
    assert not result.ok and integration.state == "error"
    assert integration.last_error.startswith(
        "Guesty returned 401: the API credentials were revoked"
    )
    assert integration.next_attempt_at == NOW + timedelta(minutes=2) and integration.failures == 1
    # Within the back-off a scheduled sync does not call Guesty again.
    seen = []
    assert not pms_sync(integration_id=integration.pk, client=_transport(routes, seen), now=NOW).ok
    assert seen == []


def test_rate_limit_waits_for_retry_after(site):
    integration = _integration(site[0], "hospitable", {"token": "pat"})
    routes = {("GET", "/v2/properties"): (429, {"message": "Too Many Attempts."})}
    pms_sync(integration_id=integration.pk, client=_transport(routes, []), now=NOW)
    integration.refresh_from_db()
    assert integration.state == "backoff" and integration.next_attempt_at == NOW + timedelta(
        seconds=30
    )
    assert "429" in integration.last_error


def test_hospitable_pulls_each_property_and_verifies_signed_webhooks(site):
    prop, cabin1, _ = site
    Unit.objects.filter(pk=cabin1.pk).update(external_id="9c6b8f1e-1d1a-4d8e-9d2a-3f0a1b2c3d4e")
    integration = _integration(prop, "hospitable", {"token": "pat", "webhook_secret": "hs-secret"})
    reservation = {
        "id": "b1e0c7a2-0000-4000-8000-000000000001",
        "code": "HMX1",
        "arrival_date": "2026-07-01",
        "departure_date": "2026-07-04",
        "check_in": "2026-07-01T15:00:00+02:00",
        "check_out": "2026-07-04T11:00:00+02:00",
        "reservation_status": {"current": {"category": "accepted", "sub_category": None}},
        "guest": {
            "first_name": "Anna",
            "last_name": "Smith",
            "email": "anna@example.com",
            "phone_numbers": ["+31612345678"],
        },
    }
    routes = {
        ("GET", "/v2/properties"): (
            200,
            {
                "data": [{"id": "9c6b8f1e-1d1a-4d8e-9d2a-3f0a1b2c3d4e", "name": "Lake cabin 1"}],
                "meta": {"current_page": 1, "last_page": 1},
            },
        ),
        ("GET", "/v2/reservations"): (
            200,
            {"data": [reservation], "meta": {"current_page": 1, "last_page": 1}},
        ),
    }
    seen = []
    assert (
        pms_sync(
            integration_id=integration.pk, client=_transport(routes, seen), now=NOW
        ).reservations
        == 1
    )
    assert seen[-1].url.params["properties[]"] == "9c6b8f1e-1d1a-4d8e-9d2a-3f0a1b2c3d4e"
    assert Reservation.objects.get().check_in == datetime(2026, 7, 1, 13, tzinfo=UTC)

    changed = dict(
        reservation,
        check_out="2026-07-05T11:00:00+02:00",
        properties=[{"id": "9c6b8f1e-1d1a-4d8e-9d2a-3f0a1b2c3d4e"}],
    )
    body = json.dumps({"action": "reservation.changed", "data": changed}).encode()
    good = hmac.new(b"hs-secret", body, hashlib.sha256).hexdigest()
    assert (
        pms_webhook(webhook_key=integration.webhook_key, headers={"Signature": "0" * 64}, body=body)
        == "bad_signature"
    )
    assert Reservation.objects.get().check_out.day == 4
    assert (
        pms_webhook(webhook_key=integration.webhook_key, headers={"Signature": good}, body=body)
        == "ok"
    )
    assert Reservation.objects.get().check_out == datetime(2026, 7, 5, 9, tzinfo=UTC)


def test_guesty_webhook_needs_a_valid_svix_signature(client, site):
    prop, cabin1, _ = site
    secret = base64.b64encode(b"guesty-webhook-key").decode()
    integration = _integration(
        prop,
        "guesty",
        {"client_id": "c", "client_secret": "s", "webhook_secret": f"whsec_{secret}"},
    )
    Listing.objects.create(integration=integration, external_id="64a1f0c2e4b0a1", unit=cabin1)
    body = json.dumps(
        {"event": "reservation.new", "reservation": GUESTY_RESERVATIONS["results"][0]}
    ).encode()
    stamp = str(int(time.time()))
    sig = base64.b64encode(
        hmac.new(b"guesty-webhook-key", f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    )
    headers = {"HTTP_SVIX_ID": "msg_1", "HTTP_SVIX_TIMESTAMP": stamp}
    url = f"/stays/webhooks/{integration.webhook_key}/"
    bad = client.post(
        url, body, content_type="application/json", HTTP_SVIX_SIGNATURE="v1,AAAA", **headers
    )
    assert bad.status_code == 401 and not Reservation.objects.exists()
    ok = client.post(
        url,
        body,
        content_type="application/json",
        HTTP_SVIX_SIGNATURE=f"v1,{sig.decode()}",
        **headers,
    )
    assert ok.status_code == 200 and Reservation.objects.get().guest_name == "Anna Smith"
    assert (
        client.post("/stays/webhooks/nope/", body, content_type="application/json").status_code
        == 404
    )


def test_track_pages_units_and_reservations_with_basic_auth(site):
    prop, cabin1, _ = site
    Unit.objects.filter(pk=cabin1.pk).update(external_id="145")
    integration = _integration(
        prop, "track", {"key": "k", "secret": "s"}, base_url="https://lake.trackhs.com"
    )
    units = {
        "_embedded": {"units": [{"id": 145, "name": "Cabin 1"}]},
        "page_count": 1,
        "page": 1,
        "total_items": 1,
    }
    reservations = {
        "_embedded": {
            "reservations": [
                {
                    "id": 9001,
                    "unitId": 145,
                    "arrivalDate": "2026-07-01",
                    "departureDate": "2026-07-04",
                    "status": "Confirmed",
                    "updatedAt": "2026-06-25T10:00:00-04:00",
                    "_embedded": {
                        "contact": {
                            "firstName": "Anna",
                            "lastName": "Smith",
                            "primaryEmail": "anna@example.com",
                        }
                    },
                }
            ]
        },
        "page_count": 1,
        "page": 1,
    }
    seen = []
    routes = {
        ("GET", "/api/pms/units"): (200, units),
        ("GET", "/api/pms/reservations"): (200, reservations),
    }
    assert (
        pms_sync(
            integration_id=integration.pk, client=_transport(routes, seen), now=NOW
        ).reservations
        == 1
    )
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"k:s").decode()
    anna = Reservation.objects.get()
    # Track gives dates: the property's usual check-in (15:00) and check-out (11:00), Amsterdam time.
    assert anna.check_in == datetime(2026, 7, 1, 13, tzinfo=UTC) and anna.check_out == datetime(
        2026, 7, 4, 9, tzinfo=UTC
    )
    pms_sync(integration_id=integration.pk, client=_transport(routes, seen), now=NOW)
    assert seen[-1].url.params["updatedSince"] == "2026-06-25T10:00:00-04:00"


def test_sync_page_shows_state_in_plain_words_and_only_editors_get_sync_now(client, site):
    from tests.factories import MembershipFactory

    prop, cabin1, _ = site
    integration = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="guesty",
        state="error",
        listings_count=2,
        reservations_count=5,
        last_synced_at=NOW,
        last_error="Guesty returned 401: the API credentials were revoked or are wrong.",
    )
    listing = Listing.objects.create(
        integration=integration, external_id="L-2", name="Lake cabin 2"
    )
    client.force_login(MembershipFactory(organization=prop.organization, role="viewer").user)
    page = client.get("/stays/integrations/").content.decode()
    assert "Guesty returned 401" in page and "5 reservations" in page and "Sync now" not in page
    client.force_login(MembershipFactory(organization=prop.organization, role="manager").user)
    assert "Sync now" in client.get("/stays/integrations/").content.decode()
    client.post(
        f"/stays/integrations/{integration.pk}/listings/{listing.pk}/unit/", {"unit": cabin1.pk}
    )
    assert Listing.objects.get(pk=listing.pk).unit == cabin1
    other = PmsIntegration.objects.create(
        organization=PropertyFactory().organization, vendor="track"
    )
    assert client.post(f"/stays/integrations/{other.pk}/sync/").status_code == 404


@pytest.mark.parametrize(
    ("age_s", "accepted"),
    [
        (0, True),
        (270, True),  # inside Svix's five minutes
        (-270, True),  # a sender clock slightly ahead
        (330, False),  # a captured message replayed later
        (-330, False),  # a stamp from the future
        (3600, False),
        (86400 * 30, False),
    ],
)
def test_guesty_webhook_refuses_a_correctly_signed_message_outside_five_minutes(
    client, site, age_s, accepted
):
    """The signature covers the timestamp, so only the window stops a replay of a captured
    message: widening it past five minutes or dropping the check fails here."""
    prop, cabin1, _ = site
    integration = _integration(
        prop,
        "guesty",
        {
            "client_id": "c",
            "client_secret": "s",
            "webhook_secret": "whsec_" + base64.b64encode(b"guesty-webhook-key").decode(),
        },
    )
    Listing.objects.create(integration=integration, external_id="64a1f0c2e4b0a1", unit=cabin1)
    body = json.dumps(
        {"event": "reservation.new", "reservation": GUESTY_RESERVATIONS["results"][0]}
    ).encode()
    stamp = str(int(time.time()) - age_s)
    sig = base64.b64encode(
        hmac.new(b"guesty-webhook-key", f"msg_9.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    answer = client.post(
        f"/stays/webhooks/{integration.webhook_key}/",
        body,
        content_type="application/json",
        HTTP_SVIX_ID="msg_9",
        HTTP_SVIX_TIMESTAMP=stamp,
        HTTP_SVIX_SIGNATURE=f"v1,{sig}",
    )
    assert answer.status_code == (200 if accepted else 401)
    assert Reservation.objects.exists() is accepted
