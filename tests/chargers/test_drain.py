"""Shutdown (chargers.consumers.drain): a charger whose frame is being handled gets its answer and
then 1012; every other charger gets 1012 at once, without waiting for the busy ones."""

import asyncio

import pytest

from chargers import consumers
from chargers.ocpp import v16
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def _connected(station_id: str) -> OcppTestClient:
    client = OcppTestClient(station_id)
    ok, subprotocol = await client.connect()
    assert ok, subprotocol
    return client


async def test_idle_chargers_are_closed_while_a_busy_one_finishes_its_frame(monkeypatch):
    from asgiref.sync import sync_to_async

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
    for client in idle:  # closed while the busy charger's frame is still being handled
        closed = await client.communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 1012}
    assert not draining.done()

    release.set()
    answer = await busy.receive()
    assert answer == [3, "dt-1", {"status": "Accepted"}]  # answered first, then closed
    assert await busy.communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1012}
    assert await asyncio.wait_for(draining, 5) == 3
