"""End to end, checked from outside (issue 18 "Done when"): an independent iCal server (a real
http.server process) serves a calendar with a TZID booking, an all-day booking and a blocked range;
it is added to a unit through the API of the real server (`manage.py serve`), synced by its task,
and the reservations API lists the bookings. A charger connected over a real websocket is started
by the current booking's code without payment (the decision names the reservation); the later
booking's code (before check-in minus grace) and the code at another unit's charger are refused
with the guest's prompt and the recorded reason. The feed then drops a booking: it is cancelled.
With Redis (one channel layer for both processes) the kWh cap stops the running session remotely.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import time
import zoneinfo
from datetime import date, datetime, timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from authorization.models import AuthorizationDecision
from chargers.management.simulator import SimulatedCharger
from chargers.models import ChargingSession
from guest.models import GuestSession
from stays.models import Reservation, StayPolicy, Unit
from tests.bounds import GENEROUS_S
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "stay-e2e-pass-1"
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def _free_port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


def _ics(now: datetime, *, with_later: bool = True) -> str:
    """The calendar as Airbnb/VRBO export it, dated around `now`."""
    start, end = (
        (now - timedelta(days=1)).astimezone(NEW_YORK),
        (now + timedelta(days=2)).astimezone(NEW_YORK),
    )
    later = now.date() + timedelta(days=10)
    events = [
        # A booking in a named zone, under way now.
        f"BEGIN:VEVENT\r\nDTSTART;TZID=America/New_York:{start:%Y%m%dT%H%M00}\r\n"
        f"DTEND;TZID=America/New_York:{end:%Y%m%dT%H%M00}\r\nUID:vrbo-now-1\r\nSUMMARY:Reserved - Anna Smith\r\n"
        "END:VEVENT\r\n",
        # The owner's blocked days: not a booking.
        f"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:{later + timedelta(days=10):%Y%m%d}\r\n"
        f"DTEND;VALUE=DATE:{later + timedelta(days=12):%Y%m%d}\r\nUID:block-1@airbnb.com\r\n"
        "SUMMARY:Airbnb (Not available)\r\nEND:VEVENT\r\n",
    ]
    if with_later:  # an all-day booking in ten days
        events.append(
            f"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:{later:%Y%m%d}\r\nDTEND;VALUE=DATE:{later + timedelta(days=3):%Y%m%d}\r\n"
            "UID:later-2@airbnb.com\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n"
        )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


@pytest.fixture
def ical_and_live_server(tmp_path):
    folder = tmp_path / "ical"
    folder.mkdir()
    port = _free_port()
    ical = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(folder),
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
    # Staff allow-listed the calendar host (a loopback address is refused otherwise).
    allow = f"127.0.0.1:{port}"
    server = None
    try:  # the calendar server goes too when the live server fails to start
        server = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal", MSP_URL_ALLOWLIST=allow)
        with override_settings(MSP_URL_ALLOWLIST=[allow]):
            yield folder, f"http://{allow}", server
    finally:
        if server is not None:
            stop_live_server(server)
        ical.terminate()
        ical.wait(timeout=5)


def _site():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin1 = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    cabin2 = Unit.objects.create(property=prop, name="Cabin 2", kind="cabin")
    ChargerFactory(property=prop, unit=cabin1, station_id="LAKE-E2E-1", access_mode="private")
    ChargerFactory(property=prop, unit=cabin2, station_id="LAKE-E2E-2", access_mode="private")
    user = UserFactory(username="lake-host@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, role="owner", user=user)
    return prop, cabin1, cabin2


def _api(base: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=20)
    token = http.post(
        "/api/v1/auth/token/", json={"username": "lake-host@example.com", "password": PASSWORD}
    )
    http.headers["Authorization"] = f"Token {token.json()['token']}"
    return http


def _sync(feed_id: int) -> None:
    from stays.tasks import calendar_feed_sync_task

    # The task beat runs. `.result`, not `.get()`: Celery's "no join inside a task" flag is
    # process-global, and an eager task another thread runs at that moment would set it.
    run = calendar_feed_sync_task.apply(args=[feed_id])
    assert run.successful() and run.result is True


def _guest_post(base: str, station_id: str, code: str) -> httpx.Response:
    """What a guest's browser does: open the charger's page, type the code, submit."""
    with httpx.Client(base_url=base, timeout=60) as guest:
        page = guest.get(f"/s/{station_id}")
        assert page.status_code == 200 and "Staying here?" in page.text
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return guest.post(
            f"/s/{station_id}/stay/",
            data={"code": code, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{base}/s/{station_id}"},
        )


async def _connected(base_ws: str, station_id: str) -> SimulatedCharger:
    sim = SimulatedCharger(url=f"{base_ws}/ocpp", station_id=station_id, auto_sessions=False)
    await sim.connect()
    await sim.boot()
    return sim


async def _until(predicate, timeout: float = GENEROUS_S) -> None:
    deadline = time.monotonic() + timeout
    while not await sync_to_async(predicate)():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def test_calendar_bookings_reach_the_api_and_their_codes_start_only_their_units_charger(
    ical_and_live_server,
):
    folder, ical_base, server = ical_and_live_server
    prop, cabin1, _ = _site()
    now = timezone.now()
    (folder / "cabin1.ics").write_text(_ics(now))

    with contextlib.closing(_api(server.url)) as api:
        response = api.post(
            f"/api/v1/properties/{prop.pk}/calendars/",
            json={"name": "Airbnb – Cabin 1", "url": f"{ical_base}/cabin1.ics", "unit": cabin1.pk},
        )
        assert response.status_code == 201, response.text
        feed_id = response.json()["id"]
        _sync(feed_id)
        feed = api.get(f"/api/v1/calendars/{feed_id}/").json()
        assert feed["state"] == "ok" and feed["bookings_seen"] == 2 and feed["blocked_seen"] == 1

        rows = {
            r["external_id"]: r
            for r in api.get("/api/v1/reservations/", params={"unit": cabin1.pk}).json()["results"]
        }
        assert set(rows) == {"vrbo-now-1", "later-2@airbnb.com"}  # the blocked range created none
        anna = rows["vrbo-now-1"]
        start_ny = (now - timedelta(days=1)).astimezone(NEW_YORK).replace(second=0, microsecond=0)
        assert (
            datetime.fromisoformat(anna["check_in"]) == start_ny
            and anna["guest_name"] == "Anna Smith"
        )
        later = rows["later-2@airbnb.com"]
        # All day: the policy's check-in 15:00 in the property's zone (Amsterdam).
        later_day = date.fromisoformat(later["check_in"][:10])
        local_in = datetime.fromisoformat(later["check_in"]).astimezone(
            zoneinfo.ZoneInfo("Europe/Amsterdam")
        )
        assert later_day == now.date() + timedelta(days=10) and (
            local_in.hour,
            local_in.minute,
        ) == (15, 0)
        active = api.get("/api/v1/reservations/", params={"active_at": now.isoformat()}).json()[
            "results"
        ]
        assert [r["external_id"] for r in active] == ["vrbo-now-1"]

        async def at_the_chargers():
            own = await _connected(server.ws_url, "LAKE-E2E-1")
            other = await _connected(server.ws_url, "LAKE-E2E-2")
            try:
                started = await sync_to_async(_guest_post)(
                    server.url, "LAKE-E2E-1", anna["access_code"]
                )
                assert started.status_code == 302 and "/s/session/" in started.headers["location"]
                await _until(
                    lambda: ChargingSession.objects.filter(
                        charger__station_id="LAKE-E2E-1"
                    ).exists()
                )
                assert [a for a, _ in own.received_calls].count("RemoteStartTransaction") == 1

                early = await sync_to_async(_guest_post)(
                    server.url, "LAKE-E2E-1", later["access_code"]
                )
                assert (
                    early.status_code == 403
                    and "Your reservation allows charging from" in early.text
                )
                elsewhere = await sync_to_async(_guest_post)(
                    server.url, "LAKE-E2E-2", anna["access_code"]
                )
                assert elsewhere.status_code == 403
                assert (
                    "This code is for Cabin 1 and does not start this charger. Your charger: LAKE-E2E-1."
                    in elsewhere.text
                )
                assert "RemoteStartTransaction" not in [a for a, _ in other.received_calls]
            finally:
                await own.close()
                await other.close()

        asyncio.run(at_the_chargers())

        decisions = list(
            AuthorizationDecision.objects.filter(context="remote_app")
            .order_by("id")
            .values_list("station_id", "reason", "reservation__external_id")
        )
        assert decisions == [
            ("LAKE-E2E-1", "accepted_reservation", "vrbo-now-1"),
            ("LAKE-E2E-1", "reservation_not_active", "later-2@airbnb.com"),
            ("LAKE-E2E-2", "reservation_other_unit", "vrbo-now-1"),
        ]
        # No payment step: no hold, no payment.
        gs = GuestSession.objects.get()
        assert (
            gs.payment_id is None
            and gs.amount_held is None
            and gs.token.reservation.external_id == "vrbo-now-1"
        )
        session = ChargingSession.objects.get(charger__station_id="LAKE-E2E-1")
        assert session.token.reservation.external_id == "vrbo-now-1"

        # The later booking disappears from the calendar: its reservation is cancelled.
        (folder / "cabin1.ics").write_text(_ics(now, with_later=False))
        _sync(feed_id)
        listed = api.get("/api/v1/reservations/", params={"unit": cabin1.pk}).json()["results"]
        assert [r["external_id"] for r in listed] == ["vrbo-now-1"]
        cancelled = api.get("/api/v1/reservations/", params={"status": "cancelled"}).json()[
            "results"
        ]
        assert [r["external_id"] for r in cancelled] == ["later-2@airbnb.com"]
        assert api.get(f"/api/v1/calendars/{feed_id}/").json()["cancelled_count"] == 1


@pytest.mark.skipif(
    not settings.REDIS_URL, reason="the test process reaches the server's charger through Redis"
)
def test_the_kwh_cap_stops_the_running_session_over_the_real_socket(live_server_proc):
    from guest.stays import stay_caps_enforce

    prop, cabin1, _ = _site()
    StayPolicy.objects.create(property=prop, kwh_cap=2)
    reservation = Reservation.objects.create(
        property=prop,
        unit=cabin1,
        guest_name="Bo",
        check_in=timezone.now() - timedelta(hours=3),
        check_out=timezone.now() + timedelta(days=1),
    )

    async def scenario():
        own = await _connected(live_server_proc.ws_url, "LAKE-E2E-1")
        try:
            started = await sync_to_async(_guest_post)(
                live_server_proc.url, "LAKE-E2E-1", reservation.access_code
            )
            assert started.status_code == 302
            # The session is committed before the charger reads its StartTransaction answer: wait
            # for both, or the first meter values go out without the transaction, at 0 kW.
            await _until(
                lambda: (
                    ChargingSession.objects.filter(status="active").exists()
                    and own.state[1].transaction_id is not None
                )
            )
            await own.meter_values(1, seconds=600)  # 7.4 kW for 10 minutes: 1.23 kWh
            assert await sync_to_async(stay_caps_enforce)() == []
            await own.meter_values(1, seconds=600)  # 2.47 kWh: over the 2 kWh included
            stopped = await sync_to_async(stay_caps_enforce)()
            assert len(stopped) == 1
            await _until(lambda: ChargingSession.objects.filter(status="completed").exists())
            assert "RemoteStopTransaction" in [a for a, _ in own.received_calls]
        finally:
            await own.close()

    asyncio.run(scenario())
    session = ChargingSession.objects.get()
    assert session.stop_reason == "Remote" and session.token.reservation_id == reservation.pk
    decision = AuthorizationDecision.objects.filter(reason="reservation_cap_reached").get()
    assert decision.reservation_id == reservation.pk and "2 kWh are used up" in decision.message
