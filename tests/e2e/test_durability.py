"""Durability against a real server process: kill -9, a PostgreSQL outage, both at once.

Every StartTransaction, StopTransaction and MeterValues the server acknowledged is in the
database afterwards (docs/ocpp.md, "Durability"). The outage is made with a TCP proxy
between the server and PostgreSQL (tests/tcp_proxy.py), so PostgreSQL keeps serving the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import websockets
from django.conf import settings

from chargers.models import Charger, ChargingSession, MeterValue, OcppMessage
from tests.conftest import _test_database_url, start_live_server, stop_live_server
from tests.factories import ChargerFactory, TokenFactory
from tests.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TS = "2026-11-20T10:00:00Z"
AHEAD = "2030-01-01T11:00:00Z"  # a charger clock years ahead of ours
needs_postgres = pytest.mark.skipif(
    not settings.IS_POSTGRES, reason="the outage is cut between the server and PostgreSQL"
)


class Charger16:
    """A charger written from the OCPP-J text: JSON arrays over a plain websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.acked: list[tuple[str, str, dict, list]] = []  # (unique id, action, payload, reply)

    async def call(self, action: str, payload: dict, timeout: float = 20) -> list:
        self.n += 1
        unique_id = f"{action[:4]}-{self.n}"
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert reply[1] == unique_id, reply
        if reply[0] == 3:
            self.acked.append((unique_id, action, payload, reply))
        return reply


def _meter(tx: int, value: int) -> dict:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": TS, "sampledValue": [{"value": str(value), "unit": "Wh"}]}],
    }


def _setup(station_id: str) -> Charger:
    charger = ChargerFactory(station_id=station_id)
    TokenFactory(uid="04A1B2C3", organization=charger.property.organization)
    return charger


def _proxied_database_url(proxy: CuttableProxy) -> str:
    parts = urlsplit(_test_database_url())
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}"))


def _wait_for(check, timeout: float = 45.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def _assert_acked_are_stored(charger: Charger, acked: list) -> None:
    starts = [
        reply[2]["transactionId"] for _, action, _, reply in acked if action == "StartTransaction"
    ]
    stops = [
        payload["transactionId"] for _, action, payload, _ in acked if action == "StopTransaction"
    ]
    meters = [
        payload["meterValue"][0]["sampledValue"][0]["value"]
        for _, action, payload, _ in acked
        if action == "MeterValues"
    ]
    sessions = {s.transaction_id: s for s in ChargingSession.objects.filter(charger=charger)}
    assert set(starts) <= set(sessions), (starts, list(sessions))
    for tx in stops:
        assert sessions[tx].status == "completed", sessions[tx]
    stored = list(MeterValue.objects.filter(charger=charger).values_list("raw_value", flat=True))
    assert sorted(stored) == sorted(meters), (len(stored), len(meters))  # each exactly once


@needs_postgres
def test_outage_transaction_messages_are_answered_then_replayed_exactly_once(tmp_path):
    charger = _setup("DUR-OUTAGE")
    proxy = CuttableProxy(target_port=int(urlsplit(_test_database_url()).port or 5432))
    server = start_live_server(
        DATABASE_URL=_proxied_database_url(proxy), OCPP_JOURNAL_DIR=tmp_path / "journal"
    )
    try:

        async def scenario() -> Charger16:
            async with websockets.connect(
                f"{server.ws_url}/ocpp/{charger.station_id}", subprotocols=["ocpp1.6"]
            ) as ws:
                cp = Charger16(ws)
                assert (
                    await cp.call(
                        "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
                    )
                )[0] == 3
                tx1 = (
                    await cp.call(
                        "StartTransaction",
                        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
                    )
                )[2]["transactionId"]
                proxy.cut()  # PostgreSQL is gone for the server from here
                for value in range(1, 6):
                    assert (await cp.call("MeterValues", _meter(tx1, value)))[0] == 3
                assert (
                    await cp.call(
                        "StopTransaction",
                        {
                            "transactionId": tx1,
                            "meterStop": 5,
                            "timestamp": "2026-11-20T10:30:00Z",
                            "reason": "Local",
                        },
                    )
                )[0] == 3
                # Its clock runs years ahead: the start's time is replaced by the receive time
                # (chargers.ocpp.clock), which differs between the start and its resend.
                start2 = await cp.call(
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "04A1B2C3",
                        "meterStart": 5,
                        "timestamp": AHEAD,
                    },
                )
                assert start2[0] == 3 and start2[2]["idTagInfo"]["status"] == "Accepted"
                tx2 = start2[2]["transactionId"]
                # The charger resends a start whose answer it lost: same transactionId.
                again = await cp.call(
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "04A1B2C3",
                        "meterStart": 5,
                        "timestamp": AHEAD,
                    },
                )
                assert again[2]["transactionId"] == tx2
                cp.acked.pop()  # the same start, once
                for value in range(6, 9):
                    assert (await cp.call("MeterValues", _meter(tx2, value)))[0] == 3
                assert (
                    await cp.call(
                        "StopTransaction",
                        {"transactionId": tx2, "meterStop": 9, "timestamp": "2030-01-01T11:30:00Z"},
                    )
                )[0] == 3
                assert (
                    await cp.call(
                        "StatusNotification",
                        {
                            "connectorId": 1,
                            "errorCode": "NoError",
                            "status": "Available",
                            "timestamp": TS,
                        },
                    )
                )[0] == 3
                journals = list((tmp_path / "journal").glob("*.journal"))
                assert journals and journals[0].stat().st_size > 0  # answered from the journal
                proxy.restore()
                # Keep the socket until everything is replayed.
                assert await asyncio.to_thread(
                    _wait_for,
                    lambda: (
                        ChargingSession.objects.filter(charger=charger, status="completed").count()
                        == 2
                    ),
                )
                return cp

        cp = asyncio.run(scenario())
        assert _wait_for(lambda: MeterValue.objects.filter(charger=charger).count() == 8)
        _assert_acked_are_stored(charger, cp.acked)
        # The log shows every acknowledged message, with the charger's unique ids.
        assert _wait_for(
            lambda: (
                {u for u, *_ in cp.acked}
                <= set(
                    OcppMessage.objects.filter(charger=charger, direction="in").values_list(
                        "unique_id", flat=True
                    )
                )
            )
        )
        assert (
            ChargingSession.objects.filter(charger=charger).count() == 2
        )  # the resend is no third
        session2 = ChargingSession.objects.get(
            charger=charger, started_at__gt="2026-11-20T10:45:00Z"
        )
        assert (session2.meter_start_wh, session2.meter_stop_wh) == (5, 9)
    finally:
        stop_live_server(server)
        proxy.close()


