"""A pong to our websocket ping counts as hearing from the charger (OCPP-J 1.6 §5.3) when no
frame came for a ping interval; right after a frame it writes nothing more. uvicorn's protocol
hands each answered pong to the consumer through the scope (chargers/connections/
uvicorn_protocol.py); the real server's pings are in tests/e2e/test_reconnect.py."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chargers.connections.uvicorn_protocol import PONG_EXTENSION, PongWatch
from chargers.messagelog.log import writer
from chargers.models import Charger
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

BOOT = {"chargePointVendor": "A", "chargePointModel": "B"}


async def _last_seen(charger_id: int):
    await writer.flush(with_last_seen=True)
    return (await Charger.objects.aget(pk=charger_id)).last_seen_at


@pytest.mark.parametrize("interval, heard", [(3600.0, False), (0.0, True)])
async def test_a_pong_is_heard_after_a_silent_ping_interval_only(interval, heard):
    charger = await sync_to_async(ChargerFactory)(station_id=f"PONG-{int(interval)}")
    client = OcppTestClient(charger.station_id)
    watch = PongWatch(interval)
    client.communicator.scope["extensions"] = {PONG_EXTENSION: watch}
    connected, _ = await client.connect()
    assert connected and watch.on_pong is not None
    await client.result("BootNotification", BOOT)
    booted = await _last_seen(charger.pk)
    assert booted is not None

    watch.on_pong()  # the boot came less than `interval` ago (3600 s), or not (0 s)
    after = await _last_seen(charger.pk)
    assert (after > booted) is heard

    await client.close()
    assert watch.on_pong is None  # the socket's consumer is gone
