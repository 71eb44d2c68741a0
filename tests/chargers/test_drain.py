"""Shutdown (chargers.connections.consumer.drain): a frame being handled is answered before its socket is
closed with 1012; from the moment the shutdown starts no socket takes a new frame (it could not
be answered; the charger sends it again after reconnecting), so nobody waits for chargers that
keep sending."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chargers.connections import consumer as consumers
from chargers.handlers import v16
from chargers.messagelog.log import writer
from chargers.models import OcppMessage
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def _connected(station_id: str) -> OcppTestClient:
    client = OcppTestClient(station_id)
    ok, subprotocol = await client.connect()
    assert ok, subprotocol
    return client


async def test_the_frame_in_progress_is_answered_and_new_frames_are_not_taken(monkeypatch):
    await sync_to_async(lambda: [ChargerFactory(station_id=f"CP-DRAIN-{n}") for n in range(3)])()
    busy, *idle = [await _connected(f"CP-DRAIN-{n}") for n in range(3)]
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow_data_transfer(conn, payload, unique_id):
        entered.set()
        await release.wait()
        return {"status": "Accepted"}

    monkeypatch.setitem(v16.HANDLERS, "DataTransfer", slow_data_transfer)
    await busy.send([2, "dt-1", "DataTransfer", {"vendorId": "V"}])
    await asyncio.wait_for(entered.wait(), 5)

    draining = asyncio.create_task(consumers.drain(timeout_s=30))
    await asyncio.sleep(0)
    for n, client in enumerate(idle):  # sent after the shutdown began: not taken
        await client.send([2, f"hb-{n}", "Heartbeat", {}])
    assert await idle[0].communicator.receive_nothing(timeout=0.3)
    assert not draining.done()  # the busy charger's frame is still being handled

    release.set()
    assert await busy.receive() == [3, "dt-1", {"status": "Accepted"}]  # answered first
    assert await asyncio.wait_for(draining, 5) == 3
    for client in (busy, *idle):  # then every socket is closed for a restart
        assert await client.communicator.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": 1012,
        }
    await writer.flush()
    handled = await sync_to_async(
        lambda: set(OcppMessage.objects.values_list("unique_id", flat=True))
    )()
    assert "dt-1" in handled
    assert "hb-0" not in handled and "hb-1" not in handled
