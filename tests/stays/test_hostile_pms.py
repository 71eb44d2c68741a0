"""A PMS that answers in shapes its documentation does not promise: records with fields missing,
null, of the wrong type, dates that are no dates or out of range, NULs and lone surrogates, whole
pages that are not the documented JSON, webhooks that are no JSON or carry unusable reservations.
A pull keeps the readable records and leaves out the others (as a broken iCal export's events);
an unreadable answer is the integration's error in words; a webhook gets a 4xx; never a 500."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest

from stays import views as stay_views
from stays.models import Listing, PmsIntegration, Reservation, Unit
from stays.services.pms import integration_credentials_set, pms_sync
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)
UNREADABLE = (
    "answered with data we cannot read (not the JSON its API documents). We try again later."
)


def _server(routes: dict) -> httpx.Client:
    """A PMS answering `routes[(method, path)]` = (status, JSON value or raw bytes)."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = routes.get((request.method, request.url.path), (404, {}))
        # json.dumps escapes lone surrogates as a PMS's JSON may ("\\ud800"); httpx's json= cannot.
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=raw)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.fixture
def site():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin1 = Unit.objects.create(property=prop, name="Cabin 1", external_id="L1")
    cabin2 = Unit.objects.create(property=prop, name="Cabin 2", external_id="L2")
    return prop, cabin1, cabin2


def _integration(prop, vendor, credentials, **extra) -> PmsIntegration:
    integration = PmsIntegration.objects.create(
        organization=prop.organization, vendor=vendor, **extra
    )
    integration_credentials_set(integration=integration, credentials=credentials)
    return integration


def _stay(**fields) -> dict:
    return {
        "_id": "R-good",
        "listingId": "L1",
        "checkIn": "2026-07-01T13:00:00.000Z",
        "checkOut": "2026-07-04T09:00:00.000Z",
        "status": "confirmed",
        "lastUpdatedAt": "2026-06-20T08:00:00.000Z",
        **fields,
    }


GUESTY_TOKEN = {("POST", "/oauth2/token"): (200, {"access_token": "tok"})}
GUESTY_LISTINGS = [
    {"_id": "L1", "nickname": "Cabin\x00 1"},
    {"title": "no id"},
    "junk",
    {"_id": {"$oid": "L9"}},
    {"_id": "L" * 101},  # longer than a listing id can be stored
    {"_id": "L2", "title": "\ud800 Cabin 2"},
]
GUESTY_RESERVATIONS = [
    _stay(guest={"fullName": "Anna\x00 Smith\udfff", "email": "anna@example.com"}),
    _stay(
        _id="R-guest-list", listingId="L2", checkIn="2026-07-05", checkOut="2026-07-07", guest=[1]
    ),
    _stay(_id="R\x00nul", guest="Bo", status=["confirmed"]),
    # The access code is mailed to the guest's address: what is no address is not kept.
    _stay(
        _id="R-bad-mail", guest={"fullName": "Cy", "email": "cy@example.com\nBcc: x@evil.example"}
    ),
    _stay(_id="no-check-in", checkIn=None),
    _stay(_id="words", checkIn="soon"),
    _stay(_id="year-99999", checkIn="99999-01-01"),
    _stay(_id="year-0", checkIn="0000-01-01"),
    _stay(_id="a-number", checkIn=20260701),
    _stay(_id="backwards", checkOut="2026-06-30T09:00:00.000Z"),
    _stay(_id="past-9999-in-utc", checkOut="9999-12-31T23:59:59-12:00"),
    _stay(_id="R" * 256),
    _stay(_id=None),
    _stay(_id=["R-list"]),
    "junk",
    42,
]


