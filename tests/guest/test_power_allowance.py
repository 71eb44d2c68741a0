"""The guest's session page shows the power the shared site budget allows, or its turn
(docs/power.md), and is told at once when that changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import ChargingSession
from guest.live import snapshot
from guest.models import GuestSession
from power import services
from power.models import SiteBudget
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def guest_charging(charger, minutes_ago: int) -> GuestSession:
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=charger.pk,
        id_tag=f"G{charger.pk}",
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        meter_start_wh=0,
    )
    return GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.CHARGING,
        id_tag=session.id_tag,
        charging_session=session,
    )


def test_the_page_shows_the_power_allowed_and_the_turn_of_a_waiting_guest(client, site):
    SiteBudget.objects.create(property=site, limit_a=Decimal(16), phases=3)
    first = guest_charging(ChargerFactory(property=site), minutes_ago=20)
    second = guest_charging(ChargerFactory(property=site), minutes_ago=10)
    third = guest_charging(ChargerFactory(property=site), minutes_ago=5)
    services.recompute(site.pk)
    snap = snapshot(first)
    assert snap["power"] == ("Power allowed: 5.5 kW (8.0 A), shared with the other cars here")
    assert not snap["power_waiting"]
    page = client.get(f"/s/session/{third.key}/").content.decode()
    assert "Waiting for power, you are next" in page
    assert snapshot(third)["power_waiting"]
    assert snapshot(second)["power"].startswith("Power allowed: 5.5 kW")


def test_without_a_budget_the_page_says_nothing_about_power(site):
    gs = guest_charging(ChargerFactory(property=site), minutes_ago=5)
    services.recompute(site.pk)
    assert snapshot(gs)["power"] is None


def test_a_changed_allocation_tells_the_open_page(
    site, monkeypatch, django_capture_on_commit_callbacks
):
    told = []
    monkeypatch.setattr("guest.starts.publish", told.append)
    SiteBudget.objects.create(property=site, limit_a=Decimal(16))
    gs = guest_charging(ChargerFactory(property=site), minutes_ago=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.recompute(site.pk)
    assert told == [gs.pk]
    with django_capture_on_commit_callbacks(execute=True):
        services.recompute(site.pk)  # nothing changed: nothing sent
    assert told == [gs.pk]
