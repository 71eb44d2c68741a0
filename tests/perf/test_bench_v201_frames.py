"""The bench's 2.0.1 load generator speaks real OCPP 2.0.1: every frame it sends passes the
2.0.1 request schemas the server validates with, in the order of a charging session."""

import asyncio
import json
from unittest.mock import patch

from bench.load import CHARGERS, Charger, Charger201, Stats
from chargers.ocpp.protocol201 import REQUEST_VALIDATORS, validate


def test_a_2_0_1_session_from_the_load_generator_is_schema_valid():
    sent: list[tuple[str, dict]] = []
    charger = Charger201("BENCH-00001", "ws://unused", Stats())

    async def call(action: str, payload: dict, *, record: bool = False) -> dict:
        sent.append((action, payload))
        return {"status": "Accepted"}

    charger.call = call  # the frames, not a socket

    async def session() -> None:
        await charger.boot()
        await charger.status("Available")
        await charger.start_transaction()
        await charger.meter()
        await charger.meter()
        await charger.stop_transaction()
        await charger.meter()  # outside a transaction: MeterValues

    asyncio.run(session())
    assert [a for a, _ in sent] == [
        "BootNotification",
        "StatusNotification",
        "TransactionEvent",
        "TransactionEvent",
        "TransactionEvent",
        "TransactionEvent",
        "MeterValues",
    ]
    for action, payload in sent:
        validate(REQUEST_VALIDATORS[action], payload)
    events = [p for a, p in sent if a == "TransactionEvent"]
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Ended"]
    assert [e["seqNo"] for e in events] == [0, 1, 2, 3]
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert len(events[0]["transactionInfo"]["transactionId"]) <= 36
    readings = [e["meterValue"][0]["sampledValue"][0]["value"] for e in events]
    assert readings == sorted(readings) and readings[-1] > readings[0]
    assert CHARGERS["2.0.1"] is Charger201


def test_the_load_generator_answers_a_base_report_request_with_its_report():
    """Our server asks a charger whose device model it lacks for a base report (B07); the bench
    charger sends it like a real one, so only its first boot is a first boot."""
    charger = Charger201("BENCH-00001", "ws://unused", Stats())
    sent: list[list] = []

    class Socket:
        async def send(self, text: str) -> None:
            sent.append(json.loads(text))

    charger.ws = Socket()
    calls: list[tuple[str, dict]] = []

    async def call(self, action: str, payload: dict, *, record: bool = False) -> dict:
        calls.append((action, payload))
        return {"status": "Accepted"}

    async def exchange() -> None:
        await charger._answer(
            [2, "csms-1", "GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"}]
        )
        with patch.object(Charger, "call", call):
            await charger.after_server_call()
            await charger.after_server_call()  # sent once

    asyncio.run(exchange())
    assert sent == [[3, "csms-1", {"status": "Accepted"}]]
    assert [action for action, _ in calls] == ["NotifyReport"]
    report = calls[0][1]
    validate(REQUEST_VALIDATORS["NotifyReport"], report)
    assert (report["requestId"], report["seqNo"], report["tbc"]) == (7, 0, False)