def test_a_guesty_pull_with_broken_records_syncs_the_readable_ones(client, site, monkeypatch):
    """The portal's "Sync now": before, the first broken record (or a NUL PostgreSQL refuses)
    ended the sync in a server error and nothing was stored."""
    prop, cabin1, cabin2 = site
    integration = _integration(prop, "guesty", {"client_id": "c", "client_secret": "s"})
    routes = {
        **GUESTY_TOKEN,
        ("GET", "/v1/listings"): (200, {"results": GUESTY_LISTINGS, "count": 6}),
        ("GET", "/v1/reservations"): (200, {"results": GUESTY_RESERVATIONS, "count": 16}),
    }
    monkeypatch.setattr(
        stay_views, "pms_sync", lambda **kw: pms_sync(client=_server(routes), now=NOW, **kw)
    )
    client.force_login(MembershipFactory(organization=prop.organization, role="manager").user)
    page = client.post(
        f"/stays/integrations/{integration.pk}/sync/", {"back": "detail"}, follow=True
    )
    assert page.status_code == 200
    said = [str(m) for m in page.context["messages"]]
    assert said == [
        f"{integration}: 2 listings, 4 reservations synced, 16 left out (no usable id or dates)."
    ]
    assert dict(Listing.objects.values_list("external_id", "name")) == {
        "L1": "Cabin 1",
        "L2": "? Cabin 2",
    }
    stored = {r.external_id: r for r in Reservation.objects.all()}
    assert set(stored) == {"R-good", "R-guest-list", "Rnul", "R-bad-mail"}
    assert stored["R-good"].guest_email == "anna@example.com"
    assert stored["R-bad-mail"].guest_email == "" and stored["R-bad-mail"].guest_name == "Cy"
    assert stored["R-good"].guest_name == "Anna Smith?" and stored["R-good"].unit == cabin1
    assert stored["R-guest-list"].unit == cabin2 and stored["R-guest-list"].guest_name == ""
    assert stored["R-guest-list"].check_in == datetime(2026, 7, 5, 13, tzinfo=UTC)
    assert stored["Rnul"].status == "tentative"  # a status that is no text is no confirmation
    integration.refresh_from_db()
    # The records left out are counted where the host sees the sync's state.
    assert integration.state == "ok"
    assert integration.last_error.startswith("16 record(s) from the PMS were left out")
    assert "Anna Smith" in client.get(f"/stays/integrations/{integration.pk}/").content.decode()


def test_hospitable_and_track_records_of_the_wrong_shape_are_read_or_left_out(site):
    prop, cabin1, cabin2 = site
    good = {"id": "H-good", "arrival_date": "2026-07-01", "departure_date": "2026-07-04"}
    hospitable = _integration(prop, "hospitable", {"token": "pat"})
    routes = {
        ("GET", "/v2/properties"): (
            200,
            {"data": [{"id": "L1", "name": ["x"]}, {"name": "no id"}, 7], "meta": [1]},
        ),
        ("GET", "/v2/reservations"): (
            200,
            {
                "data": [
                    dict(
                        good,
                        guest={"first_name": 5, "last_name": "Berg", "phone_numbers": "+316"},
                        reservation_status="accepted",
                    ),
                    dict(good, id="H-guest-list", guest=["Anna"], properties={"0": {}}),
                    dict(good, id="H-status", reservation_status={"current": "accepted"}),
                    {"id": "H-no-dates"},
                    dict(good, id="H-backwards", departure_date="2026-06-01"),
                    "junk",
                ],
                "meta": {"last_page": 1},
            },
        ),
    }
    result = pms_sync(integration_id=hospitable.pk, client=_server(routes), now=NOW)
    assert (result.ok, result.listings, result.reservations) == (True, 1, 3)
    first = Reservation.objects.get(integration=hospitable, external_id="H-good")
    assert (first.guest_name, first.guest_phone, first.unit) == ("5 Berg", "", cabin1)

    track = _integration(prop, "track", {"key": "k", "secret": "s"}, base_url="https://t.example")
    good = {"id": 1, "unitId": "L2", "arrivalDate": "2026-07-01", "departureDate": "2026-07-04"}
    routes = {
        ("GET", "/api/pms/units"): (
            200,
            {"_embedded": {"units": [{"id": "L2"}, {"id": None}, {"id": True}]}, "page_count": 1},
        ),
        ("GET", "/api/pms/reservations"): (
            200,
            {
                "_embedded": {
                    "reservations": [
                        dict(good, _embedded={"contact": ["Anna"]}),
                        dict(good, id=2, _embedded=[1], status=None),
                        dict(good, id=3, arrivalDate="2026-02-30"),
                        dict(good, id=4.5),
                        {"unitId": "L2"},
                    ]
                },
                "page_count": 1,
            },
        ),
    }
    result = pms_sync(integration_id=track.pk, client=_server(routes), now=NOW)
    assert (result.ok, result.listings, result.reservations) == (True, 1, 2)
    assert set(
        Reservation.objects.filter(integration=track).values_list("external_id", flat=True)
    ) == {"1", "2"}


DEEP = b'{"results": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


