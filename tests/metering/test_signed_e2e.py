"""End to end, from outside (issue 39 "Done when"): the real server process, chargers over real
websockets whose meters sign their readings with an ECDSA P-256 key (OCMF, SHA-256; the charger
simulator's signing meter, written from the OCA note and the OCMF text), the key registered
through PUT /api/v1/chargers/{station_id}/meter-keys/, the session API over HTTP, the
transparency download, and an OCPI partner (tests/roaming/emsp_stub.py) receiving the CDR.

On 1.6 the signed start comes in its own MeterValues right after StartTransaction and the signed
end in StopTransaction.transactionData; on 2.0.1 as signedMeterValue in the Started and Ended
TransactionEvents. A second session on each charger has one digit of its signed end reading
changed (a faulty or tampered meter).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from billing.models import Rate, SessionCharge
from chargers.management.ocmf_meter import generate_key, public_key_hex
from chargers.management.simulator import make_simulator
from chargers.models import ChargingSession
from roaming.models import Cdr
from tests.bounds import GENEROUS_S
from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, TokenFactory
from tests.roaming.conftest import auth, connected_partner, located
from tests.roaming.emsp_stub import EmspStub

pytestmark = [pytest.mark.e2e]

PASSWORD = "secret-pass-123"
EMSP_CARD = "RFID0001"


def _wait_for(condition, timeout: float = GENEROUS_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


@pytest.fixture
def world(transactional_db, tmp_path, client):
    from tests.factories import OrganizationFactory, PropertyFactory

    org = OrganizationFactory(name="Eichrecht operator")
    prop = PropertyFactory(organization=org, name="Public garage", roaming_enabled=True)
    located(prop)
    user = MembershipFactory(organization=org, role="owner").user
    user.set_password(PASSWORD)
    user.save()
    TokenFactory(uid="CARD-201", organization=org)
    Rate.objects.create(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("19"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    emsp = EmspStub()
    partner = connected_partner(org, base=emsp.base + "/2.2.1", outgoing_token="cpo-calls-stub")
    emsp.cpo_token = partner.outgoing_token
    token = {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": EMSP_CARD,
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
        "issuer": "Stub",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2024-01-01T00:00:00Z",
    }
    response = client.put(
        f"/ocpi/2.2.1/tokens/DE/EMS/{EMSP_CARD}",
        json.dumps(token),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert response.status_code == 201
    site = "https://portal.example"
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
        SITE_URL=site,
    )
    try:
        yield {"prop": prop, "user": user, "server": server, "emsp": emsp, "site": site}
    finally:
        stop_live_server(server)
        emsp.close()


async def _api(server, user) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=server.url, timeout=20)
    answer = await http.post(
        "/api/v1/auth/token/", json={"username": user.username, "password": PASSWORD}
    )
    http.headers["Authorization"] = f"Token {answer.json()['token']}"
    return http


async def _charge(server, station_id: str, protocol: str, key, id_tag: str, **options) -> None:
    charger = make_simulator(
        protocol,
        url=f"{server.ws_url}/ocpp",
        station_id=station_id,
        signing_key=key,
        auto_sessions=False,
        **options,
    )
    await charger.connect()
    try:
        await charger.boot()
        await charger.start(1, id_tag)
        await charger.meter_values(1, seconds=1800)  # 7.4 kW for half an hour: 3.7 kWh
        await charger.stop(1)
    finally:
        await charger.close()


def _session(station_id: str, index: int) -> ChargingSession:
    return ChargingSession.objects.filter(charger__station_id=station_id).order_by("pk")[index]


def _scenario(world, protocol: str, id_tag: str):
    server, user = world["server"], world["user"]
    station = f"SIG-{protocol.replace('.', '')}"
    ChargerFactory(property=world["prop"], station_id=station)
    key = generate_key()

    async def run():
        http = await _api(server, user)
        try:
            registered = await http.put(
                f"/api/v1/chargers/{station}/meter-keys/",
                json={
                    "meter_serial": f"SIM-{station}-1",
                    "public_key": public_key_hex(key),
                    "signing_method": "ECDSA-secp256r1-SHA256",
                },
            )
            assert registered.status_code in (200, 201), registered.text
            # 1.6: the signed start only in its own MeterValues (not repeated at the stop).
            await _charge(server, station, protocol, key, id_tag, signed_start_in_stop=False)
            await _charge(server, station, protocol, key, id_tag, tamper_signed_end=True)
            return (await http.get("/api/v1/sessions/", params={"station_id": station})).json()
        finally:
            await http.aclose()

    listing = asyncio.run(run())
    return station, key, listing


def _verified_session_checks(world, station, key, sessions_by_id):
    good = _session(station, 0)
    shown = sessions_by_id[good.pk]
    signed = shown["signed_meter_values"]
    assert signed["status"] == "verified", signed
    assert signed["text"] == "Signed by the meter: verified"
    start_wh = Decimal(signed["start"]["value_wh"])
    end_wh = Decimal(signed["end"]["value_wh"])
    assert Decimal(signed["energy_wh"]) == end_wh - start_wh == Decimal(3700)
    assert Decimal(shown["energy_kwh"]) * 1000 == end_wh - start_wh
    assert signed["public_key"].upper() == public_key_hex(key)

    # The transparency download: both OCMF records and the key, as the S.A.F.E. software reads it.
    download = httpx.get(world["server"].url + signed["transparency_url"], timeout=20)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(download.content)
    values = root.findall("value")
    assert [v.get("context") for v in values] == ["Transaction.Begin", "Transaction.End"]
    assert {v.get("transactionId") for v in values} == {str(good.pk)}
    records = [v.find("signedData").text for v in values]
    assert records == [signed["start"]["ocmf"], signed["end"]["ocmf"]]
    assert all(r.startswith("OCMF|") for r in records)
    assert {v.find("publicKey").text for v in values} == {public_key_hex(key)}
    assert {v.find("signedData").get("format") for v in values} == {"OCMF"}
    return good, records


def _settlements(station):
    """Billing follows the signature: the verified session is billed its signed energy, the
    tampered one's settlement is held."""
    good, bad = _session(station, 0), _session(station, 1)
    charges = _wait_for(
        lambda: (
            {
                c.session_id: c
                for c in SessionCharge.objects.filter(session__in=[good, bad])
                if c.signature_status
            }
            if SessionCharge.objects.filter(session__in=[good, bad])
            .exclude(signature_status="")
            .count()
            == 2
            else None
        )
    )
    assert charges, "both sessions priced"
    assert (charges[good.pk].energy_source, charges[good.pk].held) == ("signed", False)
    assert charges[good.pk].energy_wh == Decimal(3700)
    assert charges[bad.pk].held and charges[bad.pk].signature_status == "invalid_signature"


