"""A calendar server in trouble: it answers an empty calendar for a while (a partial outage at
the listing site), or fails outright. The stays it listed are not wiped by one empty answer, and
the host reads on the stay settings page since when the calendar fails and when it last synced."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def dribbling(body: str, content_type: str) -> Iterator[str]:
    """An HTTP server that answers 200 at once, then sends `body` a few bytes at a time, each well
    within the read timeout, for 6 seconds (a server in trouble, or a slowloris); its host:port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            raw = body.encode()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(raw)}\r\n\r\n"
            )
            conn.sendall(head.encode())
            chunks = [raw[i : i + 20] for i in range(0, len(raw), 20)]
            for chunk in chunks:
                if stop.wait(6 / len(chunks)):
                    return
                try:
                    conn.sendall(chunk)
                except OSError:
                    return  # the client gave up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=10)


@pytest.mark.django_db
def test_a_calendar_server_that_dribbles_its_answer_is_given_up_on_within_the_deadline(
    feed, settings, monkeypatch
):
    from stays.services import stays as stays_services

    # The whole pull has a deadline (every read within the timeout is not enough): shortened here.
    monkeypatch.setattr(stays_services, "FEED_DEADLINE_S", 1.0)
    with dribbling(TWO_STAYS, "text/calendar") as server:
        settings.OUTBOUND_URL_ALLOWLIST = [server]
        CalendarFeed.objects.filter(pk=feed.pk).update(url=f"http://{server}/listing.ics")
        result = calendar_feed_sync(feed_id=feed.pk, now=NOW + timedelta(minutes=15))

    # Before: each read came within the 15 s timeout, so the pull went on as long as the server
    # kept dribbling (a worker, or the host's "Sync now" request, held all that time).
    assert not result.ok
    assert "did not finish its answer within 1 seconds" in result.error
    assert _confirmed(feed) == {"stay-1", "stay-2"}


@pytest.mark.django_db
def test_a_pms_that_dribbles_a_page_is_given_up_on_within_the_deadline(settings, monkeypatch):
    import json

    from stays import pms
    from stays.models import PmsIntegration
    from stays.services.pms import integration_credentials_set, pms_sync

    monkeypatch.setattr(pms, "PAGE_DEADLINE_S", 1.0)
    page = json.dumps({"_embedded": {"units": []}, "page_count": 1, "page": 1, "total_items": 0})
    with dribbling(page, "application/json") as server:
        settings.OUTBOUND_URL_ALLOWLIST = [server]
        prop = PropertyFactory()
        integration = PmsIntegration.objects.create(
            organization=prop.organization, vendor="track", base_url=f"http://{server}"
        )
        integration_credentials_set(
            integration=integration, credentials={"key": "k", "secret": "s"}
        )
        result = pms_sync(integration_id=integration.pk, now=NOW)

    # Before: the pull read on as long as the vendor kept sending within each read's timeout.
    assert not result.ok and "did not finish its answer within 1 seconds" in result.error
    integration.refresh_from_db()
    assert integration.state == "backoff" and integration.next_attempt_at > NOW
    assert integration.failures == 1 and "Track" in integration.last_error


@pytest.mark.django_db
def test_a_pms_that_stays_down_is_asked_less_and_less_often(guesty):
    from stays.models import PmsIntegration
    from stays.services.pms import pms_sync

    def down(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "tok"})
        return httpx.Response(503, text="<html>Service Unavailable</html>")

    at, waits = NOW, []
    for _ in range(7):
        client = httpx.Client(transport=httpx.MockTransport(down))
        assert not pms_sync(integration_id=guesty.pk, client=client, now=at).ok
        row = PmsIntegration.objects.get(pk=guesty.pk)
        waits.append(int((row.next_attempt_at - at).total_seconds() // 60))
        at = row.next_attempt_at
    # Before: 5 minutes after every failure, however long the outage (the 5xx's floor replaced
    # the back-off instead of being its floor).
    assert waits == [5, 5, 8, 16, 32, 60, 60]
    assert row.failures == 7 and "503" in row.last_error and "<html>" not in row.last_error
