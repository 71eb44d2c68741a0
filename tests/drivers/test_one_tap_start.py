"""Issue 35 item 19: a signed-in driver with a saved card starts from a charger's page in one
tap (no second payment step) and the session lands in their history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Payment, Rate
from chargers.models import Command
from drivers.models import ClaimedSession
from guest import services as guest_services
from guest.models import GuestSession
from tests.drivers.conftest import save_card, sign_up
from tests.factories import ChargerFactory, PropertyFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def charger(db, monkeypatch):
    prop = PropertyFactory(name="Harbour Hotel", currency="EUR")
    Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.40"),
    )
    sent = []

    def send(charger, action, payload, **kwargs):
        sent.append(action)
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status="answered",
            response={"status": "Accepted"},
        )

    monkeypatch.setattr(guest_services, "send_command_sync", send)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    cp = make_online(ChargerFactory(property=prop, station_id="HB-1"), ("Available", "Available"))
    cp.sent = sent
    return cp


def test_a_driver_starts_with_the_saved_card_in_one_tap(client, charger):
    sign_up(client, "tap@example.com")
    landing = client.get("/s/HB-1").content.decode()
    assert 'id="driver-start"' not in landing  # no saved card yet: the guest form only
    save_card(client)
    landing = client.get("/s/HB-1").content.decode()
    assert "Start charging with Visa ending 4242" in landing
    assert 'action="/driver/start/HB-1/"' in landing
    response = client.post("/driver/start/HB-1/", {"connector": "1"})
    gs = GuestSession.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/s/session/{gs.key}/"
    assert gs.state == GuestSession.State.STARTING and gs.email == "tap@example.com"
    assert charger.sent == ["RemoteStartTransaction"]
    assert Payment.objects.get(pk=gs.payment_id).amount_held > 0  # held with the saved card
    assert ClaimedSession.objects.filter(guest_session=gs, profile__user__email="tap@example.com")
    history = client.get("/driver/sessions/").content.decode()
    assert "HB-1" in history


def test_someone_signed_out_gets_the_guest_form_and_cannot_post_the_driver_start(client, charger):
    landing = client.get("/s/HB-1").content.decode()
    assert 'id="driver-start"' not in landing and 'id="start-form"' in landing
    response = client.post("/driver/start/HB-1/", {"connector": "1"})
    assert response.status_code == 302 and "/driver/account/login/" in response["Location"]
    assert not GuestSession.objects.exists()


def test_a_signed_in_driver_picks_the_port_once_and_may_pay_with_another_card(client, charger):
    """Issue 51 item 6: one port picker when signed in (a charger with two ports); the guest's
    card form only on request."""
    sign_up(client, "ports@example.com")
    save_card(client)
    landing = client.get("/s/HB-1").content.decode()
    assert 'id="driver-start"' in landing and 'id="start-form"' not in landing
    assert landing.count('name="connector"') == 2  # one radio per port, in one form
    assert 'id="other-card"' in landing and 'href="?card=other&amp;c=1"' in landing
    other = client.get("/s/HB-1?card=other&c=1").content.decode()
    assert 'id="start-form"' in other and 'id="driver-start"' not in other
    assert other.count('name="connector"') == 2


def test_a_refused_driver_start_says_why_on_the_chargers_page(client, charger):
    sign_up(client, "why@example.com")
    save_card(client)
    response = client.post("/driver/start/HB-1/", {"connector": ""}, follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == "/s/HB-1"
    assert "Choose a port." in body and 'role="alert"' in body
    assert not GuestSession.objects.exists()
