"""SIGTERM with chargers connected and sending: every frame a charger got an answer for is in the
log and the database after the server exits, every socket is closed with 1012 (service
restart), and every connection is recorded as closed. On SQLite (ORM batches) and PostgreSQL
(async COPY)."""

import asyncio
import json
import signal

import pytest
import websockets

from chargers.models import Charger, ChargingSession, MeterValue, OcppMessage
from tests.factories import ChargerFactory, TokenFactory

pytestmark = pytest.mark.e2e

TS = "2026-01-01T10:00:00Z"


async def _drive(server, station_ids: list[str]) -> tuple[list[str], list[int], list[str]]:
    answered: list[str] = []
    meter_values: list[str] = []
    close_codes: list[int] = []
    sending = {station_id: asyncio.Event() for station_id in station_ids}

    async def one(station_id: str):
        ws = await websockets.connect(
            f"{server.ws_url}/ocpp/{station_id}", subprotocols=["ocpp1.6"]
        )

        async def call(uid, action, payload):
            await ws.send(json.dumps([2, uid, action, payload]))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert reply[0] == 3 and reply[1] == uid, reply
            answered.append(uid)
            return reply[2]

        await call(
            f"{station_id}-boot",
            "BootNotification",
            {"chargePointVendor": "T", "chargePointModel": "M"},
        )
        start = await call(
            f"{station_id}-start",
            "StartTransaction",
            {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
        )
        n = 0
        try:
            while True:  # keep sending until the server closes us
                n += 1
                uid = f"{station_id}-mv{n}"
                await call(
                    uid,
                    "MeterValues",
                    {
                        "connectorId": 1,
                        "transactionId": start["transactionId"],
                        "meterValue": [
                            {"timestamp": TS, "sampledValue": [{"value": uid, "unit": "Wh"}]}
                        ],
                    },
                )
                meter_values.append(uid)
                sending[station_id].set()
        except websockets.ConnectionClosed:
            pass
        close_codes.append(ws.close_code)

    async def stop_soon():
        # Once every charger is connected and sending (a meter value of each answered).
        await asyncio.gather(*(event.wait() for event in sending.values()))
        server.process.send_signal(signal.SIGTERM)

    await asyncio.gather(stop_soon(), *(one(sid) for sid in station_ids))
    return answered, close_codes, meter_values


@pytest.mark.django_db(transaction=True)
def test_sigterm_with_chargers_sending_loses_nothing_and_leaves_true_state(live_server_proc):
    chargers = [ChargerFactory(station_id=f"CP-SIGTERM-{n}") for n in range(3)]
    TokenFactory(uid="04A1B2C3", organization=chargers[0].property.organization)
    for charger in chargers[1:]:
        charger.property = chargers[0].property
        charger.save()

    answered, close_codes, meter_values = asyncio.run(
        _drive(live_server_proc, [c.station_id for c in chargers])
    )
    # uvicorn shuts down cleanly, then re-raises the signal it caught: -SIGTERM.
    assert live_server_proc.process.wait(timeout=30) == -signal.SIGTERM

    assert close_codes == [1012, 1012, 1012]  # service restart: reconnect, nothing was cut short
    assert len(meter_values) >= 3  # they really were sending when the signal came
    logged_in = set(
        OcppMessage.objects.filter(direction="in", message_type=2).values_list(
            "unique_id", flat=True
        )
    )
    logged_out = set(
        OcppMessage.objects.filter(direction="out", message_type=3).values_list(
            "unique_id", flat=True
        )
    )
    assert set(answered) <= logged_in
    assert set(answered) <= logged_out
    stored = set(
        MeterValue.objects.filter(session__isnull=False).values_list("raw_value", flat=True)
    )
    assert set(meter_values) <= stored
    assert ChargingSession.objects.filter(status="active").count() == 3
    # Every connection of the stopped process is recorded as closed: nobody shows online.
    assert not Charger.objects.exclude(connection_id="").exists()
    log = open(live_server_proc.log.name).read()
    assert "Drained 3 charger socket(s)" in log or "Traceback" not in log, log[-2000:]
