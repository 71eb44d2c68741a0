"""A charger's license "valid until 30 Nov" runs to midnight on 30 Nov at the charger's location,
for the start decision, the guest page, the charger's page, the dashboard's unlicensed list and
the renewal offer (billing.licenses.offer_for) alike. Asked on the UTC day, a California license ended at 16:00 local on its
last day (guests refused for its last 8 hours) and an Auckland one ran 13 hours into the next."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from authorization.decisions import ChargerFacts, Context, TokenFacts, decide, license_day
from support.receivers import unlicensed_chargers
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.guest.conftest import make_online

LAST_DAY = date(2026, 11, 30)
# 02:00 UTC on 1 December: still 30 November, 18:00, in Los Angeles.
LA_EVENING = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
# 12:00 UTC on 30 November: already 1 December, 01:00, in Auckland.
AUCKLAND_NIGHT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _facts(zone: str) -> ChargerFacts:
    return ChargerFacts(
        station_id="CP-1",
        organization_id=1,
        license_valid_until=LAST_DAY,
        access_mode="public",
        roaming_enabled=False,
        guest_charging_enabled=True,
        timezone=zone,
    )


def _reason(zone: str, now: datetime) -> str:
    card = TokenFacts(uid="AA", organization_id=1)
    return decide(card, _facts(zone), Context.LOCAL, now=now).reason


def test_the_decision_asks_the_day_at_the_chargers_location():
    assert license_day(LA_EVENING, "America/Los_Angeles") == LAST_DAY
    assert _reason("America/Los_Angeles", LA_EVENING) != "license_inactive"
    assert _reason("UTC", LA_EVENING) == "license_inactive"
    assert _reason("Pacific/Auckland", AUCKLAND_NIGHT) == "license_inactive"
    assert _reason("UTC", AUCKLAND_NIGHT) != "license_inactive"
    # A zone no one knows is UTC's day.
    assert license_day(LA_EVENING, "Mars/Olympus") == date(2026, 12, 1)


@pytest.mark.django_db
def test_every_page_that_shows_the_license_agrees_with_the_decision(client):
    site = PropertyFactory(name="Pier 39 Garage", timezone="America/Los_Angeles")
    charger = make_online(
        ChargerFactory(property=site, station_id="SF-1", license_valid_until=LAST_DAY)
    )
    host = MembershipFactory(organization=site.organization, role="owner").user
    with time_machine.travel(LA_EVENING, tick=False):
        assert charger.license_today() == LAST_DAY and charger.license_active()
        assert "License inactive" not in client.get("/s/SF-1").content.decode()
        assert unlicensed_chargers(host, today=LA_EVENING.date()) == []
    with time_machine.travel(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), tick=False):  # 00:00 there
        assert not charger.license_active()
        assert "License inactive" in client.get("/s/SF-1").content.decode()
        assert [c.station_id for c in unlicensed_chargers(host, today=date(2026, 12, 1))] == [
            "SF-1"
        ]
