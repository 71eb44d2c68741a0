"""A charger whose network dropped silently reconnects on its first try (issue 33 item 4).

The old socket is left half-open by a TCP proxy between charger and server (tests/tcp_proxy.py,
`freeze`: nothing passes any more, nobody is told). The reconnect of the same station id opens
with a charger's usual 10 s opening timeout, gets its BootNotification answered, and the server
closes the old socket on its own. Without a reconnect, the unanswered websocket ping reaps it.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from chargers.models import Charger
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory
from tests.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
PING_ONLY_HEARTBEAT_S = 3  # the ping-only charger's heartbeat interval


async def _boot(ws, unique_id: str) -> list:
    await ws.send(json.dumps([2, unique_id, "BootNotification", BOOT]))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def _wait_for(check, timeout: float):
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def _connect(url: str):
    # A charger's opening timeout (the conformance tool's too): the handshake completes within
    # 10 s or the attempt counts as failed. No ping from the client: the server's are the test.
    return websockets.connect(url, subprotocols=["ocpp1.6"], open_timeout=10, ping_interval=None)


def test_a_reconnect_after_a_silent_drop_is_accepted_at_once_and_the_old_socket_closed(tmp_path):
    charger = ChargerFactory(station_id="RECONNECT-1")
    server = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal")
    link = CuttableProxy(target_port=server.port)
    try:

        async def scenario() -> None:
            old = await _connect(f"ws://127.0.0.1:{link.port}/ocpp/{charger.station_id}")
            assert (await _boot(old, "boot-1"))[0] == 3
            link.freeze()  # the network dropped: the old socket is half-open on both ends
            async with _connect(f"{server.ws_url}/ocpp/{charger.station_id}") as new:
                reply = await _boot(new, "boot-2")
                assert reply[0] == 3 and reply[2]["status"] == "Accepted", reply
                # The server closed the old socket (after its close timeout, on its own).
                assert await asyncio.to_thread(_wait_for, lambda: link.closed_by_target, 45)
                await new.send(json.dumps([2, "hb", "Heartbeat", {}]))
                assert json.loads(await asyncio.wait_for(new.recv(), 10))[0] == 3
                # Still the new socket's charger: the old one's late disconnect cleared nothing.
                assert await asyncio.to_thread(
                    lambda: Charger.objects.get(pk=charger.pk).connection_id != ""
                )
            old.transport.abort()

        asyncio.run(scenario())
    finally:
        link.close()
        stop_live_server(server)


def test_a_socket_whose_pings_go_unanswered_is_reaped(tmp_path):
    charger = ChargerFactory(station_id="RECONNECT-2")
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal", WS_PING_INTERVAL_S="1", WS_PING_TIMEOUT_S="1"
    )
    link = CuttableProxy(target_port=server.port)
    try:

        async def scenario() -> None:
            old = await _connect(f"ws://127.0.0.1:{link.port}/ocpp/{charger.station_id}")
            assert (await _boot(old, "boot-1"))[0] == 3
            assert await asyncio.to_thread(
                lambda: Charger.objects.get(pk=charger.pk).connection_id != ""
            )
            link.freeze()
            assert await asyncio.to_thread(_wait_for, lambda: link.closed_by_target, 45)
            # Reaped: the charger is offline.
            assert await asyncio.to_thread(
                _wait_for, lambda: Charger.objects.get(pk=charger.pk).connection_id == "", 15
            )
            old.transport.abort()

        asyncio.run(scenario())
    finally:
        link.close()
        stop_live_server(server)


def test_a_charger_that_only_answers_pings_stays_online(tmp_path):
    """OCPP-J 1.6 §5.3: websocket pings may stand in for most Heartbeats. A charger that sends no
    OCPP frame after its boot but answers every ping is heard from by its pongs: still online
    two heartbeat intervals after its last frame (its commands are sent, not refused as
    offline)."""
    charger = ChargerFactory(station_id="RECONNECT-3")
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        OCPP_HEARTBEAT_INTERVAL=str(PING_ONLY_HEARTBEAT_S),
        # Last-seen times written every second (production: 15 s), so the first write more than
        # two intervals after the boot comes about a second after they end, not at 15 s.
        CHARGER_LAST_SEEN_WRITE_EVERY_S="1",
        WS_PING_INTERVAL_S="1",
        WS_PING_TIMEOUT_S="10",
    )
    try:

        async def scenario() -> None:
            async with _connect(f"{server.ws_url}/ocpp/{charger.station_id}") as ws:
                reply = await _boot(ws, "boot-1")
                assert reply[2]["interval"] == PING_ONLY_HEARTBEAT_S, reply

                def seen() -> Charger | None:
                    row = Charger.objects.get(pk=charger.pk)
                    return row if row.last_seen_at and row.last_boot_at else None

                booted = await asyncio.to_thread(_wait_for, seen, 30)
                assert booted is not None

                # Silent from here on; the client answers the server's pings by itself. Wait for
                # a last-seen time more than two heartbeat intervals after the boot, which only
                # the pongs can have brought.
                def heard_since() -> Charger | None:
                    row = Charger.objects.get(pk=charger.pk)
                    late = row.last_seen_at - booted.last_boot_at
                    return row if late.total_seconds() > 2 * PING_ONLY_HEARTBEAT_S else None

                later = await asyncio.to_thread(_wait_for, heard_since, 60)
                assert later is not None, "no pong was taken as the charger being heard from"
                assert later.is_online()
                assert later.last_heartbeat_at == booted.last_heartbeat_at  # no Heartbeat sent

        asyncio.run(scenario())
    finally:
        stop_live_server(server)
