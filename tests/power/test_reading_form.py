"""Issue 51 item 2: the building meter reading is set from the portal (Power › Building meter
reading), as the API's live reading: amperes or kW, for a while; errors in plain words; viewers
and other organizations change nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from power import services
from power.models import SiteBudget
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(prop):
    services.budget_save(
        property_id=prop.pk,
        limit_a=Decimal(63),
        phases=3,
        voltage=230,
        policy="equal",
        schedule_entries=[],
    )
    return prop


def _as(prop, role: str) -> Client:
    client = Client()
    client.force_login(MembershipFactory(organization=prop.organization, role=role).user)
    return client


def url(prop) -> str:
    return f"/locations/{prop.pk}/power/reading/"


def test_a_manager_types_a_reading_in_kw_and_it_is_in_force(site):
    manager = _as(site, "manager")
    assert 'id="save-reading"' in manager.get(f"/locations/{site.pk}/power/").content.decode()
    response = manager.post(url(site), {"available": "22", "unit": "kW", "minutes": "30"})
    assert response.status_code == 302
    budget = SiteBudget.objects.get(property=site)
    # 22 kW over three phases at 230 V: 31.8 A per phase (rounded down), for 30 minutes.
    assert budget.live_limit_a == Decimal("31.8")
    assert round((budget.live_expires_at - budget.live_at).total_seconds()) == 1800
    page = manager.get(f"/locations/{site.pk}/power/").content.decode()
    assert "31.8 A per phase until" in page
    assert services.budget_in_force(budget, budget.live_at).source == "live"


@pytest.mark.parametrize(
    "data, words",
    [
        ({"available": "-1", "unit": "A", "minutes": "5"}, "greater than or equal to 0"),
        ({"available": "20", "unit": "A", "minutes": "0"}, "greater than or equal to 1"),
        ({"available": "20", "unit": "A", "minutes": "2000"}, "less than or equal to 1440"),
        ({"available": "99999", "unit": "kW", "minutes": "5"}, "more than 10000 A per phase"),
        ({"available": "abc", "unit": "A", "minutes": "5"}, "Enter a number"),
    ],
)
def test_bad_readings_are_refused_in_plain_words(site, data, words):
    response = _as(site, "owner").post(url(site), data)
    assert response.status_code == 400
    assert words in response.content.decode()
    assert SiteBudget.objects.get(property=site).live_limit_a is None


def test_viewers_and_strangers_change_nothing(site):
    data = {"available": "20", "unit": "A", "minutes": "5"}
    viewer = _as(site, "viewer")
    assert 'id="save-reading"' not in viewer.get(f"/locations/{site.pk}/power/").content.decode()
    assert viewer.post(url(site), data).status_code == 403
    stranger = _as(PropertyFactory(), "owner")
    assert stranger.post(url(site), data).status_code == 404
    assert SiteBudget.objects.get(property=site).live_limit_a is None


def test_without_a_budget_the_page_says_to_set_one_first(prop):
    owner = _as(prop, "owner")
    response = owner.post(url(prop), {"available": "20", "unit": "A", "minutes": "5"}, follow=True)
    assert "Set the power budget first" in response.content.decode()
    assert not SiteBudget.objects.filter(property=prop).exists()
