"""Two None cases typed in issue 50 item 7: a guest session that never got a charging session
still sees another session that held its port, and a receipt at a charger placed at no property
shows times in UTC."""

from datetime import timedelta

from django.utils import timezone

from chargers.models import ChargingSession
from guest.live import finish_note
from guest.models import GuestSession
from guest.receipts import receipt_context
from tests.factories import ChargerFactory


def _finished(charger, **extra):
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        id_tag="GUEST-1",
        **extra,
    )
    GuestSession.objects.filter(pk=gs.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    gs.refresh_from_db()
    return gs


def test_a_guest_session_without_a_charging_session_sees_the_session_that_held_its_port(
    guest_charger,
):
    gs = _finished(guest_charger, finished_at=timezone.now())
    assert gs.charging_session_id is None
    assert finish_note(gs).startswith("No energy reached your car")
    ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=901,
        id_tag="LOCAL-CARD",
        started_at=timezone.now() - timedelta(minutes=5),
        meter_start_wh=0,
    )
    assert finish_note(gs).startswith("Another session was using this port")


def test_a_receipt_at_a_charger_placed_nowhere_is_in_utc(db, site):
    assert receipt_context(_finished(ChargerFactory(property=None)))["tz_name"] == "UTC"
    placed = _finished(ChargerFactory(property=site))
    assert receipt_context(placed)["tz_name"] == "Europe/Amsterdam"
