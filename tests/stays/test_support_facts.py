"""Support sees a charger's stays: its property and unit, the reservations using it now, calendar and
PMS sync health, and the reservation behind a refused code (the assistant's facts; guests see none)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision
from stays.models import CalendarFeed, Listing, PmsIntegration, Reservation, Unit
from support.assistant.diagnosis import Viewer, diagnose
from support.assistant.topics import Topic
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    Unit.objects.create(property=prop, name="Cabin 2", kind="cabin")
    charger = ChargerFactory(property=prop, unit=cabin, station_id="LAKE-S1")
    shared = ChargerFactory(property=prop, station_id="LAKE-SHARED")
    now = timezone.now()
    reservation = Reservation.objects.create(
        property=prop,
        unit=cabin,
        guest_name="Anna Smith",
        source="ical",
        check_in=now - timedelta(days=1),
        check_out=now + timedelta(days=1),
    )
    CalendarFeed.objects.create(
        property=prop,
        unit=cabin,
        name="Airbnb",
        url="https://example.com/a.ics",
        state="error",
        last_synced_at=now,
        last_error="The calendar server answered 404: the calendar no longer exists at this URL.",
    )
    integration = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="guesty",
        state="error",
        last_synced_at=now,
        last_error="Guesty returned 401: the API credentials were revoked or are wrong.",
    )
    Listing.objects.create(integration=integration, external_id="L-9", name="Lake cabin 9")
    host = MembershipFactory(organization=prop.organization, role="owner").user
    return prop, charger, shared, reservation, host


def test_the_host_and_agent_see_the_unit_the_stay_and_the_sync_health(site):
    _, charger, shared, reservation, host = site
    facts = diagnose(
        Topic.CHARGER_OFFLINE, viewer=Viewer.for_user(host), station_id="LAKE-S1"
    ).facts
    text = "\n".join(facts)
    assert "Charger LAKE-S1 is at Lake Cabins, unit Cabin 1." in text
    assert "Reservations that may use LAKE-S1 now: Anna Smith (Cabin 1, ical," in text
    assert (
        "Calendar feed Airbnb (Cabin 1) failed its last sync: The calendar server answered 404"
        in text
    )
    assert "Guesty sync failed: Guesty returned 401: the API credentials were revoked" in text
    assert "1 listings are not mapped to a unit" in text
    shared_text = "\n".join(
        diagnose(
            Topic.CHARGER_OFFLINE, viewer=Viewer.for_user(host), station_id="LAKE-SHARED"
        ).facts
    )
    assert (
        "no unit (shared by the property's stays)" in shared_text
        and "The property has 2 units" in shared_text
    )


def test_a_refused_code_names_its_reservation_for_the_host_only(site):
    prop, charger, _, reservation, host = site
    AuthorizationDecision.objects.create(
        uid="SCODE0001",
        uid_normalized="SCODE0001",
        organization=prop.organization,
        station_id="LAKE-S1",
        context="remote_app",
        status="Invalid",
        reason="reservation_not_active",
        step=7,
        message="This reservation does not allow charging now.",
        reservation=reservation,
    )
    host_text = "\n".join(
        diagnose(Topic.NO_PERMISSION, viewer=Viewer.for_user(host), station_id="LAKE-S1").facts
    )
    assert f"(access code of the reservation {reservation})" in host_text
    guest_text = "\n".join(
        diagnose(Topic.NO_PERMISSION, viewer=Viewer(), station_id="LAKE-S1").facts
    )
    assert (
        "Anna Smith" not in guest_text
        and "Guesty" not in guest_text
        and "Cabin 1" not in guest_text
    )
