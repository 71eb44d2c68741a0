"""A guest who scans a charger's QR code while Redis is down (restarting, a blip) still sees the
page and can start: the per-client limits then count in this process's memory and still hold."""

import pytest

from authorization.models import AuthorizationDecision
from backoffice import shared_cache
from tests.backoffice.dependencies_down import refused_redis_cache
from tests.factories import ChargerFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _redis_down(settings, monkeypatch):
    settings.CACHES = refused_redis_cache()
    # Keep every request in one window: a minute boundary mid-test would reset the count.
    monkeypatch.setattr("guest.ratelimit._clock", lambda: 1_800_000_030.0)
    yield
    shared_cache.forget_failure()


def test_the_qr_landing_page_shows_the_price_and_the_start_form(client, guest_charger, rate):
    response = client.get(f"/s/{guest_charger.station_id}", REMOTE_ADDR="10.9.0.1")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Continue to payment" in body and "EUR 0.40 / kWh" in body


def test_the_lookup_limit_still_holds_within_the_process(client, guest_charger):
    for _ in range(20):
        assert client.get("/s/", {"station_id": "NOPE"}, REMOTE_ADDR="10.9.0.2").status_code == 404
    response = client.get("/s/HB-Lot-01", REMOTE_ADDR="10.9.0.2")
    assert response.status_code == 429 and "Too many tries" in response.content.decode()
    assert client.get("/s/HB-Lot-01", REMOTE_ADDR="10.9.0.3").status_code == 200


def test_the_start_is_answered_and_limited(client, guest_charger, rate):
    for _ in range(10):
        answer = client.post("/s/HB-Lot-01/start/", {}, REMOTE_ADDR="10.9.0.4")
        assert answer.status_code not in (429, 500, 503)
    assert client.post("/s/HB-Lot-01/start/", {}, REMOTE_ADDR="10.9.0.4").status_code == 429


def test_the_busy_page_port_check_answers(client, guest_charger):
    answer = client.get("/s/HB-Lot-01/ports/", REMOTE_ADDR="10.9.0.5")
    assert answer.status_code == 200 and answer.json()["any_free"] is True


def test_a_charger_closed_to_guests_says_so_and_the_refusal_is_recorded_once(client, site):
    make_online(ChargerFactory(property=site, station_id="NOGUEST-1", guest_charging_enabled=False))
    for _ in range(2):
        answer = client.get("/s/NOGUEST-1", REMOTE_ADDR="10.9.0.6")
        assert answer.status_code == 200
        assert "Not allowed to use this charger" in answer.content.decode()
    # Each visit would add a row for the host to read: still one in this process.
    assert AuthorizationDecision.objects.filter(station_id="NOGUEST-1").count() == 1
