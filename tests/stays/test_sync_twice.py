"""The same stay sync twice, at once or late: a calendar feed pulled by the beat and "Sync now"
together, a PMS pull run by two workers, a guest's access code asked for by both. Nothing is
doubled (no second reservation, no second email) and the second run does not fail."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core import mail

from stays.models import CalendarFeed, PmsIntegration, Reservation
from stays.services import calendar_feed_sync, reservation_send_code
from stays.services.pms import pms_sync
from tests.concurrency import all_at_once
from tests.factories import PropertyFactory
from tests.stays.test_pms_cursor import guesty_client, pms_reservation

NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


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
@pytest.mark.usefixtures("postgresql_only")
def test_a_calendar_pulled_twice_at_once_syncs_once_and_neither_pull_fails(settings):
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    prop = PropertyFactory()
    feed = CalendarFeed.objects.create(
        property=prop, name="Airbnb", url="https://calendar.example.test/listing.ics"
    )
    results = all_at_once(
        *[lambda: calendar_feed_sync(feed_id=feed.pk, client=_calendar_client(), now=NOW)] * 2
    )
    # Before the feed's row lock the second pull inserted the same UIDs, hit the unique
    # constraint and marked the feed "conflicting events (the same UID twice)".
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert sorted(r.created for r in results) == [0, 12]
    assert Reservation.objects.filter(calendar=feed).count() == 12
    feed.refresh_from_db()
    assert feed.state == "ok" and feed.last_error == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_a_guests_access_code_asked_for_at_once_is_mailed_once(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    prop = PropertyFactory()
    stay = Reservation.objects.create(
        property=prop,
        guest_email="anna@example.com",
        check_in=NOW,
        check_out=NOW + timedelta(days=3),
    )
    sent = all_at_once(*[lambda: reservation_send_code(reservation_id=stay.pk)] * 8)
    assert sent.count(True) == 1
    assert len(mail.outbox) == 1
    stay.refresh_from_db()
    assert stay.code_sent_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_a_pms_pulled_by_two_workers_at_once_stores_and_mails_each_stay_once(settings, guesty):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    stays = [pms_reservation(n, "2026-06-20T08:00:00.000Z") for n in range(6)]
    results = all_at_once(
        *[lambda: pms_sync(integration_id=guesty.pk, client=guesty_client(stays), now=NOW)] * 2
    )
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert Reservation.objects.filter(integration=guesty).count() == 6
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"guest{n}@example.com" for n in range(6))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_a_calendar_added_twice_at_once_is_one_feed(settings):
    from stays.services import calendar_feed_create

    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    prop = PropertyFactory()
    url = "https://calendar.example.test/listing.ics"
    feeds = all_at_once(*[lambda: calendar_feed_create(property=prop, name="Airbnb", url=url)] * 2)
    # Two feeds of one URL made each booking two stays, each mailing the guest a code.
    assert feeds[0].pk == feeds[1].pk
    assert CalendarFeed.objects.filter(property=prop).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_a_pms_connected_twice_at_once_is_one_integration():
    from stays.services import integration_create

    prop = PropertyFactory()
    connect = lambda: integration_create(  # noqa: E731
        organization_id=prop.organization_id,
        vendor="guesty",
        credentials={"client_id": "cid", "client_secret": "secret"},
    )
    made = all_at_once(connect, connect)
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


def _refusing_client(both_asked: threading.Barrier) -> httpx.Client:
    """A Guesty that refuses the credentials, answering only when both pulls have asked (each
    pull has read the integration's failure count by then)."""

    def answer(request: httpx.Request) -> httpx.Response:
        both_asked.wait(timeout=30)
        return httpx.Response(401, json={"error": "invalid_client"})

    return httpx.Client(transport=httpx.MockTransport(answer))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_two_pulls_failing_at_once_count_two_failures(guesty):
    both_asked = threading.Barrier(2)
    results = all_at_once(
        *[lambda: pms_sync(integration_id=guesty.pk, client=_refusing_client(both_asked), now=NOW)]
        * 2
    )
    assert [r.ok for r in results] == [False, False]
    guesty.refresh_from_db()
    # Before, both pulls wrote "failures + 1" from the count each had read: one failure lost,
    # and the back-off stayed at its first step.
    assert guesty.failures == 2
    assert guesty.state == "error"
    assert guesty.next_attempt_at == NOW + timedelta(minutes=4)
