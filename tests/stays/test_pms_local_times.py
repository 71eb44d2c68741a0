"""A PMS that gives days without a time (Track's arrivalDate/departureDate): each stay gets the
check-in and check-out times of the property its unit belongs to, in that property's zone, also
on the days the clocks change."""

from datetime import UTC, datetime, time

import httpx
import pytest

from stays.models import PmsIntegration, Reservation, StayPolicy, Unit
from stays.services.pms import integration_credentials_set, pms_sync
from tests.factories import PropertyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _track(reservations: list[dict]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/pms/units":
            units = [{"id": 145, "name": "Bay house"}]
            return httpx.Response(200, json={"_embedded": {"units": units}, "page_count": 1})
        if request.url.path == "/api/pms/reservations":
            return httpx.Response(
                200, json={"_embedded": {"reservations": reservations}, "page_count": 1}
            )
        return httpx.Response(404, json={})

    return httpx.Client(transport=httpx.MockTransport(answer))


def _booking(ident: int, arrival: str, departure: str) -> dict:
    return {
        "id": ident,
        "unitId": 145,
        "arrivalDate": arrival,
        "departureDate": departure,
        "status": "Confirmed",
        "updatedAt": "2026-01-20T10:00:00-08:00",
    }


def test_dates_get_the_units_own_property_times_and_zone_across_clock_changes():
    # The organization's first property is in Amsterdam; the booked unit is in San Francisco.
    amsterdam = PropertyFactory(timezone="Europe/Amsterdam")
    bay = PropertyFactory(organization=amsterdam.organization, timezone="America/Los_Angeles")
    StayPolicy.objects.create(property=bay, check_in_time=time(16), check_out_time=time(10))
    Unit.objects.create(property=bay, name="Bay house", external_id="145")
    integration = PmsIntegration.objects.create(
        organization=amsterdam.organization, vendor="track", base_url="https://bay.trackhs.com"
    )
    integration_credentials_set(integration=integration, credentials={"key": "k", "secret": "s"})
    bookings = [
        _booking(1, "2026-07-01", "2026-07-04"),
        # Arrives on the day US clocks go forward, leaves on the day they go back.
        _booking(2, "2026-03-08", "2026-11-01"),
    ]
    assert pms_sync(integration_id=integration.pk, client=_track(bookings), now=NOW).ok
    summer = Reservation.objects.get(external_id="1")
    # Before: 15:00 and 11:00 Amsterdam time (06:00 and 02:00 in San Francisco), so the guest's
    # code stopped working hours before the 10:00 check-out.
    assert (summer.check_in, summer.check_out) == (
        datetime(2026, 7, 1, 23, tzinfo=UTC),  # 16:00 PDT
        datetime(2026, 7, 4, 17, tzinfo=UTC),  # 10:00 PDT
    )
    long_stay = Reservation.objects.get(external_id="2")
    assert (long_stay.check_in, long_stay.check_out) == (
        datetime(2026, 3, 8, 23, tzinfo=UTC),  # 16:00 PDT, the first day of summer time
        datetime(2026, 11, 1, 18, tzinfo=UTC),  # 10:00 PST, the first day of winter time
    )


def test_the_guests_email_gives_check_in_and_check_out_in_the_propertys_time(settings):
    from django.core import mail

    from stays.services import reservation_send_code

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    prop = PropertyFactory(timezone="Europe/Amsterdam")
    stay = Reservation.objects.create(
        property=prop,
        guest_email="anna@example.com",
        check_in=datetime(2026, 3, 28, 14, tzinfo=UTC),  # 15:00 CET
        check_out=datetime(2026, 3, 30, 9, tzinfo=UTC),  # 11:00 CEST, after the spring change
    )
    assert reservation_send_code(reservation_id=stay.pk)
    (sent,) = mail.outbox
    # Before: "2026-03-28 14:00 UTC" and "2026-03-30 09:00 UTC", an hour and two off the
    # property's clock, in a zone the guest does not live by.
    assert "check-in (28 Mar 2026, 15:00 CET)" in sent.body
    assert "check-out (30 Mar 2026, 11:00 CEST)" in sent.body
