"""A month with a change of the clocks has 743 or 745 hours, not its wall clock's 744: the
Uptime pages count the hours it really has (a port down all October was shown −0.13 % up, one
down all March 0.13 %) and draw the week lines where those days begin."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine

from chargers.models import Connector
from reliability.models import PortEvent
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

LATER = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def amsterdam(client):
    """A charger of a location in Amsterdam, its owner signed in, on 15 December 2026."""
    with time_machine.travel(LATER, tick=False):
        yield _site(client)


def _site(client):
    prop = PropertyFactory(timezone="Europe/Amsterdam")
    charger = ChargerFactory(property=prop, station_id="CP-AMS-1")
    Connector.objects.create(charger=charger, connector_id=1, status="Faulted")
    client.force_login(MembershipFactory(organization=prop.organization, role="owner").user)
    return charger


def _faulted_since(charger, at: datetime) -> None:
    PortEvent.objects.create(
        charger=charger, connector_id=1, kind="status", at=at, status="Faulted"
    )


@pytest.mark.parametrize(
    ("month", "since", "shown"),
    [
        # From the month's first moment (local midnight) on: 0 % up, not −0.13 % / 0.13 %.
        ("2026-10", datetime(2026, 9, 30, 22, tzinfo=UTC), "0.00"),
        ("2026-03", datetime(2026, 2, 28, 23, tzinfo=UTC), "0.00"),
        # From 3 October 12:00 UTC: up 62 of October's 745 hours (before: 61 of 744, 8.20 %).
        ("2026-10", datetime(2026, 10, 3, 12, tzinfo=UTC), "8.32"),
    ],
)
def test_a_month_with_a_clock_change_counts_the_hours_it_has(
    client, amsterdam, month, since, shown
):
    _faulted_since(amsterdam, since)
    page = client.get(f"/chargers/CP-AMS-1/uptime/?month={month}")
    assert page.status_code == 200
    assert f"Port 1: {shown} % up" in page.content.decode()


def test_the_fleet_pages_week_lines_after_the_change_are_where_those_days_begin(client, amsterdam):
    html = client.get("/uptime/?month=2026-10").content.decode()
    lines = [float(x) for x in re.findall(r'<line x1="([0-9.]+)"', html)]
    # 8, 15, 22 October before the change, 29 October after it: 673 of October's 745 hours in
    # (before: 672 of 744, 90.323 %, an hour early on the timeline).
    assert lines == [
        round(7 * 24 / 745 * 100, 3),
        round(14 * 24 / 745 * 100, 3),
        round(21 * 24 / 745 * 100, 3),
        round((28 * 24 + 1) / 745 * 100, 3),
    ]


def test_interval_records_over_the_autumn_change_are_fifteen_real_minutes_each():
    from zoneinfo import ZoneInfo

    from reliability.outages import intervals

    zone = ZoneInfo("Europe/Amsterdam")
    start, end = datetime(2026, 10, 25, 0, tzinfo=zone), datetime(2026, 10, 25, 6, tzinfo=zone)
    records = intervals([], start, end)
    # Seven real hours (02:00-03:00 happens twice): 28 records, none longer than 15 minutes.
    # Before, the steps were taken on the wall clock: the second 02:00-03:00 had no records.
    assert len(records) == 28
    assert {(r.end - r.start).total_seconds() for r in records} == {900.0}


@pytest.mark.parametrize(
    ("until", "refused"),
    [
        # Noon to noon over the night the clocks go back is 73 hours: one more than a year's cap.
        # Before, the cap was checked on the wall clock (72 hours) and the exclusion was taken.
        ("2026-10-27T12:00", True),
        ("2026-10-27T11:00", False),
    ],
)
def test_planned_maintenance_over_the_autumn_change_is_capped_at_72_real_hours(
    client, amsterdam, until, refused
):
    from reliability.models import Exclusion

    page = client.post(
        "/chargers/CP-AMS-1/uptime/",
        {
            "connector_id": "1",
            "start": "2026-10-24T12:00",
            "end": until,
            "reason": "planned_maintenance",
        },
    )
    if refused:
        assert page.status_code == 400
        assert "at most 72 hours a year per port; 72 hours are left for 2026" in (
            page.content.decode()
        )
        assert not Exclusion.objects.exists()
    else:
        assert page.status_code == 302
        row = Exclusion.objects.get()
        assert (row.end - row.start).total_seconds() == 72 * 3600


def test_an_outage_in_the_repeated_hour_names_each_times_zone(client, amsterdam):
    # 02:30 summer time to 02:15 winter time: 45 minutes, shown before as "02:30:00" to "02:15:00".
    for at, status in (
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Faulted"),
        (datetime(2026, 10, 25, 1, 15, tzinfo=UTC), "Available"),
    ):
        PortEvent.objects.create(
            charger=amsterdam, connector_id=1, kind="status", at=at, status=status
        )
    html = client.get("/chargers/CP-AMS-1/uptime/?month=2026-10").content.decode()
    assert (
        "<tr><td>25 Oct 2026, 02:30:00 CEST</td><td>25 Oct 2026, 02:15:00 CET</td><td>45</td>"
        in html
    )
