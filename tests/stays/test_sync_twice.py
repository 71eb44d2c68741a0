"""The same stay sync twice, at once or late: a calendar feed pulled by the beat and "Sync now"
together, a PMS pull run by two workers, a guest's access code asked for by both. Nothing is
doubled (no second reservation, no second email) and the second run does not fail."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core import mail
from django.db import connection

from stays.models import CalendarFeed, PmsIntegration, Reservation, Unit
from stays.services import calendar_feed_sync, reservation_send_code
from stays.services.pms import integration_credentials_set, pms_sync
from tests.factories import PropertyFactory

NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


def _at_once(count, call):
    """Run call(n) in `count` threads released together; return their results (errors raised)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[n] = call(n)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL")


def _event(uid: str, day: int) -> str:
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nSUMMARY:Reserved - Guest {uid}\r\n"
        f"DTSTART;VALUE=DATE:202612{day:02d}\r\nDTEND;VALUE=DATE:202612{day + 2:02d}\r\n"
        "END:VEVENT\r\n"
    )


CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    + "".join(_event(f"booking-{n}", n + 1) for n in range(12))
    + "END:VCALENDAR\r\n"
)


def _calendar_client() -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(
                200, text=CALENDAR, headers={"Content-Type": "text/calendar"}
            )
        )
    )


@pytest.mark.django_db(transaction=True)
def test_a_calendar_pulled_twice_at_once_syncs_once_and_neither_pull_fails(settings):
    _postgresql()
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    prop = PropertyFactory()
    feed = CalendarFeed.objects.create(
        property=prop, name="Airbnb", url="https://calendar.example.test/listing.ics"
    )
    results = _at_once(
        2, lambda n: calendar_feed_sync(feed_id=feed.pk, client=_calendar_client(), now=NOW)
    )
    # Before the feed's row lock the second pull inserted the same UIDs, hit the unique
    # constraint and marked the feed "conflicting events (the same UID twice)".
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert sorted(r.created for r in results) == [0, 12]
    assert Reservation.objects.filter(calendar=feed).count() == 12
    feed.refresh_from_db()
    assert feed.state == "ok" and feed.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_a_guests_access_code_asked_for_at_once_is_mailed_once(settings):
    _postgresql()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    prop = PropertyFactory()
    stay = Reservation.objects.create(
        property=prop,
        guest_email="anna@example.com",
        check_in=NOW,
        check_out=NOW + timedelta(days=3),
    )
    sent = _at_once(8, lambda n: reservation_send_code(reservation_id=stay.pk))
    assert sent.count(True) == 1
    assert len(mail.outbox) == 1
    stay.refresh_from_db()
    assert stay.code_sent_at is not None


GUESTY_LISTINGS = {"results": [{"_id": "L1", "title": "Cabin 1"}], "count": 1}


def _guesty(reservations: list[dict]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "tok"})
        if request.url.path == "/v1/listings":
            return httpx.Response(200, json=GUESTY_LISTINGS)
        if request.url.path == "/v1/reservations":
            return httpx.Response(200, json={"results": reservations, "count": len(reservations)})
        return httpx.Response(404, json={})

    return httpx.Client(transport=httpx.MockTransport(answer))


def _reservation(n: int, updated: str, **extra) -> dict:
    return {
        "_id": f"R{n}",
        "listingId": "L1",
        "checkIn": "2026-07-01T13:00:00.000Z",
        "checkOut": "2026-07-04T09:00:00.000Z",
        "status": "confirmed",
        "guest": {"fullName": f"Guest {n}", "email": f"guest{n}@example.com"},
        "lastUpdatedAt": updated,
        **extra,
    }


@pytest.fixture
def guesty():
    prop = PropertyFactory(timezone="Europe/Amsterdam")
    Unit.objects.create(property=prop, name="Cabin 1", external_id="L1")
    integration = PmsIntegration.objects.create(organization=prop.organization, vendor="guesty")
    integration_credentials_set(
        integration=integration, credentials={"client_id": "c", "client_secret": "s"}
    )
    return integration


@pytest.mark.django_db(transaction=True)
def test_a_pms_pulled_by_two_workers_at_once_stores_and_mails_each_stay_once(settings, guesty):
    _postgresql()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    stays = [_reservation(n, "2026-06-20T08:00:00.000Z") for n in range(6)]
    results = _at_once(
        2, lambda n: pms_sync(integration_id=guesty.pk, client=_guesty(stays), now=NOW)
    )
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert Reservation.objects.filter(integration=guesty).count() == 6
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"guest{n}@example.com" for n in range(6))


@pytest.mark.django_db(transaction=True)
def test_a_calendar_added_twice_at_once_is_one_feed(settings):
    from stays.services import calendar_feed_create

    _postgresql()
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    prop = PropertyFactory()
    url = "https://calendar.example.test/listing.ics"
    feeds = _at_once(2, lambda n: calendar_feed_create(property=prop, name="Airbnb", url=url))
    # Two feeds of one URL made each booking two stays, each mailing the guest a code.
    assert feeds[0].pk == feeds[1].pk
    assert CalendarFeed.objects.filter(property=prop).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_pms_connected_twice_at_once_is_one_integration():
    from stays.services import integration_create

    _postgresql()
    prop = PropertyFactory()
    connect = lambda n: integration_create(  # noqa: E731
        organization_id=prop.organization_id,
        vendor="guesty",
        credentials={"client_id": "cid", "client_secret": "secret"},
    )
    made = _at_once(2, connect)
    # Two integrations of one account made each booking two stays, each mailing the guest.
    assert made[0].pk == made[1].pk
    assert PmsIntegration.objects.filter(organization=prop.organization).count() == 1
    # Another account of the same PMS is another integration.
    integration_create(
        organization_id=prop.organization_id,
        vendor="guesty",
        credentials={"client_id": "other", "client_secret": "secret"},
    )
    assert PmsIntegration.objects.filter(organization=prop.organization).count() == 2