@pytest.mark.parametrize(
    ("vendor", "routes", "error"),
    [
        ("guesty", {("GET", "/v1/listings"): (200, [1, 2])}, f"Guesty {UNREADABLE}"),
        (
            "guesty",
            {("GET", "/v1/listings"): (200, {"results": {"_id": "L1"}})},
            f"Guesty {UNREADABLE}",
        ),
        (
            "guesty",
            {("GET", "/v1/listings"): (200, {"results": [{"_id": "L1"}], "count": "many"})},
            f"Guesty {UNREADABLE}",
        ),
        ("guesty", {("GET", "/v1/listings"): (200, DEEP)}, f"Guesty {UNREADABLE}"),
        (
            "guesty",
            {("GET", "/v1/listings"): (400, b"bad\x00 request")},
            "Guesty returned 400: bad request",
        ),
        (
            "guesty-token",
            {("POST", "/oauth2/token"): (200, b"<html>sign in</html>")},
            "Guesty answered with something that is not JSON.",
        ),
        ("guesty-token", {("POST", "/oauth2/token"): (200, ["tok"])}, f"Guesty {UNREADABLE}"),
        (
            "hospitable",
            {("GET", "/v2/properties"): (200, {"data": "L1"})},
            f"Hospitable {UNREADABLE}",
        ),
        (
            "hospitable",
            {
                ("GET", "/v2/properties"): (
                    200,
                    {"data": [{"id": "L1"}], "meta": {"last_page": None}},
                )
            },
            f"Hospitable {UNREADABLE}",
        ),
        (
            "track",
            {("GET", "/api/pms/units"): (200, {"_embedded": {"units": {"id": 1}}})},
            f"Track {UNREADABLE}",
        ),
        (
            "track",
            {
                ("GET", "/api/pms/units"): (
                    200,
                    {"_embedded": {"units": [{"id": 1}]}, "page_count": "x"},
                )
            },
            f"Track {UNREADABLE}",
        ),
    ],
)
def test_an_answer_of_the_wrong_shape_is_the_integrations_error_in_words(
    site, vendor, routes, error
):
    """Before: AttributeError, TypeError, ValueError, RecursionError or a NUL the database
    refuses, so the background task died and no error was recorded."""
    prop = site[0]
    routes = {**({} if vendor == "guesty-token" else GUESTY_TOKEN), **routes}
    vendor = vendor.removesuffix("-token")
    integration = _integration(
        prop,
        vendor,
        {"client_id": "c", "client_secret": "s", "token": "t", "key": "k", "secret": "s"},
        base_url="https://t.example" if vendor == "track" else "",
    )
    result = pms_sync(integration_id=integration.pk, client=_server(routes), now=NOW)
    integration.refresh_from_db()
    assert not result.ok and result.error == error == integration.last_error
    assert integration.state == "error" and integration.failures == 1
    assert not Listing.objects.exists() and not Reservation.objects.exists()


@pytest.fixture
def hospitable_hook(site):
    prop, cabin1, _ = site
    integration = _integration(prop, "hospitable", {"token": "t", "webhook_secret": "hs-secret"})
    Listing.objects.create(integration=integration, external_id="L1", unit=cabin1)
    return integration


def _signed(client, integration, body: bytes, content_type="application/json"):
    signature = hmac.new(b"hs-secret", body, hashlib.sha256).hexdigest()
    return client.post(
        f"/stays/webhooks/{integration.webhook_key}/",
        body,
        content_type=content_type,
        HTTP_SIGNATURE=signature,
    )


def _event(**fields) -> bytes:
    data = {
        "id": "H-1",
        "arrival_date": "2026-07-01",
        "departure_date": "2026-07-04",
        "properties": [{"id": "L1"}],
        "reservation_status": {"current": {"category": "accepted"}},
        **fields,
    }
    return json.dumps({"action": "reservation.changed", "data": data}).encode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"not json", "text/plain"),
        (b"\xff\xfe{}", "application/json"),
        (b"[" * 50_000 + b"]" * 50_000, "text/plain"),  # the depth check only reads JSON types
        (_event(departure_date="2026-06-30"), "application/json"),  # ends before it starts
        (_event(arrival_date="99999-01-01"), "application/json"),
        (_event(arrival_date=None, check_in=None), "application/json"),
        (_event(id={"nested": "id"}), "application/json"),
    ],
)
def test_a_signed_webhook_that_is_no_readable_reservation_is_a_400(
    client, hospitable_hook, body, content_type
):
    """Before: a 500 (RecursionError; IntegrityError for check-out before check-in) or a 202 as
    if the event did not concern reservations."""
    answer = _signed(client, hospitable_hook, body, content_type)
    assert answer.status_code == 400
    assert answer.json() == {"result": "invalid", "detail": stay_views.WEBHOOK_INVALID}
    assert not Reservation.objects.exists()


def test_a_signed_webhook_with_odd_fields_stores_what_can_be_stored(client, hospitable_hook):
    """Before: a guest that is a list was an AttributeError, a NUL or a lone surrogate in a name
    a database error: all 500s, so the PMS retried a message that could never be stored."""
    odd = _event(guest=["Anna"], reservation_status="accepted")
    assert _signed(client, hospitable_hook, odd).status_code == 200
    # A NUL in a text/plain body passes the NUL middleware (it reads JSON and form bodies).
    named = _event(guest={"first_name": "An\x00na", "last_name": "Sm\ud800ith"})
    assert _signed(client, hospitable_hook, named, "text/plain").status_code == 200
    stay = Reservation.objects.get()
    assert stay.guest_name == "Anna Sm?ith" and stay.status == "confirmed"


