"""The two-command setup runs the periodic tasks (issue 33 item 13): `manage.py serve` without a
broker runs the beat schedule itself, so a CDR that failed while the partner was down reaches it
once it is back, with nothing else running (no worker, no beat, no sweep in this process)."""

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import websockets

from backoffice.models import SchedulerLease
from billing.models import Rate
from roaming import services
from roaming.models import Delivery, LocationProfile
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.emsp_stub import EmspStub

pytestmark = [pytest.mark.e2e]


async def _call(ws, uid, action, payload):
    await ws.send(json.dumps([2, uid, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert reply[0] == 3 and reply[1] == uid, reply
    return reply[2]


def _wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)
    return condition()


def test_without_a_broker_serve_resends_a_cdr_once_the_partner_is_back(transactional_db, tmp_path):
    org = OrganizationFactory()
    prop = PropertyFactory(organization=org, roaming_enabled=True)
    LocationProfile.objects.create(
        property=prop,
        city="Utrecht",
        country="NLD",
        latitude=Decimal("52.09"),
        longitude=Decimal("5.12"),
    )
    ChargerFactory(property=prop, station_id="BEAT-1")
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.30"),
    )
    emsp = EmspStub()
    # The zero-config shape of `make run`: no Redis, so no broker. The delivery sweep runs every
    # second instead of its 15 s: what is checked is that the server runs it at all (the CDR
    # arrives, no worker or beat beside it), not its period; the wait was that period's.
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        OUTBOUND_URL_ALLOWLIST="127.0.0.1",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        OCPI_DELIVERY_SWEEP_SECONDS=1,
    )
    try:
        partner, token_a = services.partner_invite(organization=org, name="Stub")
        emsp.register_with(f"{server.url}/ocpi/versions", token_a)
        token = {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "BEAT0001",
            "type": "RFID",
            "contract_id": "C1",
            "issuer": "Stub",
            "valid": True,
            "whitelist": "ALWAYS",
            "last_updated": "2026-11-20T07:00:00Z",
        }
        put = emsp.request(
            "PUT", emsp.cpo_endpoints[("tokens", "RECEIVER")] + "/DE/EMS/BEAT0001", token
        )
        assert put[0] == 201

        async def charge():
            async with websockets.connect(
                f"{server.ws_url}/ocpp/BEAT-1", subprotocols=["ocpp1.6"]
            ) as ws:
                await _call(
                    ws, "1", "BootNotification", {"chargePointVendor": "B", "chargePointModel": "B"}
                )
                start = await _call(
                    ws,
                    "2",
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "BEAT0001",
                        "meterStart": 0,
                        "timestamp": "2026-11-20T08:00:00Z",
                    },
                )
                emsp.down = True  # the partner is down when the session ends
                await _call(
                    ws,
                    "3",
                    "StopTransaction",
                    {
                        "transactionId": start["transactionId"],
                        "meterStop": 5000,
                        "timestamp": "2026-11-20T09:00:00Z",
                        "reason": "Local",
                    },
                )

        asyncio.run(charge())
        # The session's last PUT failed (503): the partner's pushes, the CDR among them, wait.
        failed = _wait_for(
            lambda: (
                Delivery.objects.filter(status="pending", attempts__gte=1).exists()
                and Delivery.objects.filter(module="cdrs", status="pending").exists()
            ),
            30,
        )
        assert failed, list(Delivery.objects.values("module", "attempts", "status"))
        assert emsp.requests_to("cdrs") == []
        assert SchedulerLease.objects.filter(name="beat").exists()  # the server runs the beat

        emsp.down = False
        back = time.monotonic()
        assert _wait_for(lambda: emsp.requests_to("cdrs", "POST"), 60), (
            "the CDR did not arrive within 60 s of the partner's return"
        )
        assert emsp.requests_to("cdrs", "POST")[0]["at"] - back < 60
        assert emsp.requests_to("cdrs", "POST")[0]["body"]["total_cost"] == {
            "excl_vat": 1.5,
            "incl_vat": 1.5,
        }
        # The schedule ran in the server (the CDR above); its log is the server's own: kombu's
        # in-memory transport assumes no amqp://localhost, and no run logs a "succeeded" line.
        log = Path(server.log.name).read_text()
        assert "No hostname was supplied" not in log
        assert "succeeded in" not in log
    finally:
        emsp.close()
        stop_live_server(server)
