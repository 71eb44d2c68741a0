"""End to end, from outside (issue 54's "Done when"): the real server (`manage.py serve`), a
charger over a real websocket, and three independent partners written from the OCPI texts over
real HTTP: a 2.3.0 eMSP and a 2.2.1 eMSP (tests/roaming/emsp_stub.py) and a payment terminal
provider (tests/roaming/ptp_stub.py).

- each eMSP completes the handshake on its version and pulls our locations and tariffs (2.3.0
  with its tax fields); the CDRs of both versions sum to the receipt;
- the 2.2.1 eMSP moves to 2.3.0 by a credentials update, without registering again;
- the PTP pushes a terminal, the operator assigns an EVSE (REST API), the PTP starts a session
  with an authorization reference, the CDR carries our invoice reference, the PTP's financial
  advice confirmation arrives, and the session is billed to no one else.
"""

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import websockets
from django.db import connections
from rest_framework.test import APIClient

from authorization.models import Token
from billing.models import Payment, Rate, SessionCharge
from chargers.models import ChargingSession
from guest.models import GuestSession
from roaming import services
from roaming.models import Cdr, FinancialAdviceConfirmation, LocationProfile, Partner
from tests.conftest import start_live_server, stop_live_server
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    OrganizationFactory,
    PropertyFactory,
    TokenFactory,
)
from tests.roaming import spec
from tests.roaming.emsp_stub import EmspStub
from tests.roaming.ptp_stub import PtpStub

pytestmark = [pytest.mark.e2e]


class NewEmsp(EmspStub):
    """An eMSP that speaks 2.2.1 and 2.3.0."""

    COUNTRY_CODE = "FR"
    PARTY_ID = "NEW"
    NAME = "New Mobility"


def _wait_for(condition, timeout: float):
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


def _price_total(price: dict) -> Decimal:
    """The amount after tax of an OCPI Price, in either version's shape."""
    if "incl_vat" in price:
        return Decimal(str(price["incl_vat"]))
    taxes = sum((Decimal(str(t["amount"])) for t in price.get("taxes") or []), Decimal(0))
    return Decimal(str(price["before_taxes"])) + taxes


def _rfid(party: EmspStub, uid: str) -> dict:
    return {
        "country_code": party.COUNTRY_CODE,
        "party_id": party.PARTY_ID,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{party.COUNTRY_CODE}-{party.PARTY_ID}-{uid}",
        "issuer": party.NAME,
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-11-20T07:00:00Z",
    }


