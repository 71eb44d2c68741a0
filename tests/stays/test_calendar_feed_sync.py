"""A calendar served by an independent HTTP server (python -m http.server, a real socket) is added
to a unit through the API; its bookings become reservations, blocks do not, and a booking that
disappears or is cancelled is cancelled here."""

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from stays.models import CalendarFeed, Reservation, Unit
from tests.conftest import free_port
from tests.factories import MembershipFactory, PropertyFactory

AIRBNB = """BEGIN:VCALENDAR\r
PRODID:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r
CALSCALE:GREGORIAN\r
VERSION:2.0\r
BEGIN:VEVENT\r
DTEND;VALUE=DATE:20261205\r
DTSTART;VALUE=DATE:20261201\r
UID:1418fb94e984-3e47c4d5a2b2a3f4d5a7b0a1@airbnb.com\r
DESCRIPTION:Reservation URL: https://www.airbnb.com/hosting/reservations/details/HMABC12345\\nPhone Number (Last 4 Digits): 4321\r
SUMMARY:Reserved\r
END:VEVENT\r
BEGIN:VEVENT\r
DTEND;VALUE=DATE:20261212\r
DTSTART;VALUE=DATE:20261210\r
UID:7f1c9d02aa11-0a41f8bd4cde@airbnb.com\r
SUMMARY:Airbnb (Not available)\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART;TZID=America/New_York:20261215T160000\r
DTEND;TZID=America/New_York:20261218T100000\r
UID:vrbo-4471-2231\r
SUMMARY:Reserved - Anna Smith\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20261220\r
DTEND;VALUE=DATE:20261222\r
UID:booking-com-closed-1\r
SUMMARY:CLOSED - Not available\r
END:VEVENT\r
END:VCALENDAR\r
"""