def test_kill_9_loses_nothing_acknowledged_and_the_next_start_clears_the_connection(tmp_path):
    charger = _setup("DUR-KILL")
    journal_dir = tmp_path / "journal"
    server = start_live_server(OCPP_JOURNAL_DIR=journal_dir)
    try:

        async def scenario() -> Charger16:
            ws = await websockets.connect(
                f"{server.ws_url}/ocpp/{charger.station_id}", subprotocols=["ocpp1.6"]
            )
            cp = Charger16(ws)
            await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            tx = (
                await cp.call(
                    "StartTransaction",
                    {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
                )
            )[2]["transactionId"]
            value = 0
            try:
                while True:
                    value += 1
                    if value == 40:
                        os.kill(server.process.pid, signal.SIGKILL)  # while frames are in flight
                    await cp.call("MeterValues", _meter(tx, value), timeout=5)
            except (websockets.ConnectionClosed, TimeoutError, OSError):
                pass
            return cp

        cp = asyncio.run(scenario())
        server.process.wait(timeout=10)
        assert sum(1 for _, action, *_ in cp.acked if action == "MeterValues") >= 39
        _assert_acked_are_stored(charger, cp.acked)
        # Each acknowledged frame's Logs row is as durable as its data (issue 33 item 7): the
        # kill came right after an answer, before the writer's next batch would have run.
        logged = set(
            OcppMessage.objects.filter(charger=charger, direction="in").values_list(
                "unique_id", flat=True
            )
        )
        assert {unique_id for unique_id, *_ in cp.acked} <= logged, sorted(
            {unique_id for unique_id, *_ in cp.acked} - logged
        )
        assert (
            Charger.objects.get(pk=charger.pk).connection_id != ""
        )  # nobody recorded the disconnect
    finally:
        stop_live_server(server)
    # The next process to start clears the connection the dead one left behind.
    server = start_live_server(OCPP_JOURNAL_DIR=journal_dir)
    try:
        assert _wait_for(lambda: Charger.objects.get(pk=charger.pk).connection_id == "", timeout=20)
    finally:
        stop_live_server(server)


@needs_postgres
def test_kill_9_during_an_outage_the_next_process_replays_the_journal(tmp_path):
    charger = _setup("DUR-KILL-OUTAGE")
    journal_dir = tmp_path / "journal"
    proxy = CuttableProxy(target_port=int(urlsplit(_test_database_url()).port or 5432))
    server = start_live_server(
        DATABASE_URL=_proxied_database_url(proxy), OCPP_JOURNAL_DIR=journal_dir
    )
    try:

        async def scenario() -> Charger16:
            async with websockets.connect(
                f"{server.ws_url}/ocpp/{charger.station_id}", subprotocols=["ocpp1.6"]
            ) as ws:
                cp = Charger16(ws)
                await cp.call(
                    "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
                )
                proxy.cut()
                start = await cp.call(
                    "StartTransaction",
                    {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
                )
                tx = start[2]["transactionId"]
                for value in range(1, 11):
                    assert (await cp.call("MeterValues", _meter(tx, value)))[0] == 3
                assert (
                    await cp.call(
                        "StopTransaction",
                        {"transactionId": tx, "meterStop": 10, "timestamp": "2026-11-20T10:30:00Z"},
                    )
                )[0] == 3
                os.kill(server.process.pid, signal.SIGKILL)
                return cp

        cp = asyncio.run(scenario())
        server.process.wait(timeout=10)
        assert not ChargingSession.objects.filter(
            charger=charger
        ).exists()  # only in the journal yet
    finally:
        stop_live_server(server)
        proxy.close()
    server = start_live_server(OCPP_JOURNAL_DIR=journal_dir)  # database reachable again
    try:
        assert _wait_for(
            lambda: ChargingSession.objects.filter(charger=charger, status="completed").exists()
        )
        assert _wait_for(lambda: MeterValue.objects.filter(charger=charger).count() == 10)
        _assert_acked_are_stored(charger, cp.acked)
        assert not list(journal_dir.glob("*.journal")) or all(
            p.stat().st_size == 0 for p in journal_dir.glob("*.journal")
        )
    finally:
        stop_live_server(server)
