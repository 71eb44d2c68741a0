"""Every tab of a charger's page shows the charger's real state in its header (issue 47 item 2:
the Uptime tab said Offline for every online charger, its header rendered without the state).
The tabs are read from the page's own tab bar, so a new tab is covered without a change here."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from chargers.models import Connector
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

BADGE = {"online": "Online", "faulted": "Faulted", "offline": "Offline"}


def header_state(html: str) -> str:
    h1 = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert h1, "no header"
    badges = re.findall(r'class="badge [^"]+">(\w+)</span>', h1[1])
    assert len(badges) == 1, h1[1]
    return badges[0]


def tab_urls(html: str) -> list[str]:
    nav = re.search(r'<nav class="tabs" aria-label="Charger">(.*?)</nav>', html, re.S)
    assert nav
    return re.findall(r'href="([^"]+)"', nav[1])


@pytest.mark.parametrize("state", ["online", "faulted", "offline"])
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_charger_tab_shows_the_chargers_real_state(client, state, version):
    charger = ChargerFactory(ocpp_version=version)
    if state != "offline":
        charger.connection_id = "c0ffee"
        charger.last_seen_at = timezone.now()
        charger.save()
    Connector.objects.create(
        charger=charger, connector_id=1, status="Faulted" if state == "faulted" else "Available"
    )
    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    client.force_login(owner)
    overview = client.get(f"/chargers/{charger.station_id}/")
    assert overview.status_code == 200
    urls = tab_urls(overview.content.decode())
    assert len(urls) >= (10 if version == "2.0.1" else 8)
    seen = {}
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        seen[url] = header_state(page.content.decode())
    assert seen == dict.fromkeys(urls, BADGE[state])