def test_a_guesty_timestamp_too_big_for_a_float_is_refused_as_unsigned(client, site):
    """Before: OverflowError (a 500) for anyone who knew the webhook URL, before any signature."""
    secret = "whsec_" + base64.b64encode(b"guesty-webhook-key").decode()
    integration = _integration(
        site[0], "guesty", {"client_id": "c", "client_secret": "s", "webhook_secret": secret}
    )
    answer = client.post(
        f"/stays/webhooks/{integration.webhook_key}/",
        json.dumps({"event": "reservation.new", "reservation": _stay()}),
        content_type="application/json",
        HTTP_SVIX_ID="msg_1",
        HTTP_SVIX_TIMESTAMP="1" + "0" * 400,
        HTTP_SVIX_SIGNATURE="v1,AAAA",
    )
    assert answer.status_code == 401 and not Reservation.objects.exists()


@pytest.mark.parametrize(
    "vendor, routes",
    [
        ("guesty", {("GET", "/v1/listings"): (200, {"results": [{"_id": "L1"}], "count": 10**9})}),
        (
            "hospitable",
            {
                ("GET", "/v2/properties"): (
                    200,
                    {"data": [{"id": "L1"}], "meta": {"last_page": 10**9}},
                )
            },
        ),
        (
            "track",
            {
                ("GET", "/api/pms/units"): (
                    200,
                    {"_embedded": {"units": [{"id": 1}]}, "page_count": 10**9},
                )
            },
        ),
    ],
)
def test_a_list_whose_count_never_comes_stops_at_the_page_cap(site, vendor, routes, monkeypatch):
    """A vendor counting 10^9 pages, each answered full, kept a sync paging for days: past
    PAGES_MAX the pull stops with the integration's error in words, and nothing is stored."""
    from stays import pms

    monkeypatch.setattr(pms, "PAGES_MAX", 3)
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        status, body = {**GUESTY_TOKEN, **routes}.get((request.method, request.url.path), (404, {}))
        return httpx.Response(status, content=json.dumps(body).encode())

    integration = _integration(
        site[0],
        vendor,
        {"client_id": "c", "client_secret": "s", "token": "t", "key": "k", "secret": "s"},
        base_url="https://t.example" if vendor == "track" else "",
    )
    client = httpx.Client(transport=httpx.MockTransport(handler))
    result = pms_sync(integration_id=integration.pk, client=client, now=NOW)
    assert not result.ok and "did not end after 3 pages" in result.error
    assert len([p for p in requests if p != "/oauth2/token"]) == 3
    assert not Listing.objects.exists()


def test_an_empty_page_ends_a_list_whatever_its_page_count_says(site):
    """Hospitable's `last_page` of 10^9 over empty pages: the first empty page ends the list."""
    routes = {("GET", "/v2/properties"): (200, {"data": [], "meta": {"last_page": 10**9}})}
    integration = _integration(site[0], "hospitable", {"token": "t"})
    result = pms_sync(integration_id=integration.pk, client=_server(routes), now=NOW)
    assert result.ok


def test_a_sync_queued_before_its_integration_or_feed_was_removed_does_nothing(site):
    """A host disconnects a PMS (or removes a calendar) while its pull waits in the queue: the
    task finds nothing to pull and ends, instead of failing with DoesNotExist."""
    from stays.models import CalendarFeed
    from stays.tasks import calendar_feed_sync_task, pms_sync_task

    integration = _integration(site[0], "hospitable", {"token": "t"})
    feed = CalendarFeed.objects.create(property=site[0], name="Gone", url="https://x.example/c")
    gone = (integration.pk, feed.pk)
    integration.delete()
    feed.delete()
    # Called as the worker calls them (a task's .get() is refused when another test's eager task
    # left Celery's "inside a task" flag set in this process).
    assert pms_sync_task(gone[0]) is False
    assert calendar_feed_sync_task(gone[1]) is False


def test_a_page_larger_than_the_cap_is_the_integrations_error_and_not_kept_in_memory(
    site, monkeypatch
):
    """Calendar feeds stop at 5 MB; a PMS page stops at PAGE_MAX_BYTES (a vendor streaming
    without end must not fill the process's memory)."""
    from stays import pms

    monkeypatch.setattr(pms, "PAGE_MAX_BYTES", 1000)
    listings = [{"id": f"L{n}", "name": "x" * 50} for n in range(40)]  # ~2.5 KB
    routes = {("GET", "/v2/properties"): (200, {"data": listings, "meta": {"last_page": 1}})}
    integration = _integration(site[0], "hospitable", {"token": "t"})
    result = pms_sync(integration_id=integration.pk, client=_server(routes), now=NOW)
    assert not result.ok
    assert (
        result.error
        == "Hospitable answered with more than 0.001 MB for one page. We try again later."
    )
    assert not Listing.objects.exists()
