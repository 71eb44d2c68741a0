"""Durability of OCPP 2.0.1 against a real server process: during a PostgreSQL outage (cut with a
TCP proxy, tests/tcp_proxy.py) TransactionEvents, MeterValues and StatusNotifications are answered
from the journal and replayed exactly once when the database is back (docs/ocpp.md, "Durability")."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
import websockets

from chargers.models import ChargingSession, MeterValue, OcppMessage, TransactionEvent
from tests.conftest import _test_database_url, start_live_server, stop_live_server
from tests.e2e.test_durability import _proxied_database_url, _setup, _wait_for, needs_postgres
from tests.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Station201:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.acked: list[str] = []

    async def call(self, action: str, payload: dict, timeout: float = 20) -> list:
        self.n += 1
        message_id = f"{action[:6]}-{self.n}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message[0] == 2:  # GetBaseReport after the first boot
                await self.ws.send(json.dumps([3, message[1], {"status": "Accepted"}]))
                continue
            assert message[1] == message_id, message
            if message[0] == 3:
                self.acked.append(message_id)
            return message


def _event(event_type: str, seq_no: int, tx_id: str, minute: int, wh: int, **extra) -> dict:
    timestamp = f"2026-11-20T10:{minute:02d}:00Z"
    payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx_id},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": timestamp,
                "sampledValue": [{"value": wh, "unitOfMeasure": {"unit": "Wh"}}],
            }
        ],
        **extra,
    }
    return payload


@needs_postgres
def test_201_outage_is_answered_from_the_journal_and_replayed_exactly_once(tmp_path):
    charger = _setup("DUR-201")
    proxy = CuttableProxy(target_port=int(urlsplit(_test_database_url()).port or 5432))
    server = start_live_server(
        DATABASE_URL=_proxied_database_url(proxy), OCPP_JOURNAL_DIR=tmp_path / "journal"
    )
    token = {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}
    try:

        async def scenario() -> Station201:
            async with websockets.connect(
                f"{server.ws_url}/ocpp/{charger.station_id}", subprotocols=["ocpp2.0.1"]
            ) as ws:
                cs = Station201(ws)
                boot = await cs.call(
                    "BootNotification",
                    {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
                )
                assert boot[0] == 3
                assert (
                    await cs.call("TransactionEvent", _event("Started", 0, "D-1", 0, 100, **token))
                )[0] == 3
                proxy.cut()  # PostgreSQL is gone for the server from here
                for seq in range(1, 4):
                    assert (
                        await cs.call(
                            "TransactionEvent",
                            _event("Updated", seq, "D-1", seq * 5, 100 + seq * 100),
                        )
                    )[0] == 3
                assert (await cs.call("TransactionEvent", _event("Ended", 4, "D-1", 30, 600)))[
                    0
                ] == 3
                started = await cs.call(
                    "TransactionEvent", _event("Started", 0, "D-2", 40, 600, **token)
                )
                assert started[0] == 3 and started[2] == {"idTokenInfo": {"status": "Accepted"}}
                again = await cs.call(
                    "TransactionEvent", _event("Started", 0, "D-2", 40, 600, **token)
                )
                assert again[0] == 3  # resent (our answer lost): stored once
                meter = {
                    "evseId": 1,
                    "meterValue": [
                        {
                            "timestamp": "2026-11-20T10:41:00Z",
                            "sampledValue": [
                                {
                                    "value": 231,
                                    "measurand": "Voltage",
                                    "unitOfMeasure": {"unit": "V"},
                                }
                            ],
                        }
                    ],
                }
                assert (await cs.call("MeterValues", meter))[0] == 3
                status = {
                    "timestamp": "2026-11-20T10:42:00Z",
                    "connectorStatus": "Occupied",
                    "evseId": 1,
                    "connectorId": 1,
                }
                assert (await cs.call("StatusNotification", status))[0] == 3
                journals = list((tmp_path / "journal").glob("*.journal"))
                assert journals and journals[0].stat().st_size > 0  # answered from the journal
                proxy.restore()
                assert await asyncio.to_thread(
                    _wait_for,
                    lambda: ChargingSession.objects.filter(
                        charger=charger, ocpp_transaction_id="D-2"
                    ).exists(),
                )
                return cs

        cs = asyncio.run(scenario())
        first = ChargingSession.objects.get(charger=charger, ocpp_transaction_id="D-1")
        assert (first.status, first.meter_start_wh, first.meter_stop_wh) == ("completed", 100, 600)
        assert TransactionEvent.objects.filter(charger=charger).count() == 6
        assert (
            MeterValue.objects.filter(
                charger=charger, measurand="Energy.Active.Import.Register"
            ).count()
            == 6
        )
        # The replay goes on after D-2's start (the MeterValues was journaled after it): wait for it.
        assert _wait_for(
            lambda: MeterValue.objects.filter(charger=charger, measurand="Voltage").exists()
        )
        assert MeterValue.objects.filter(charger=charger, measurand="Voltage").count() == 1
        assert _wait_for(
            lambda: (
                set(cs.acked)
                <= set(
                    OcppMessage.objects.filter(charger=charger, direction="in").values_list(
                        "unique_id", flat=True
                    )
                )
            )
        )
    finally:
        stop_live_server(server)
        proxy.close()
