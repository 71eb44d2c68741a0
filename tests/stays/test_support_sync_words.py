"""What the Help panel tells a host or agent about a property's syncs when a dependency fails:
a PMS pull that succeeded with notes (reservations of unmapped listings) is no failure, and a
failing calendar says since when and when it last synced."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from stays.models import CalendarFeed
from stays.services import calendar_feed_sync
from stays.services.pms import pms_sync
from support.assistant.diagnosis import Viewer, diagnose
from support.assistant.topics import Topic
from tests.factories import ChargerFactory, MembershipFactory
from tests.stays.test_pms_cursor import guesty_client, pms_reservation

pytestmark = pytest.mark.django_db


def _facts(charger, user) -> str:
    return "\n".join(
        diagnose(
            Topic.CHARGER_OFFLINE, viewer=Viewer.for_user(user), station_id=charger.station_id
        ).facts
    )


def test_a_pms_pull_with_notes_is_not_called_a_failure(guesty):
    unit = guesty.organization.properties.first().units.first()
    charger = ChargerFactory(property=unit.property, unit=unit, station_id="CABIN-1")
    host = MembershipFactory(organization=guesty.organization, role="owner").user
    unmapped = pms_reservation(7, "2026-11-20T08:00:00.000Z", listingId="L-UNMAPPED")
    assert pms_sync(integration_id=guesty.pk, client=guesty_client([unmapped])).ok

    text = _facts(charger, host)

    # Before: "Guesty sync failed: 1 reservation(s) belong to listings not mapped ..."
    assert "sync failed" not in text
    assert "Guesty synced at" in text and "not mapped to a unit" in text
    assert "below" not in text  # the sync page's words were "map them below"


def test_a_failing_calendar_says_since_when_and_its_last_good_sync(guesty, settings):
    settings.OUTBOUND_URL_ALLOWLIST = ["calendar.example.test"]
    unit = guesty.organization.properties.first().units.first()
    charger = ChargerFactory(property=unit.property, unit=unit, station_id="CABIN-2")
    host = MembershipFactory(organization=guesty.organization, role="owner").user
    feed = CalendarFeed.objects.create(
        property=unit.property, unit=unit, name="Airbnb", url="https://calendar.example.test/a"
    )
    down = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    now = timezone.now()
    calendar_feed_sync(feed_id=feed.pk, client=down, now=now - timedelta(hours=2))
    calendar_feed_sync(feed_id=feed.pk, client=down, now=now)

    text = _facts(charger, host)

    assert (
        "Calendar feed Airbnb (Cabin 1) failed its last sync: The calendar server answered 503"
        in text
    )
    # Before: nothing said it had been failing for two hours, nor that it never synced.
    assert "failing since" in text and "never synced" in text
