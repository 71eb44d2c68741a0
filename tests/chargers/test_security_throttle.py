"""The handshake throttle counts failures per (station id, address) and per address, so a
stranger who knows a station id (it is on the QR label) cannot lock the real charger out; and
its memory stays bounded whatever arrives."""

import random
import string

import pytest
from asgiref.sync import sync_to_async

from chargers.connections import handshake
from chargers.connections.handshake_guard import HandshakeGuard, address_key, guard
from tests.chargers.security_helpers import PASSWORD, scope
from tests.factories import ChargerFactory


def test_failures_from_one_address_block_only_that_address():
    g = HandshakeGuard(window_s=60, max_failures=3, max_failures_per_address=5)
    for t in range(3):
        assert not g.blocked(address="192.0.2.1", station_id="CP", now=t)
        g.failed(address="192.0.2.1", station_id="CP", now=t)
    assert g.blocked(address="192.0.2.1", station_id="CP", now=10)
    assert not g.blocked(address="198.51.100.7", station_id="CP", now=10), (
        "the real charger elsewhere"
    )
    assert not g.blocked(address="192.0.2.1", station_id="OTHER", now=10)
    g.failed(address="192.0.2.1", station_id="OTHER", now=11)
    g.failed(address="192.0.2.1", station_id="THIRD", now=12)
    assert g.blocked(address="192.0.2.1", station_id="FOURTH", now=13), (
        "per address, whatever the station"
    )
    assert not g.blocked(address="192.0.2.1", station_id="CP", now=100), "the window passed"


def test_a_success_clears_only_its_own_address():
    g = HandshakeGuard(window_s=60, max_failures=2, max_failures_per_address=100)
    for addr in ("192.0.2.1", "192.0.2.2"):
        g.failed(address=addr, station_id="CP", now=0)
        g.failed(address=addr, station_id="CP", now=1)
    g.succeeded(station_id="CP", address="192.0.2.2")
    assert g.blocked(address="192.0.2.1", station_id="CP", now=2)
    assert not g.blocked(address="192.0.2.2", station_id="CP", now=2)


def test_ipv6_is_counted_per_64():
    assert (
        address_key("2001:db8:1:2:aaaa::1")
        == address_key("2001:db8:1:2:bbbb::2")
        == "2001:db8:1:2::/64"
    )
    assert address_key("::ffff:192.0.2.9") == "192.0.2.9"
    g = HandshakeGuard(window_s=60, max_failures=2, max_failures_per_address=100)
    g.failed(address="2001:db8:1:2::1", station_id="CP", now=0)
    g.failed(address="2001:db8:1:2::2", station_id="CP", now=0)
    assert g.blocked(address="2001:db8:1:2::3", station_id="CP", now=1)


def test_a_flood_of_random_station_ids_leaves_a_bounded_table():
    g = HandshakeGuard(window_s=60, max_failures=10, max_failures_per_address=200, max_keys=1000)
    rng = random.Random(7)
    for n in range(10_000):
        station = "".join(rng.choices(string.ascii_uppercase, k=12))
        g.failed(
            address=f"10.{n % 250}.{rng.randrange(250)}.{rng.randrange(250)}",
            station_id=station,
            now=n / 100,
        )
    assert len(g) <= 1000
    assert all(len(entries) <= 200 for entries in g._failures.values())


def test_old_entries_expire():
    g = HandshakeGuard(window_s=60)
    for n in range(500):
        g.failed(address=f"192.0.2.{n % 200}", station_id=f"S{n}", now=0)
    g.failed(address="198.51.100.1", station_id="LATE", now=1000)
    assert len(g) == 2  # the late pair and its address


@pytest.mark.django_db(transaction=True)
async def test_a_stranger_guessing_cannot_lock_out_the_real_charger():
    await sync_to_async(ChargerFactory)(
        station_id="GUARD-1", security_profile=1, ocpp_password=PASSWORD
    )
    stranger = "192.0.2.66"
    for n in range(30):  # far past the threshold
        with pytest.raises(handshake.Refused) as refused:
            await handshake.admit(
                scope("GUARD-1", address=stranger, password=f"guess-number-{n:06d}xx"), "GUARD-1"
            )
        assert refused.value.status in (401, 429)
    assert guard.blocked(address=stranger, station_id="GUARD-1")
    with pytest.raises(handshake.Refused) as refused:
        await handshake.admit(scope("GUARD-1", address=stranger, password=PASSWORD), "GUARD-1")
    assert refused.value.status == 429, (
        "the guessing address stays throttled, even with the right password"
    )
    charger = await handshake.admit(
        scope("GUARD-1", address="198.51.100.7", password=PASSWORD), "GUARD-1"
    )
    assert charger.station_id == "GUARD-1"


@pytest.mark.django_db(transaction=True)
async def test_ten_thousand_refused_random_ids_from_one_address_stay_bounded():
    for _ in range(10_000):
        station = "".join(random.choices(string.ascii_uppercase + string.digits, k=16))
        with pytest.raises(handshake.Refused):
            await handshake.admit(scope(station, address="192.0.2.200"), station)
    # 200 lookups were refused with 404 and counted; the rest were throttled before any lookup.
    assert len(guard) <= 202