def _tampered_session_checks(station, sessions_by_id):
    bad = _session(station, 1)
    signed = sessions_by_id[bad.pk]["signed_meter_values"]
    assert signed["status"] == "invalid_signature", signed
    assert signed["start"]["status"] == "verified"
    assert signed["end"]["status"] == "invalid_signature"
    assert signed["energy_wh"] is None
    assert "not verified" in signed["text"]
    return bad


def test_16_signed_session_is_verified_billed_and_roamed_with_signed_data(world):
    station, key, listing = _scenario(world, "1.6", EMSP_CARD)
    sessions_by_id = {s["id"]: s for s in listing["results"]}
    good, records = _verified_session_checks(world, station, key, sessions_by_id)
    _tampered_session_checks(station, sessions_by_id)
    _settlements(station)

    # The CDR pushed to the OCPI partner carries signed_data with both values.
    assert _wait_for(lambda: Cdr.objects.filter(session=good).exists())
    posts = _wait_for(lambda: world["emsp"].requests_to("cdrs", "POST"))
    cdr = next(p["body"] for p in posts if p["body"]["session_id"] == str(good.pk))
    signed_data = cdr["signed_data"]
    assert signed_data["encoding_method"] == "OCMF"
    assert base64.b64decode(signed_data["public_key"]).hex().upper() == public_key_hex(key)
    assert [v["nature"] for v in signed_data["signed_values"]] == ["Start", "End"]
    assert [v["plain_data"] for v in signed_data["signed_values"]] == records
    assert [base64.b64decode(v["signed_data"]).decode() for v in signed_data["signed_values"]] == (
        records
    )
    assert signed_data["url"].startswith(world["site"] + "/metering/signed/")


def test_201_signed_session_is_verified(world):
    station, key, listing = _scenario(world, "2.0.1", "CARD-201")
    sessions_by_id = {s["id"]: s for s in listing["results"]}
    _verified_session_checks(world, station, key, sessions_by_id)
    _tampered_session_checks(station, sessions_by_id)
    _settlements(station)