def test_two_versions_and_a_payment_terminal_from_outside(transactional_db, tmp_path, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # this process sends pushes to the stubs too
    org = OrganizationFactory(name="E2E operator")
    owner = MembershipFactory(organization=org, role="owner").user
    public = PropertyFactory(organization=org, name="Fast hub", roaming_enabled=True)
    LocationProfile.objects.create(
        property=public,
        city="Vienna",
        postal_code="1010",
        country="AUT",
        latitude=Decimal("48.208174"),
        longitude=Decimal("16.373819"),
        help_phone="+43 1 234567",
    )
    charger = ChargerFactory(property=public, station_id="E2E-FAST-1")
    Rate.objects.create(
        property=public,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    # A card of the operator's own with the uid the PTP will use: never confused with it.
    own_card = TokenFactory(organization=org, uid="PTP-CARD-0001")
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    settings.SITE_URL = server.url  # the invoice URL we give the PTP (assigned from here)
    versions_url = f"{server.url}/ocpi/versions"
    new_emsp, old_emsp, ptp = NewEmsp(versions=("2.2.1", "2.3.0")), EmspStub(), PtpStub()
    try:
        # 1. Each eMSP registers on the newest version both sides speak.
        partners = {}
        for stub, name in ((new_emsp, "New"), (old_emsp, "Old"), (ptp, "Terminals")):
            partner, token_a = services.partner_invite(organization=org, name=name)
            stub.register_with(versions_url, token_a)
            partner.refresh_from_db()
            partners[name] = partner
        assert (new_emsp.version, partners["New"].version) == ("2.3.0", "2.3.0")
        assert (old_emsp.version, partners["Old"].version) == ("2.2.1", "2.2.1")
        assert (partners["Terminals"].role, partners["Terminals"].version) == ("PTP", "2.3.0")

        # 2. Both pull our locations and tariffs, each in its version's shapes.
        new_locations, _ = new_emsp.get_all("locations")
        old_locations, _ = old_emsp.get_all("locations")
        assert [loc["id"] for loc in new_locations] == [loc["id"] for loc in old_locations]
        assert new_locations[0]["help_phone"] == "+43 1 234567"
        assert "help_phone" not in old_locations[0]
        (new_tariff,), _ = new_emsp.get_all("tariffs")
        (old_tariff,), _ = old_emsp.get_all("tariffs")
        assert new_tariff["tax_included"] == "NO" and "tax_included" not in old_tariff
        assert new_tariff["preauthorize_amount"] > 0
        for tariff in (new_tariff, old_tariff):
            prices = {
                c["type"]: (c["price"], c["vat"]) for c in tariff["elements"][0]["price_components"]
            }
            assert prices == {"FLAT": (1, 21), "ENERGY": (0.35, 21)}
        spec.check_object(
            new_tariff, "mod_tariffs.asciidoc", "mod_tariffs_tariff_object", version="2.3.0"
        )

        async def charge(ws, uid: str, transaction_no: str) -> int:
            start = await _call(
                ws,
                f"t{transaction_no}",
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": uid,
                    "meterStart": 1000,
                    "timestamp": "2026-11-20T08:00:00Z",
                },
            )
            assert start["idTagInfo"]["status"] == "Accepted", start
            await _call(
                ws,
                f"s{transaction_no}",
                "StopTransaction",
                {
                    "transactionId": start["transactionId"],
                    "meterStop": 11000,
                    "timestamp": "2026-11-20T09:00:00Z",
                    "reason": "Local",
                },
            )
            return start["transactionId"]

        async def charger_flow():
            async with websockets.connect(
                f"{server.ws_url}/ocpp/{charger.station_id}", subprotocols=["ocpp1.6"]
            ) as ws:
                await _call(
                    ws,
                    "b",
                    "BootNotification",
                    {"chargePointVendor": "E2E", "chargePointModel": "F"},
                )
                await _call(
                    ws,
                    "st",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
                )
                # 3. Each eMSP's customer charges 10 kWh: a CDR each, both summing to the receipt.
                for stub, uid, n in ((new_emsp, "NEWCARD1", "1"), (old_emsp, "OLDCARD1", "2")):
                    url = stub.cpo_endpoints[("tokens", "RECEIVER")]
                    cc, pid = stub.COUNTRY_CODE, stub.PARTY_ID
                    status, body, _ = await asyncio.to_thread(
                        stub.request, "PUT", f"{url}/{cc}/{pid}/{uid}", _rfid(stub, uid)
                    )
                    assert (status, body["status_code"]) == (201, 1000), body
                    await charge(ws, uid, n)

                # 6. The PTP pushes a terminal; the operator assigns the EVSE (REST API).
                terminal = ptp.terminal(terminal_id="TERM-0001")
                status, body = await asyncio.to_thread(ptp.push_terminal, terminal)
                assert (status, body["status_code"]) == (201, 1000), body
                api = APIClient()
                api.force_authenticate(owner)
                listed = await asyncio.to_thread(api.get, "/api/v1/roaming/terminals/")
                (ours,) = listed.json()["results"]
                patched = await asyncio.to_thread(
                    api.patch,
                    f"/api/v1/roaming/terminals/{ours['id']}/",
                    {"evses": [{"charger": charger.station_id, "connector_id": 1}]},
                    format="json",
                )
                assert patched.status_code == 200, patched.content
                assert patched.json()["assigned"]["evse_uids"] == ["E2E-FAST-1*1"]
                told = await asyncio.to_thread(
                    _wait_for, lambda: ptp.terminals["TERM-0001"].get("evse_uids"), 10
                )
                assert told == ["E2E-FAST-1*1"]
                invoice_base = ptp.terminals["TERM-0001"]["invoice_base_url"]

                # 7. The driver accepts the tariff at the terminal: START_SESSION with a reference.
                start = asyncio.create_task(
                    asyncio.to_thread(
                        ptp.start_session,
                        location_id=str(public.pk),
                        evse_uid="E2E-FAST-1*1",
                        authorization_reference="pp-100100-1948213567",
                    )
                )
                remote = json.loads(await asyncio.wait_for(ws.recv(), 15))
                assert remote[2] == "RemoteStartTransaction", remote
                one_off = remote[3]["idTag"]
                assert one_off != "PTP-CARD-0001" and len(one_off) <= 20
                await ws.send(json.dumps([3, remote[1], {"status": "Accepted"}]))
                status, answer = await start
                assert answer["data"]["result"] == "ACCEPTED", answer
                await charge(ws, one_off, "3")
                return one_off, invoice_base

        one_off, invoice_base = asyncio.run(charger_flow())
        connections.close_all()

        for stub, uid in ((new_emsp, "NEWCARD1"), (old_emsp, "OLDCARD1")):
            (cdr_post,) = _wait_for(lambda stub=stub: stub.requests_to("cdrs", "POST"), 30)
            cdr = cdr_post["body"]
            receipt = SessionCharge.objects.get(session__id_tag=uid)
            # 10 kWh x 0.35 + 1.00 = 4.50, +21% VAT = 5.45: billing's receipt, in both versions.
            assert _price_total(cdr["total_cost"]) == receipt.total == Decimal("5.45")
        assert "before_taxes" in new_emsp.requests_to("cdrs", "POST")[0]["body"]["total_cost"]
        assert "excl_vat" in old_emsp.requests_to("cdrs", "POST")[0]["body"]["total_cost"]

        # 4. The 2.2.1 eMSP moves to 2.3.0 by a credentials update, without registering again.
        old_emsp.versions = ("2.2.1", "2.3.0")
        old_token = old_emsp.our_token_at_cpo
        old_emsp.update_to_newest()
        moved = Partner.objects.get(pk=partners["Old"].pk)
        assert (moved.version, moved.state, moved.registered_at is not None) == (
            "2.3.0",
            "connected",
            True,
        )
        assert old_emsp.request("GET", versions_url, token=old_token)[0] == 401
        (tariff_now,), _ = old_emsp.get_all("tariffs")
        assert tariff_now["tax_included"] == "NO"
        (old_cdr,), _ = old_emsp.get_all("cdrs")
        assert (
            _price_total(old_cdr["total_cost"]) == Decimal("5.45")
            and "before_taxes" in old_cdr["total_cost"]
        )

        # 8. The PTP gets the session's CDR with our invoice reference and its authorization
        # reference; nobody else gets it.
        paid = ChargingSession.objects.get(id_tag=one_off)
        (ptp_cdr_post,) = _wait_for(lambda: ptp.requests_to("cdrs", "POST"), 30)
        ptp_cdr = ptp_cdr_post["body"]
        assert ptp_cdr["authorization_reference"] == "pp-100100-1948213567"
        assert ptp_cdr["invoice_reference_id"]
        assert (
            ptp_cdr["cdr_token"]["uid"] == "PTP-CARD-0001"
            and ptp_cdr["cdr_token"]["party_id"] == "PTP"
        )
        assert ptp_cdr["auth_method"] == "COMMAND"
        assert _price_total(ptp_cdr["total_cost"]) == Decimal("5.45")
        assert Cdr.objects.get(session=paid).partner_id == partners["Terminals"].pk
        for stub in (new_emsp, old_emsp):
            assert all(
                r["body"]["session_id"] != str(paid.pk) for r in stub.requests_to("cdrs", "POST")
            )

        # 9. The PTP captured and confirms it: tied to the session and its CDR; the invoice
        # the terminal links to shows the card payment.
        advice = ptp.financial_advice(
            authorization_reference="pp-100100-1948213567",
            captured=ptp_cdr["total_cost"],
        )
        status, body = ptp.post_financial_advice(advice)
        assert (status, body["status_code"]) == (201, 1000), body
        confirmation = FinancialAdviceConfirmation.objects.get(fac_id=advice["id"])
        assert confirmation.payment.session_id == paid.pk
        assert confirmation.payment.invoice_reference_id == ptp_cdr["invoice_reference_id"]
        assert confirmation.total_incl_tax == Decimal("5.45")
        import urllib.request

        with urllib.request.urlopen(invoice_base + "pp-100100-1948213567", timeout=10) as page:
            html = page.read().decode()
        assert (
            ptp_cdr["invoice_reference_id"] in html and "Mastercard" in html and "EUR 5.45" in html
        )

        # 10. Paid at the terminal only: no card payment, no guest session, not the host's card.
        assert paid.token_id != own_card.pk
        assert not Payment.objects.filter(session=paid).exists()
        assert not GuestSession.objects.filter(charging_session=paid).exists()
        assert not ChargingSession.objects.filter(token=own_card).exists()
        # Its one-off card is spent: it starts nothing again.
        assert _wait_for(lambda: not Token.objects.get(pk=paid.token_id).valid, 10)
        assert ptp.requests_to("sessions", "PUT"), "the PTP follows its session"
    finally:
        new_emsp.close()
        old_emsp.close()
        ptp.close()
        stop_live_server(server)
