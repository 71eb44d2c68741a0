"""Support sees units, reservations with the decisions behind them, feed/PMS sync state and moves in admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision
from stays.models import CalendarFeed, ChargerPlacement, Listing, PmsIntegration, Reservation, Unit
from stays.selectors import stay_facts
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client):
    user = UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_admin_pages_show_sync_state_mapping_and_the_reservation_behind_a_decision(client, agent):
    prop = PropertyFactory(name="Lake Cabins")
    unit = Unit.objects.create(property=prop, name="Cabin 1")
    charger = ChargerFactory(property=prop, unit=unit, station_id="LAKE-C1")
    now = timezone.now()
    reservation = Reservation.objects.create(
        property=prop,
        unit=unit,
        guest_name="Anna Smith",
        check_in=now - timedelta(hours=2),
        check_out=now + timedelta(days=1),
    )
    decision = AuthorizationDecision.objects.create(
        uid="S1",
        uid_normalized="S1",
        organization=prop.organization,
        station_id="LAKE-C1",
        context="remote_app",
        status="Accepted",
        reason="accepted_reservation",
        step=13,
        message="ok",
        reservation=reservation,
    )
    CalendarFeed.objects.create(
        property=prop,
        unit=unit,
        name="Airbnb",
        url="https://example.com/a.ics",
        state="error",
        last_error="The calendar server answered 404",
    )
    pms = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="guesty",
        state="error",
        last_error="Guesty returned 401: the API credentials were revoked",
    )
    Listing.objects.create(integration=pms, external_id="L1", name="Lakeside cabin")
    ChargerPlacement.objects.create(
        charger_id=charger.pk, station_id="LAKE-C1", to_property=prop, to_unit=unit
    )

    page = client.get(f"/admin/stays/reservation/{reservation.pk}/change/").content.decode()
    assert (
        f"/admin/authorization/authorizationdecision/{decision.pk}/change/" in page
        and "accepted_reservation" in page
    )
    assert (
        "Anna Smith" in client.get("/admin/authorization/authorizationdecision/").content.decode()
    )
    assert "LAKE-C1" in client.get("/admin/stays/unit/").content.decode()
    assert "404" in client.get("/admin/stays/calendarfeed/").content.decode()
    pms_page = client.get("/admin/stays/pmsintegration/").content.decode()
    assert "the API credentials were revoked" in pms_page
    assert client.get("/admin/stays/chargerplacement/").status_code == 200

    facts = stay_facts(charger, now=now)
    assert facts["unit"] == "Cabin 1" and facts["reservations_now"][0]["guest"] == "Anna Smith"
    assert facts["calendar_feeds"][0]["state"] == "error"
    assert facts["pms_integrations"][0]["unmapped_listings"] == 1
