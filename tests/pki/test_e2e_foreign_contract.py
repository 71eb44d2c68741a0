"""End to end, from outside (issue 52 item 4): the real server (`manage.py serve`), a 2.0.1 charger
over a real websocket presenting a car's contract of another network, and that network's eMSP
(tests/roaming/emsp_stub.py, written from the OCPI text) registered through the credentials
handshake over real HTTP, at 2.3.0.

The contract's chain is verified (an MO root installed, revocation asked of a real OCSP
responder); its provider is asked in real time, as OCPI 2.3.0 says for EMAID tokens; the session
is billed to that provider by a CDR pushed to its CDRs Receiver.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import websockets

from billing.models import Rate
from chargers.models import ChargingSession
from pki import services as pki_services
from pki.models import CertificateUse
from roaming import services
from roaming.models import Cdr
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.emsp_stub import EmspStub
from tests.roaming.test_e2e_emsp import Beat, located_in_utrecht, wait_for

from .pkitools import Responder, issue

pytestmark = [pytest.mark.e2e]

EMAID = "DE-EMS-C12345678-9"  # names the stub's party, DE*EMS
# The session's events lie in the past: one more than 10 minutes ahead of our clock is taken at
# its receive time (chargers/ocpp/clock.py). With the events after import time, a run that reached
# this test 17 minutes after importing it saw the Updated 3 minutes ahead (kept) and the Ended
# 23 minutes ahead (replaced, so earlier than the Updated): its 12 kWh session billed as 6.
NOW = datetime.now(UTC) - timedelta(hours=1)


def _ts(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _call(ws, uid: str, action: str, payload: dict) -> dict:
    await ws.send(json.dumps([2, uid, action, payload]))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply[0] == 2:  # a CALL of ours (a check after boot): answered as a charger does
            await ws.send(json.dumps([4, reply[1], "NotSupported", "", {}]))
            continue
        assert reply[0] == 3 and reply[1] == uid, reply
        return reply[2]


def _event(kind: str, seq: int, minutes: float, wh: float, **extra) -> dict:
    return {
        "eventType": kind,
        "timestamp": _ts(minutes),
        "triggerReason": extra.pop("trigger", "MeterValuePeriodic"),
        "seqNo": seq,
        "transactionInfo": {"transactionId": "PNC-1", **extra},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": _ts(minutes),
                "sampledValue": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }


def test_a_foreign_contract_charges_and_is_billed_to_its_provider(transactional_db, tmp_path):
    responder = Responder([]).start()
    mo_root = issue("MO Root", None, ca=True)
    mo_sub = issue("MO Sub-CA", mo_root, ca=True, ocsp_url=responder.url)
    contract = issue(EMAID, mo_sub, ca=False, ocsp_url=responder.url)
    responder.issuers = [mo_root, mo_sub]

    org = OrganizationFactory(name="PnC operator")
    public = PropertyFactory(organization=org, name="Public", roaming_enabled=True)
    located_in_utrecht(public)
    ChargerFactory(property=public, station_id="E2E-PNC")
    Rate.objects.create(
        property=public,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("21"),
        prices_include_tax=True,
    )
    pki_services.root_add(
        organization_id=org.pk, use=CertificateUse.MO, certificate_pem=mo_root.pem
    )
    allow = f"127.0.0.1:{responder.port},127.0.0.1"
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        OUTBOUND_URL_ALLOWLIST=allow,
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    emsp = EmspStub(versions=("2.2.1", "2.3.0"))
    beat = None
    try:
        partner, token_a = services.partner_invite(organization=org, name="Stub eMSP")
        emsp.register_with(f"{server.url}/ocpi/versions", token_a)
        partner.refresh_from_db()
        assert partner.version == "2.3.0"
        beat = Beat()

        async def car_and_charger() -> list[dict]:
            async with websockets.connect(
                f"{server.ws_url}/ocpp/E2E-PNC", subprotocols=["ocpp2.0.1"]
            ) as ws:
                await _call(
                    ws,
                    "b",
                    "BootNotification",
                    {"reason": "PowerUp", "chargingStation": {"model": "P", "vendorName": "V"}},
                )
                token = {"idToken": EMAID, "type": "eMAID"}
                authorized = await _call(
                    ws,
                    "a",
                    "Authorize",
                    {"idToken": token, "certificate": contract.pem + mo_sub.pem},
                )
                started = _event("Started", 0, 0, 0, trigger="Authorized")
                started["idToken"] = token
                answers = [authorized, await _call(ws, "t0", "TransactionEvent", started)]
                await _call(ws, "t1", "TransactionEvent", _event("Updated", 1, 20, 6000))
                ended = _event("Ended", 2, 40, 12000, trigger="EVCommunicationLost")
                ended["transactionInfo"]["stoppedReason"] = "EVDisconnected"
                answers.append(await _call(ws, "t2", "TransactionEvent", ended))
                return answers

        authorized, started, ended = asyncio.run(car_and_charger())
        assert authorized == {
            "idTokenInfo": {"status": "Accepted"},
            "certificateStatus": "Accepted",
        }
        assert started["idTokenInfo"]["status"] == "Accepted"
        # The contract's revocation was asked of its responder, the provider live as EMAID.
        assert len(responder.requests) >= 2
        [asked, *_] = emsp.requests_to("tokens", "POST")
        assert asked["path"].endswith(f"/tokens/{EMAID}/authorize")
        assert asked["query"] == "type=EMAID"

        session = ChargingSession.objects.get(id_tag=EMAID)
        assert session.status == ChargingSession.Status.COMPLETED
        cdr = wait_for(lambda: Cdr.objects.filter(session=session).first(), 30)
        assert cdr is not None and cdr.partner_id == partner.pk
        pushed = wait_for(lambda: emsp.requests_to("cdrs", "POST"), 30)
        assert pushed, "the CDR reached the provider's CDRs Receiver"
        body = pushed[0]["body"]
        assert body["cdr_token"]["uid"] == EMAID and body["cdr_token"]["type"] == "EMAID"
        assert body["auth_method"] == "AUTH_REQUEST"
        assert body["total_energy"] == 12
        # The total the charger was told when it ended is the one billed to the provider.
        total = body["total_cost"]  # a 2.3.0 Price: before taxes, and each tax
        billed = Decimal(str(total["before_taxes"])) + sum(
            (Decimal(str(t["amount"])) for t in total.get("taxes", [])), Decimal(0)
        )
        assert billed == Decimal(str(ended["totalCost"])) > 0
    finally:
        if beat is not None:
            beat.stop()
        emsp.close()
        stop_live_server(server)
        responder.stop()
