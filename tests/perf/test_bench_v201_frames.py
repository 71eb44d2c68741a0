"""The bench's 2.0.1 load generator speaks real OCPP 2.0.1: every frame it sends passes the
2.0.1 request schemas the server validates with, in the order of a charging session."""

import asyncio

from bench.load import CHARGERS, Charger201, Stats
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
    assert [a for a, _ in sent] == ["BootNotification", "StatusNotification", "TransactionEvent", "TransactionEvent",
                                    "TransactionEvent", "TransactionEvent", "MeterValues"]
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
