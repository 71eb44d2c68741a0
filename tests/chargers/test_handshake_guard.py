"""Failed handshakes are throttled per address and per station id."""

import pytest
from asgiref.sync import sync_to_async

from chargers.handshake_guard import HandshakeGuard, guard
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient


def test_blocks_after_max_failures_within_the_window_and_forgets_after_it():
    g = HandshakeGuard(window_s=60, max_failures=3, max_failures_per_address=3)
    for t in range(3):
        assert not g.blocked(address="1.2.3.4", station_id="CP", now=t)
        g.failed(address="1.2.3.4", station_id="CP", now=t)
    assert g.blocked(address="1.2.3.4", station_id="CP", now=10)
    assert g.blocked(address="9.9.9.9", station_id="CP", now=10), "per station, whatever the address"
    assert g.blocked(address="1.2.3.4", station_id="OTHER", now=10), "per address, whatever the station"
    assert not g.blocked(address="9.9.9.9", station_id="OTHER", now=10)
    assert not g.blocked(address="1.2.3.4", station_id="CP", now=100)


@pytest.mark.django_db(transaction=True)
async def test_password_guessing_is_throttled_then_the_right_password_still_needs_waiting():
    guard._failures.clear()
    charger = await sync_to_async(ChargerFactory)(station_id="GUARD-1")
    await sync_to_async(charger.set_ocpp_password)("the-right-password-1")
    await charger.asave()
    for n in range(10):
        assert not (await OcppTestClient("GUARD-1", password=f"guess-number-{n:06d}").connect())[0]
    assert guard.blocked(address="127.0.0.1", station_id="GUARD-1")
    assert not guard.blocked(address="127.0.0.1", station_id="NEIGHBOUR"), "one bad charger must not lock out its site"
    assert not (await OcppTestClient("GUARD-1", password="the-right-password-1").connect())[0]
    guard._failures.clear()
    client = OcppTestClient("GUARD-1", password="the-right-password-1")
    assert (await client.connect())[0]
    await client.close()
