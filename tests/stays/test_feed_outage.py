"""A calendar server in trouble: it answers an empty calendar for a while (a partial outage at
the listing site), or fails outright. The stays it listed are not wiped by one empty answer, and
the host reads on the stay settings page since when the calendar fails and when it last synced."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from stays.models import CalendarFeed, Reservation
from stays.services import calendar_feed_sync
from tests.factories import MembershipFactory, PropertyFactory

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
URL = "https://calendar.example.test/listing.ics"

TWO_STAYS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    "BEGIN:VEVENT\r\nUID:stay-1\r\nSUMMARY:Reserved - Ann\r\n"
    "DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20261204\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:stay-2\r\nSUMMARY:Reserved - Ben\r\n"
    "DTSTART;VALUE=DATE:20261210\r\nDTEND;VALUE=DATE:20261212\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
EMPTY = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Airbnb Inc//Hosting Calendar//EN\r\nEND:VCALENDAR\r\n"


def _serving(body: str, status: int = 200) -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(
                status, text=body, headers={"Content-Type": "text/calendar"}
            )
        )
    )


def _confirmed(feed: CalendarFeed) -> set[str]:
    return set(
        Reservation.objects.filter(calendar=feed, status="confirmed").values_list(
            "external_id", flat=True
        )
    )


@pytest.fixture
def feed(settings):
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    feed = CalendarFeed.objects.create(property=prop, name="Airbnb", url=URL)
    assert calendar_feed_sync(feed_id=feed.pk, client=_serving(TWO_STAYS), now=NOW).ok
    assert _confirmed(feed) == {"stay-1", "stay-2"}
    return feed


@pytest.mark.django_db
def test_an_empty_answer_after_a_partial_outage_keeps_the_stays_and_says_so(feed):
    later = NOW + timedelta(minutes=15)
    result = calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=later)

    # Before: the empty calendar cancelled both upcoming stays (their guests' codes stopped
    # working) and the feed showed "Synced".
    assert _confirmed(feed) == {"stay-1", "stay-2"}
    feed.refresh_from_db()
    assert not result.ok and feed.state == "error"
    assert "empty" in feed.last_error and "2 upcoming stays" in feed.last_error
    assert "kept" in feed.last_error
    assert feed.last_success_at == NOW  # the last real sync

    # A calendar that answers with its stays again: nothing was lost, the feed is fine.
    assert calendar_feed_sync(
        feed_id=feed.pk, client=_serving(TWO_STAYS), now=later + timedelta(minutes=15)
    ).ok
    assert _confirmed(feed) == {"stay-1", "stay-2"}


@pytest.mark.django_db
def test_a_calendar_that_stays_empty_for_half_a_day_is_believed(feed):
    # Empty on every pull: the stays are kept until the calendar has been empty 12 hours, then
    # they are taken as cancelled at the source (as the host would have wanted).
    at = NOW
    for _ in range(4):
        at += timedelta(hours=3, minutes=59)
        assert not calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=at).ok
        assert _confirmed(feed) == {"stay-1", "stay-2"}
    # A server error in between neither confirms the empty calendar nor starts its clock again.
    at += timedelta(minutes=15)
    assert not calendar_feed_sync(feed_id=feed.pk, client=_serving("", 503), now=at).ok
    at = NOW + timedelta(hours=3, minutes=59) + timedelta(hours=12)
    result = calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=at)
    assert result.ok and result.cancelled == 2
    assert _confirmed(feed) == set()
    feed.refresh_from_db()
    assert feed.state == "ok" and not feed.last_error


@pytest.mark.django_db
def test_an_empty_answer_between_full_ones_starts_its_clock_again(feed):
    at = NOW + timedelta(minutes=15)
    calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=at)
    at += timedelta(hours=11)
    assert calendar_feed_sync(feed_id=feed.pk, client=_serving(TWO_STAYS), now=at).ok
    at += timedelta(hours=2)  # 13 h after the first empty answer, but the first of a new run
    assert not calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=at).ok
    assert _confirmed(feed) == {"stay-1", "stay-2"}


@pytest.mark.django_db
def test_an_empty_calendar_with_no_upcoming_stays_is_simply_synced(settings):
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    feed = CalendarFeed.objects.create(property=PropertyFactory(), name="New listing", url=URL)
    result = calendar_feed_sync(feed_id=feed.pk, client=_serving(EMPTY), now=NOW)
    assert result.ok and result.bookings == 0


@pytest.mark.django_db
def test_the_host_reads_since_when_a_calendar_fails_and_when_it_last_synced(client, feed):
    at = NOW + timedelta(minutes=15)
    calendar_feed_sync(feed_id=feed.pk, client=_serving("", 503), now=at)
    calendar_feed_sync(feed_id=feed.pk, client=_serving("", 503), now=at + timedelta(hours=2))
    member = MembershipFactory(organization=feed.property.organization, role="viewer").user
    client.force_login(member)
    page = client.get("/stays/properties/").content.decode()
    row = page[page.index(f'data-feed="{feed.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "503" in row
    # Before: only "Last sync" (the failed attempt's time): nothing said the bookings shown were
    # two hours old, nor since when it failed.
    assert "Last synced" in row and "20 Nov 2026, 10:00" in row
    assert "failing since" in row and "20 Nov 2026, 10:15" in row


@pytest.mark.django_db
def test_a_calendar_added_through_the_api_while_the_broker_is_down_is_kept_and_pulled_later(
    settings, monkeypatch
):
    from kombu.exceptions import OperationalError
    from rest_framework.test import APIClient

    from stays import tasks
    from stays.services import calendar_feeds_due

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    monkeypatch.setattr(tasks.calendar_feed_sync_task, "delay", broker_down)
    prop = PropertyFactory()
    api = APIClient()
    api.force_authenticate(MembershipFactory(organization=prop.organization, role="owner").user)

    response = api.post(
        f"/api/v1/properties/{prop.pk}/calendars/", {"name": "Airbnb", "url": URL}, format="json"
    )

    # Before: a 500 after the feed was saved (a retry found the feed and failed the same way).
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "new" and "6379" not in response.content.decode()
    # Not lost: the beat pulls a feed never synced on its next round.
    assert body["id"] in calendar_feeds_due(every=timedelta(minutes=15))
