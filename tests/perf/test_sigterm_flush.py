"""SIGTERM loses no buffered frame: every frame a charger got an answer for is in the log
after the server process exits, on SQLite (ORM batches) and PostgreSQL (async COPY)."""

import asyncio
import json
import signal

import pytest
import websockets

from chargers.models import ChargingSession, MeterValue, OcppMessage
from tests.factories import ChargerFactory, TokenFactory

pytestmark = pytest.mark.e2e

FRAMES = 300


async def _drive(ws_url: str, station_ids: list[str]) -> list[str]:
    answered = []

    async def one(station_id: str):
        async with websockets.connect(f"{ws_url}/ocpp/{station_id}", subprotocols=["ocpp1.6"]) as ws:
            async def call(uid, action, payload):
                await ws.send(json.dumps([2, uid, action, payload]))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert reply[0] == 3, reply
                answered.append(uid)
                return reply[2]

            await call(f"{station_id}-boot", "BootNotification", {"chargePointVendor": "T", "chargePointModel": "M"})
            start = await call(f"{station_id}-start", "StartTransaction", {
                "connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": "2026-01-01T10:00:00Z"})
            for n in range(FRAMES):
                await call(f"{station_id}-mv{n}", "MeterValues", {
                    "connectorId": 1, "transactionId": start["transactionId"],
                    "meterValue": [{"timestamp": "2026-01-01T10:00:01Z",
                                    "sampledValue": [{"value": str(n), "unit": "Wh"}]}]})
            await call(f"{station_id}-stop", "StopTransaction", {
                "transactionId": start["transactionId"], "meterStop": FRAMES, "timestamp": "2026-01-01T11:00:00Z"})
            # Stay connected: the server is stopped under us with the last frames still buffered.
            return ws

    await asyncio.gather(*(one(sid) for sid in station_ids))
    return answered


@pytest.mark.django_db(transaction=True)
def test_sigterm_loses_no_answered_frame(live_server_proc):
    chargers = [ChargerFactory(station_id=f"CP-SIGTERM-{n}") for n in range(3)]
    TokenFactory(uid="04A1B2C3", organization=chargers[0].property.organization)
    for charger in chargers[1:]:
        charger.property = chargers[0].property
        charger.save()

    answered = asyncio.run(_drive(live_server_proc.ws_url, [c.station_id for c in chargers]))
    live_server_proc.process.send_signal(signal.SIGTERM)
    assert live_server_proc.process.wait(timeout=30) is not None

    assert len(answered) == 3 * (FRAMES + 3)
    logged_in = set(OcppMessage.objects.filter(direction="in", message_type=2).values_list("unique_id", flat=True))
    logged_out = set(OcppMessage.objects.filter(direction="out", message_type=3).values_list("unique_id", flat=True))
    assert set(answered) <= logged_in
    assert set(answered) <= logged_out
    assert MeterValue.objects.count() == 3 * FRAMES
    assert MeterValue.objects.filter(session__isnull=False).count() == 3 * FRAMES
    assert ChargingSession.objects.filter(status="completed").count() == 3
