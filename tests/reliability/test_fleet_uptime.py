"""Issue 51 item 2: Uptime is in the main navigation beside Power: every charger the user may
read, with its ports' uptime this month (as the per-charger page counts it), a badge below the
target, and its outages on the month's timeline; another organization's chargers are not listed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Connector
from reliability.models import PortEvent
from reliability.services import uptime
from reliability.views.uptime import _month
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _nav(html: str) -> list[str]:
    nav = re.search(r'<nav class="mainnav" id="mainnav" aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav[1])


def test_the_fleet_page_shows_each_chargers_uptime_and_outages(client, charger, host):
    Connector.objects.create(charger=charger, connector_id=1, status="Available")
    now = timezone.now()
    start, end = _month(None)
    for at, state in (
        (start + (now - start) / 4, "Faulted"),
        (now - timedelta(minutes=10), "Available"),
    ):
        PortEvent.objects.create(
            charger=charger, connector_id=1, kind="status", at=at, status=state
        )
    quiet = ChargerFactory(property=charger.property, station_id="CP-QUIET")
    other = ChargerFactory(station_id="CP-THEIRS")
    Connector.objects.create(charger=other, connector_id=1, status="Available")
    client.force_login(host)
    links = _nav(client.get("/").content.decode())
    assert links[links.index("Power") + 1] == "Uptime"
    page = client.get("/uptime/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-current="page">Uptime</a>' in html
    start, end = _month(None)  # the page's month, cut at its own now
    expected = uptime.aggregate(uptime.charger_uptime(charger, start, end)).percent
    assert expected < uptime.TARGET_PERCENT  # faulted for most of the month
    at = html.index('href="/chargers/CP-TEST-1/uptime/')
    row = html[at : html.index("</tr>", at)]
    shown = float(re.search(r"<td data-label=\"Uptime\">([0-9.]+) %", row)[1])
    # The same count as the charger's page (the month may start in the viewer's zone there).
    assert shown == pytest.approx(expected, abs=0.5)
    assert "below 97 %" in row
    assert f'href="/chargers/CP-TEST-1/uptime/?month={start:%Y-%m}"' in html
    assert "Port 1: Faulted" in html
    assert "CP-QUIET" in html and "No port has reported yet" in html
    assert "CP-THEIRS" not in html
    assert quiet.station_id in html


def test_a_month_outside_the_window_is_refused_in_words(client, charger, host):
    client.force_login(host)
    page = client.get("/uptime/?month=9999-12")
    assert page.status_code == 200
    assert "give a month as YYYY-MM" in page.content.decode()
