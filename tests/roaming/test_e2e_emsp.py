"""End to end, from outside: the real server (`manage.py serve`), a charger over a real websocket,
and an independent eMSP (tests/roaming/emsp_stub.py, written from the OCPI 2.2.1 text) over real
HTTP, through issue 14's "Done when" list.

The test process also plays Celery beat: a thread runs the periodic roaming sweeps (EVSE status,
deliveries) every half second, as `celery beat` does in production every few seconds.
"""

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import websockets
from django.db import connections

from authorization.models import AuthorizationDecision
from billing.models import Rate, SessionCharge
from chargers.models import ChargingSession
from roaming import services, tasks
from roaming.models import LocationProfile, Partner
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.emsp_stub import EmspStub

pytestmark = [pytest.mark.e2e]


class Beat:
    """Runs the roaming sweeps every `every` seconds in a thread until stopped."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                tasks.evse_status_sweep_task.delay()
                tasks.deliveries_sweep_task.delay()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


def located_in_utrecht(prop):
    LocationProfile.objects.create(
        property=prop,
        city="Utrecht",
        postal_code="3511 AB",
        country="NLD",
        latitude=Decimal("52.090737"),
        longitude=Decimal("5.121420"),
    )


def wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


async def _call(ws, uid, action, payload):
    await ws.send(json.dumps([2, uid, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert reply[0] == 3 and reply[1] == uid, reply
    return reply[2]


def test_an_independent_emsp_roams_on_our_network(transactional_db, tmp_path, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the sweeps in this process call the stub too
    org = OrganizationFactory(name="E2E operator")
    public = PropertyFactory(organization=org, name="Public", roaming_enabled=True)
    located_in_utrecht(public)
    closed = PropertyFactory(organization=org, name="Roaming off", roaming_enabled=False)
    located_in_utrecht(closed)
    ChargerFactory(property=public, station_id="E2E-1")
    ChargerFactory(property=public, station_id="E2E-PRIV", access_mode="private")
    ChargerFactory(property=public, station_id="E2E-GUEST", access_mode="guest")
    ChargerFactory(property=closed, station_id="E2E-CLOSED")
    Rate.objects.create(
        property=public,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    emsp = EmspStub()
    other_emsp = EmspStub()
    beat = None
    versions_url = f"{server.url}/ocpi/versions"
    try:
        # 1. The credentials handshake, both ways.
        partner, token_a = services.partner_invite(organization=org, name="Stub eMSP")
        emsp.register_with(versions_url, token_a)
        partner.refresh_from_db()
        assert partner.state == Partner.State.CONNECTED and (
            partner.country_code,
            partner.party_id,
        ) == ("DE", "EMS")
        other = services.partner_connect(
            organization=OrganizationFactory(),
            name="Other",
            versions_url=other_emsp.versions_url,
            token_a=other_emsp.token_a,
            our_versions_url=versions_url,
        )
        assert other.state == Partner.State.CONNECTED
        assert (
            other_emsp.request("GET", other_emsp.cpo_endpoints[("locations", "SENDER")])[1]["data"]
            == []
        )
        beat = Beat()

        async def charger_flow():
            async with websockets.connect(
                f"{server.ws_url}/ocpp/E2E-1", subprotocols=["ocpp1.6"]
            ) as ws:
                await _call(
                    ws,
                    "b",
                    "BootNotification",
                    {"chargePointVendor": "E2E", "chargePointModel": "C1"},
                )
                await _call(
                    ws,
                    "s1",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
                )

                # 2. It pulls our public locations only, with the EVSE status, page by page.
                items, pages = await asyncio.to_thread(emsp.get_all, "locations", limit=1)
                assert [loc["id"] for loc in items] == [str(public.pk)]
                assert [(e["uid"], e["status"]) for e in items[0]["evses"]] == [
                    ("E2E-1*1", "AVAILABLE")
                ]
                assert pages[0]["X-Total-Count"] == "1"

                # 3. A status change is PATCHed to it within 10 s.
                await _call(
                    ws,
                    "s2",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Unavailable"},
                )
                patch = await asyncio.to_thread(
                    wait_for,
                    lambda: [
                        r
                        for r in emsp.requests_to("locations", "PATCH")
                        if r["body"]["status"] == "INOPERATIVE"
                    ],
                    10,
                )
                assert patch and patch[0]["path"].endswith(f"/locations/NL/EVB/{public.pk}/E2E-1*1")
                await _call(
                    ws,
                    "s3",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
                )

                # 4. It pushes a token, which then starts a session here with the right decision.
                token = {
                    "country_code": "DE",
                    "party_id": "EMS",
                    "uid": "E2ERFID1",
                    "type": "RFID",
                    "contract_id": "DE-EMS-E2E1",
                    "issuer": "Stub",
                    "valid": True,
                    "whitelist": "ALWAYS",
                    "last_updated": "2026-11-20T07:00:00Z",
                }
                status, body, _ = await asyncio.to_thread(
                    emsp.request,
                    "PUT",
                    emsp.cpo_endpoints[("tokens", "RECEIVER")] + "/DE/EMS/E2ERFID1",
                    token,
                )
                assert (status, body["status_code"]) == (201, 1000)
                assert (await _call(ws, "a", "Authorize", {"idTag": "E2ERFID1"}))["idTagInfo"][
                    "status"
                ] == "Accepted"
                start = await _call(
                    ws,
                    "t1",
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "E2ERFID1",
                        "meterStart": 1000,
                        "timestamp": "2026-11-20T08:00:00Z",
                    },
                )
                assert start["idTagInfo"]["status"] == "Accepted"

                # 7. The eMSP is down when the session ends; the CDR arrives when it is back.
                emsp.down = True
                await _call(
                    ws,
                    "t2",
                    "StopTransaction",
                    {
                        "transactionId": start["transactionId"],
                        "meterStop": 11000,
                        "timestamp": "2026-11-20T09:00:00Z",
                        "reason": "Local",
                    },
                )
                await asyncio.sleep(1)
                assert emsp.requests_to("cdrs") == []
                emsp.down = False
                cdrs = await asyncio.to_thread(
                    wait_for, lambda: emsp.requests_to("cdrs", "POST"), 30
                )
                assert len(cdrs) == 1

                # 5. START_SESSION at a location with roaming off: refused, and recorded.
                commands_url = emsp.cpo_endpoints[("commands", "RECEIVER")]
                app_token = {**token, "uid": "E2EAPP01", "type": "APP_USER", "whitelist": "ALLOWED"}
                refused = await asyncio.to_thread(
                    emsp.request,
                    "POST",
                    commands_url + "START_SESSION",
                    {
                        "response_url": f"{emsp.base}/2.2.1/commands/START_SESSION/refused",
                        "token": app_token,
                        "location_id": str(closed.pk),
                    },
                )
                assert refused[1]["data"]["result"] == "REJECTED"

                # 6. START_SESSION starts the charger; the CommandResult reaches its response_url.
                request = asyncio.create_task(
                    asyncio.to_thread(
                        emsp.request,
                        "POST",
                        commands_url + "START_SESSION",
                        {
                            "response_url": f"{emsp.base}/2.2.1/commands/START_SESSION/s1",
                            "token": app_token,
                            "location_id": str(public.pk),
                            "evse_uid": "E2E-1*1",
                            "connector_id": "1",
                        },
                    )
                )
                call = json.loads(await asyncio.wait_for(ws.recv(), 15))
                assert call[2] == "RemoteStartTransaction" and call[3] == {
                    "idTag": "E2EAPP01",
                    "connectorId": 1,
                }
                await ws.send(json.dumps([3, call[1], {"status": "Accepted"}]))
                assert (await request)[1]["data"]["result"] == "ACCEPTED"
                results = await asyncio.to_thread(
                    wait_for, lambda: emsp.requests_to("commands/START_SESSION/s1", "POST"), 10
                )
                assert results[0]["body"]["result"] == "ACCEPTED"
                return cdrs[0]["body"]

        cdr = asyncio.run(charger_flow())

        decision = AuthorizationDecision.objects.filter(
            uid="E2ERFID1", context="start_transaction"
        ).get()
        assert (decision.status, decision.reason) == ("Accepted", "accepted_roaming")
        refusal = AuthorizationDecision.objects.get(uid="E2EAPP01", station_id="E2E-CLOSED")
        assert (refusal.context, refusal.reason) == ("remote_msp", "remote_start_roaming_disabled")
        session = ChargingSession.objects.get(id_tag="E2ERFID1")
        charge = SessionCharge.objects.get(session=session)
        # 10 kWh x 0.35 + 1.00 = 4.50, +21% VAT = 5.45 (billing's own figures).
        assert (
            (
                Decimal(str(cdr["total_cost"]["excl_vat"])),
                Decimal(str(cdr["total_cost"]["incl_vat"])),
            )
            == (charge.subtotal, charge.total)
            == (Decimal("4.50"), Decimal("5.45"))
        )
        assert cdr["session_id"] == str(session.pk) and cdr["total_energy"] == 10
    finally:
        if beat is not None:
            beat.stop()
        emsp.close()
        other_emsp.close()
        stop_live_server(server)