# Later: the Airbnb booking is gone, Anna's stay moved a day, a new booking was cancelled.
AIRBNB_LATER = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r
BEGIN:VEVENT\r
DTSTART;TZID=America/New_York:20261216T160000\r
DTEND;TZID=America/New_York:20261219T100000\r
UID:vrbo-4471-2231\r
SUMMARY:Reserved - Anna Smith\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART:20261226T140000Z\r
DTEND:20261228T100000Z\r
UID:pms-998\r
STATUS:CANCELLED\r
SUMMARY:Bob Jones\r
END:VEVENT\r
END:VCALENDAR\r
"""


def _free_port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


@pytest.fixture
def ical_server(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield tmp_path, f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=5)


def _listed(client, **params):
    response = client.get("/api/v1/reservations/", params)
    assert response.status_code == 200, response.content
    return {row["external_id"]: row for row in response.json()["results"]}


@pytest.mark.django_db(transaction=True)
def test_feed_bookings_become_reservations_and_disappearing_ones_are_cancelled(ical_server):
    folder, base = ical_server
    (folder / "listing.ics").write_text(AIRBNB)
    prop = PropertyFactory(timezone="Europe/Amsterdam")
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    unit = Unit.objects.create(property=prop, name="Apartment 1")
    client = APIClient()
    client.force_authenticate(owner)
    host_port = base.removeprefix("http://")

    with override_settings(MSP_URL_ALLOWLIST=[host_port]):
        response = client.post(
            f"/api/v1/properties/{prop.pk}/calendars/",
            {"name": "Airbnb", "url": f"{base}/listing.ics", "unit": unit.pk},
            format="json",
        )
        assert response.status_code == 201, response.content
        feed = response.json()
        # Pulled at once: two bookings; the Airbnb block and Booking.com's closed range are not stays.
        assert feed["state"] == "ok" and feed["bookings_seen"] == 2 and feed["blocked_seen"] == 2

        rows = _listed(client, unit=unit.pk)
        assert set(rows) == {"1418fb94e984-3e47c4d5a2b2a3f4d5a7b0a1@airbnb.com", "vrbo-4471-2231"}
        airbnb = rows["1418fb94e984-3e47c4d5a2b2a3f4d5a7b0a1@airbnb.com"]
        # All-day dates get the policy's check-in 15:00 / check-out 11:00 in the property's zone (CET).
        assert (
            airbnb["check_in"] == "2026-12-01T14:00:00Z"
            and airbnb["check_out"] == "2026-12-05T10:00:00Z"
        )
        assert (
            airbnb["source"] == "ical" and airbnb["status"] == "confirmed" and airbnb["access_code"]
        )
        anna = rows["vrbo-4471-2231"]
        assert anna["guest_name"] == "Anna Smith"
        assert anna["check_in"] == "2026-12-15T21:00:00Z"  # 16:00 in New York (EST, UTC-5)
        active = _listed(client, active_at="2026-12-03T12:00:00Z")
        assert list(active) == ["1418fb94e984-3e47c4d5a2b2a3f4d5a7b0a1@airbnb.com"]

        (folder / "listing.ics").write_text(AIRBNB_LATER)
        response = client.post(f"/api/v1/calendars/{feed['id']}/sync/")
        assert response.status_code == 200, response.content
        assert response.json()["cancelled_count"] == 1

    rows = _listed(client, unit=unit.pk)
    assert set(rows) == {
        "vrbo-4471-2231"
    }  # the vanished Airbnb booking is cancelled, Bob's never confirmed
    assert rows["vrbo-4471-2231"]["check_in"] == "2026-12-16T21:00:00Z"
    cancelled = _listed(client, status="cancelled")
    assert set(cancelled) == {"1418fb94e984-3e47c4d5a2b2a3f4d5a7b0a1@airbnb.com", "pms-998"}
    assert Reservation.objects.filter(calendar_id=feed["id"]).count() == 3


@pytest.mark.django_db(transaction=True)
def test_feed_errors_are_recorded_in_plain_words_and_change_nothing(ical_server):
    folder, base = ical_server
    (folder / "listing.ics").write_text(AIRBNB)
    prop = PropertyFactory()
    feed = CalendarFeed.objects.create(property=prop, name="Gone", url=f"{base}/missing.ics")
    from stays.services import calendar_feed_sync

    with override_settings(MSP_URL_ALLOWLIST=[base.removeprefix("http://")]):
        result = calendar_feed_sync(feed_id=feed.pk, now=datetime(2026, 11, 1, tzinfo=UTC))
        feed.refresh_from_db()
        assert not result.ok and feed.state == "error"
        assert "404" in feed.last_error and "no longer exists" in feed.last_error
        (folder / "page.ics").write_text("<html>not a calendar</html>")
        CalendarFeed.objects.filter(pk=feed.pk).update(url=f"{base}/page.ics")
        result = calendar_feed_sync(feed_id=feed.pk)
        assert not result.ok and "not an iCal calendar" in result.error
    # Without the allow-list a loopback address is refused before any request is made.
    result = calendar_feed_sync(feed_id=feed.pk)
    assert not result.ok and "private" in result.error
    assert not Reservation.objects.exists()


def _event(*lines: str) -> str:
    return "BEGIN:VEVENT\r\n" + "".join(f"{line}\r\n" for line in lines) + "END:VEVENT\r\n"


# One real booking among events a broken export writes: a period or a bare time where a date
# belongs, a property twice, a duration past year 9999, a date the library cannot read, and a
# UID and summary holding NULs.
BROKEN_EXPORT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    + _event(
        "UID:good-1",
        "SUMMARY:Reserved - Ben",
        "DTSTART;VALUE=DATE:20261201",
        "DTEND;VALUE=DATE:20261203",
    )
    + _event("UID:period", "DTSTART;VALUE=PERIOD:20261201T100000Z/20261202T100000Z")
    + _event("UID:bare-time", "DTSTART;VALUE=TIME:100000", "DTEND;VALUE=TIME:120000")
    + _event("UID:twice", "DTSTART:20261205T100000Z", "DTSTART:20261206T100000Z")
    + _event("UID:end-twice", "DTSTART:20261207T100000Z", "DTEND:20261208T100000Z", "DTEND:X")
    + _event("UID:forever", "DTSTART:20261201T100000Z", "DURATION:P999999999D")
    + _event("UID:last-day", "DTSTART;VALUE=DATE:99991231")
    + _event("UID:unreadable", "DTSTART:2026-12-01", "DTEND:2026-12-02")
    + _event(
        "UID:nul\x00-1",
        "SUMMARY:Reserved - Ca\x00rla",
        "DTSTART;VALUE=DATE:20261210",
        "DTEND;VALUE=DATE:20261212",
    )
    + "END:VCALENDAR\r\n"
)


@pytest.mark.django_db(transaction=True)
def test_a_broken_export_adds_its_readable_bookings_and_never_a_server_error(ical_server, client):
    """A host adds a feed in the portal (its first pull runs in the request): the readable
    bookings become reservations, events with no usable range are left out, text PostgreSQL
    cannot hold is cleaned, and a file that is no calendar is said in plain words."""
    folder, base = ical_server
    (folder / "broken.ics").write_bytes(BROKEN_EXPORT.encode())
    (folder / "garbage.ics").write_bytes(b"\xff\xfe\x00 garbage")
    owner = MembershipFactory(role="owner").user
    prop = PropertyFactory(organization=owner.memberships.get().organization)
    client.force_login(owner)
    with override_settings(MSP_URL_ALLOWLIST=[base.removeprefix("http://")]):
        page = client.post(
            f"/stays/properties/{prop.pk}/calendars/",
            {"name": "Export", "url": f"{base}/broken.ics"},
            follow=True,
        )
        assert page.status_code == 200
        said = [str(m) for m in page.context["messages"]]
        assert said == ["Export: 3 bookings (3 new, 0 cancelled), 0 blocked ranges skipped."]
        stored = dict(Reservation.objects.values_list("external_id", "guest_name"))
        # A property given twice counts by its first: "end-twice" ends on its first DTEND.
        assert stored == {"good-1": "Ben", "end-twice": "", "nul-1": "Carla"}
        page = client.post(
            f"/stays/properties/{prop.pk}/calendars/",
            {"name": "Garbage", "url": f"{base}/garbage.ics"},
            follow=True,
        )
    (message,) = [str(m) for m in page.context["messages"]]
    assert message == (
        "Garbage: The URL answered, but this is not an iCal calendar: its text does not follow "
        "the iCalendar format."
    )
