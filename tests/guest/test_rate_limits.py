"""Per-client rate limits on the Station ID lookup (20/min) and the start (10/min)."""

import pytest

from guest.ratelimit import hit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """Keep every request in one window: a minute boundary mid-test would reset the count."""
    monkeypatch.setattr("guest.ratelimit._clock", lambda: 1_800_000_030.0)


def test_twenty_lookups_a_minute_then_a_friendly_429(client, guest_charger):
    for _ in range(20):
        assert client.get("/s/", {"station_id": "NOPE"}).status_code == 404
    response = client.get("/s/", {"station_id": "HB-Lot-01"})
    assert response.status_code == 429
    assert "Too many tries" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_landing_pages_count_as_lookups(client, guest_charger):
    for _ in range(20):
        client.get("/s/HB-Lot-01")
    assert client.get("/s/HB-Lot-01").status_code == 429


def test_limits_are_per_client(client, guest_charger):
    for _ in range(21):
        client.get("/s/HB-Lot-01", REMOTE_ADDR="10.0.0.1")
    assert client.get("/s/HB-Lot-01", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_ten_starts_a_minute(client, guest_charger):
    for _ in range(10):
        assert client.post("/s/HB-Lot-01/start/", {}).status_code != 429
    assert client.post("/s/HB-Lot-01/start/", {}).status_code == 429


def test_the_window_resets_after_a_minute(db):
    for _ in range(20):
        assert hit("lookup", "1.2.3.4", now=120.0)[0]
    assert not hit("lookup", "1.2.3.4", now=150.0)[0]
    assert hit("lookup", "1.2.3.4", now=181.0)[0]


def test_plain_entry_page_is_not_counted(client, db):
    for _ in range(30):
        assert client.get("/s/").status_code == 200
