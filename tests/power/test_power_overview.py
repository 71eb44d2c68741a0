"""Issue 51 item 2: Power is in the main navigation beside Prices. It opens on every location the
user may read, with its budget, linking to the location's Power page; another organization's
locations are not listed."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from power.models import SiteBudget
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def _nav(html: str) -> list[str]:
    nav = re.search(r'<nav class="mainnav" id="mainnav" aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav[1])


def test_power_is_beside_prices_and_lists_the_locations_with_their_budget(client):
    mine = PropertyFactory(name="Harbour flats")
    plain = PropertyFactory(name="Garden house", organization=mine.organization)
    SiteBudget.objects.create(property=mine, limit_a=Decimal(63), phases=3, policy="priority")
    theirs = PropertyFactory(name="Someone else's")
    SiteBudget.objects.create(property=theirs, limit_a=Decimal(40))
    client.force_login(MembershipFactory(organization=mine.organization, role="viewer").user)
    dashboard = client.get("/").content.decode()
    links = _nav(dashboard)
    assert links[links.index("Prices") + 1] == "Power"
    page = client.get("/power/")
    assert page.status_code == 200
    html = page.content.decode()
    assert _nav(html).count("Power") == 1 and 'aria-current="page">Power</a>' in html
    assert f'href="/locations/{mine.pk}/power/">Harbour flats' in html
    assert "63.0 A × three-phase" in html and "Priority" in html
    assert f'href="/locations/{plain.pk}/power/">Garden house' in html
    assert "No budget set" in html
    assert "Someone else" not in html and f"/locations/{theirs.pk}/" not in html


def test_the_locations_power_page_marks_power_in_the_navigation(client):
    prop = PropertyFactory()
    client.force_login(MembershipFactory(organization=prop.organization, role="owner").user)
    html = client.get(f"/locations/{prop.pk}/power/").content.decode()
    assert 'aria-current="page">Power</a>' in html
