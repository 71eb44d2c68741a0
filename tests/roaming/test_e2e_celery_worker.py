"""Production topology: the server only queues roaming work in Redis; a real Celery worker sends
the pushes (nothing is sent from the OCPP path)."""

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from billing.models import Rate
from roaming import services
from roaming.models import LocationProfile
from tests.conftest import _test_database_url, start_live_server, stop_live_server
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.emsp_stub import EmspStub

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not settings.REDIS_URL and os.environ.get("REQUIRE_SERVICES") != "true",
        reason="needs Redis as the Celery broker (REDIS_URL); CI runs it",
    ),
]


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


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_a_worker_sends_the_status_push_and_the_cdr_the_server_queued(
    transactional_db, tmp_path, settings
):
    from portal.celery import app

    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    org = OrganizationFactory()
    prop = PropertyFactory(organization=org, roaming_enabled=True)
    LocationProfile.objects.create(
        property=prop,
        city="Utrecht",
        country="NLD",
        latitude=Decimal("52.09"),
        longitude=Decimal("5.12"),
    )
    ChargerFactory(property=prop, station_id="WRK-1")
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.30"),
    )
    emsp = EmspStub()
    env = {"MSP_URL_ALLOWLIST": "127.0.0.1", "CELERY_TASK_ALWAYS_EAGER": "false"}
    server = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal", **env)
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=warning",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=root,
        env={
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "true",
            "CONN_MAX_AGE": "0",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        partner, token_a = services.partner_invite(organization=org, name="Stub")
        emsp.register_with(f"{server.url}/ocpi/versions", token_a)
        token = {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "WRK0001",
            "type": "RFID",
            "contract_id": "C1",
            "issuer": "Stub",
            "valid": True,
            "whitelist": "ALWAYS",
            "last_updated": "2026-11-20T07:00:00Z",
        }
        assert (
            emsp.request(
                "PUT", emsp.cpo_endpoints[("tokens", "RECEIVER")] + "/DE/EMS/WRK0001", token
            )[0]
            == 201
        )

        async def charge():
            async with websockets.connect(
                f"{server.ws_url}/ocpp/WRK-1", subprotocols=["ocpp1.6"]
            ) as ws:
                await _call(
                    ws, "1", "BootNotification", {"chargePointVendor": "W", "chargePointModel": "W"}
                )
                await _call(
                    ws,
                    "2",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
                )
                # The status sweep as beat would send it: through the broker, never in this process.
                app.send_task("roaming.evse_status_sweep")
                assert await asyncio.to_thread(
                    _wait_for, lambda: emsp.requests_to("locations", "PATCH"), 60
                )
                start = await _call(
                    ws,
                    "3",
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "WRK0001",
                        "meterStart": 0,
                        "timestamp": "2026-11-20T08:00:00Z",
                    },
                )
                await _call(
                    ws,
                    "4",
                    "StopTransaction",
                    {
                        "transactionId": start["transactionId"],
                        "meterStop": 5000,
                        "timestamp": "2026-11-20T09:00:00Z",
                        "reason": "Local",
                    },
                )

        asyncio.run(charge())

        assert emsp.requests_to("locations", "PATCH")[0]["body"]["status"] == "AVAILABLE"
        # The CDR: queued by the server when the session ended, sent by the worker.
        assert _wait_for(lambda: emsp.requests_to("cdrs", "POST"), 60)
        assert emsp.requests_to("cdrs", "POST")[0]["body"]["total_cost"] == {
            "excl_vat": 1.5,
            "incl_vat": 1.5,
        }
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        emsp.close()
        stop_live_server(server)
