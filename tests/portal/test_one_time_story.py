"""Issue 35 items 6, 7 and 8: one time zone and one date format per page. Every time a person
sees is in the location's zone with its label (or the viewer's, when a page spans locations),
in lists, details, CSVs (with the offset) and emails; revenue tiles never read "–"."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from backoffice.formatting import csv_datetime, date_text, datetime_text, time_text
from chargers.models import ChargingSession, MeterValue

pytestmark = pytest.mark.django_db

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WINTER = datetime(2026, 11, 24, 7, 48, 11, tzinfo=UTC)  # 08:48:11 CET
SUMMER = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_one_format_names_its_zone_and_csv_carries_the_offset():
    assert datetime_text(WINTER, AMSTERDAM) == "24 Nov 2026, 08:48 CET"
    assert datetime_text(WINTER, AMSTERDAM, seconds=True) == "24 Nov 2026, 08:48:11 CET"
    assert time_text(SUMMER, AMSTERDAM) == "08:00 CEST"
    assert date_text(datetime(2026, 11, 24, 23, 30, tzinfo=UTC), AMSTERDAM) == "25 Nov 2026"
    assert csv_datetime(WINTER, AMSTERDAM) == "2026-11-24T08:48:11+01:00"
    assert datetime_text(WINTER, ZoneInfo("UTC")) == "24 Nov 2026, 07:48 UTC"


@pytest.fixture
def winter_session(site):
    ChargingSession.objects.filter(pk=site.session.pk).update(
        started_at=WINTER, stopped_at=WINTER.replace(hour=8)
    )
    # Its meter values inside it too (the site made them an hour before the real now): the
    # chart's times then never read 07:48 by the clock of the day the test runs.
    for n, value in enumerate(MeterValue.objects.filter(session=site.session).order_by("pk")):
        MeterValue.objects.filter(pk=value.pk).update(
            timestamp=WINTER + timedelta(minutes=n // 2 * 3)
        )
    site.session.refresh_from_db()
    return site.session


def test_session_list_detail_and_csv_tell_the_same_time(client, site, winter_session):
    client.force_login(site.owner)
    listing = client.get(reverse("chargers:session-list")).content.decode()
    assert "24 Nov 2026, 08:48 CET" in listing
    detail = client.get(reverse("chargers:session-detail", args=[winter_session.pk]))
    page = detail.content.decode()
    assert "24 Nov 2026, 08:48:11 CET" in page and "24 Nov 2026, 09:48:11 CET" in page
    assert "07:48" not in listing + page  # no UTC clock anywhere
    # The stop reason in words ("(Local)" read like a time zone), the OCPP code on hover.
    assert "· stopped at the charger" in page and 'title="OCPP: Local"' in page
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(client.get(reverse("chargers:session-export")).streaming_content).decode()
            )
        )
    )
    row = next(r for r in rows if r["transaction_id"] == str(winter_session.transaction_id))
    assert row["started_at"] == "2026-11-24T08:48:11+01:00"
    assert row["time_zone"] == "Europe/Amsterdam"


def test_dashboard_days_in_the_viewers_zone_and_paid_tiles_never_blank(client, site):
    client.force_login(site.owner)
    page = client.get(reverse("backoffice:dashboard")).content.decode()
    assert "Days and times in CET (Europe/Amsterdam)" in page
    tiles = page.split('id="stats"', 1)[1].split("</div>\n<p", 1)[0]
    assert "0.00 EUR" in tiles and "–" not in tiles


def test_each_row_in_its_locations_zone_or_all_in_the_zone_the_viewer_chose(
    client, site, winter_session
):
    from tests.factories import ChargerFactory, PropertyFactory

    london = PropertyFactory(organization=site.org, name="London Mews", timezone="Europe/London")
    ChargingSession.objects.create(
        charger=ChargerFactory(property=london, station_id="LDN-1"),
        connector_id=1,
        transaction_id=99001,
        id_tag="X",
        started_at=WINTER,
        meter_start_wh=0,
    )
    client.force_login(site.owner)
    listing = client.get(reverse("chargers:session-list")).content.decode()
    # The same moment, each in its location's zone, named.
    assert "24 Nov 2026, 08:48 CET" in listing and "24 Nov 2026, 07:48 GMT" in listing
    dashboard = client.get(reverse("backoffice:dashboard")).content.decode()
    assert '<option value="Europe/London">' in dashboard and "Days and times in UTC" in dashboard
    # A zone that is not one of the viewer's locations' (or UTC) is refused.
    client.post(reverse("backoffice:time-zone"), {"zone": "Asia/Tokyo"})
    assert "JST" not in client.get(reverse("chargers:session-list")).content.decode()
    client.post(reverse("backoffice:time-zone"), {"zone": "Europe/London", "next": "/sessions/"})
    listing = client.get(reverse("chargers:session-list")).content.decode()
    assert listing.count("24 Nov 2026, 07:48 GMT") == 2 and "CET" not in listing
    client.post(reverse("backoffice:time-zone"), {"zone": ""})
    listing = client.get(reverse("chargers:session-list")).content.decode()
    assert "24 Nov 2026, 08:48 CET" in listing and "24 Nov 2026, 07:48 GMT" in listing
