"""End to end, the proxy (issue 13, docs/proxy.md): the real server, a charger over a real
websocket, and two upstream central systems written with the `ocpp` package (tests/upstream_csms.py),
one Leader and one follower, each on its own port."""

import asyncio
import base64
import json

import httpx
import pytest
import websockets

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, MeterValue
from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice, ProxyQueuedMessage
from tests.bounds import GENEROUS_S
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory
from tests.upstream_csms import UpstreamCsms


@pytest.fixture
def live_server_proc(transactional_db, tmp_path, settings):
    """The real server, with this test's upstream backoffices (on 127.0.0.1) allow-listed by
    staff: the outbound guard refuses loopback addresses otherwise (backoffice/outbound.py)."""
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal", OUTBOUND_URL_ALLOWLIST="127.0.0.1"
    )
    yield server
    stop_live_server(server)


pytestmark = pytest.mark.e2e

STATION = "PX-001"
PASSWORD = "proxy-e2e-password-01"


def _port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


class Charger:
    """A charger from the OCPP-J text: answers the CALLs it receives, awaits answers to its own."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.answers: dict[str, asyncio.Future] = {}
        self.calls: list[tuple[str, dict]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for text in self.ws:
            frame = json.loads(text)
            if frame[0] == 2:
                self.calls.append((frame[2], frame[3]))
                await self.ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
            elif frame[1] in self.answers:
                self.answers.pop(frame[1]).set_result(frame)

    async def call(self, action, payload, timeout=20):
        self.n += 1
        uid = f"px-{self.n}"
        future = asyncio.get_running_loop().create_future()
        self.answers[uid] = future
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(future, timeout)


def _auth():
    return {"Authorization": "Basic " + base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()}


async def _wait(predicate, timeout=GENEROUS_S, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.1)


def _connected(name):
    async def check():
        return await asyncio.to_thread(
            lambda: Backoffice.objects.filter(
                charger__station_id=STATION, name=name, status="connected"
            ).exists()
        )

    return check


def test_leader_answers_follower_gets_its_own_ids_and_queued_messages(live_server_proc):
    prop = PropertyFactory()
    user = MembershipFactory(organization=prop.organization, role="owner").user
    user.set_password("pw-for-proxy-e2e-1")
    user.save()
    charger = ChargerFactory(
        property=prop, station_id=STATION, security_profile=1, proxy_leader_timeout_s=3
    )
    charger.set_ocpp_password(PASSWORD)
    charger.save()
    TokenFactory(uid="CAFE0001", organization=prop.organization)
    acme_port, beta_port = _port(), _port()
    proxy_services.backoffice_save(
        charger,
        name="Acme CSMS",
        url=f"ws://127.0.0.1:{acme_port}/ocpp",
        role="leader",
        password="acme-secret-1",
    )
    beta = proxy_services.backoffice_save(
        charger,
        name="Beta CSMS",
        url=f"ws://127.0.0.1:{beta_port}/ocpp",
        role="follower",
        password="beta-secret-1",
    )
    base = live_server_proc.url

    async def scenario():
        acme = await UpstreamCsms(
            "Acme",
            port=acme_port,
            password="acme-secret-1",
            tx_base=5001,
            statuses={"ACME-ONLY": "Accepted", "CAFE0001": "Accepted"},
            default_status="Invalid",
            interval=77,
        ).start()
        beta_csms = await UpstreamCsms(
            "Beta", port=beta_port, password="beta-secret-1", tx_base=9001
        ).start()
        async with websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/{STATION}",
            subprotocols=["ocpp1.6"],
            additional_headers=_auth(),
        ) as ws:
            cp = Charger(ws)
            await _wait(_connected("Acme CSMS"), what="Acme link up")
            await _wait(_connected("Beta CSMS"), what="Beta link up")

            boot = await cp.call(
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            assert boot[2]["interval"] == 77  # the Leader's answer, not ours

            # A card only the Leader knows: the charger hears Accepted; we record both verdicts.
            auth = await cp.call("Authorize", {"idTag": "ACME-ONLY"})
            assert auth[2]["idTagInfo"]["status"] == "Accepted"

            start = await cp.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "CAFE0001",
                    "meterStart": 1000,
                    "timestamp": "2026-11-22T10:00:00Z",
                },
            )
            assert start[2]["transactionId"] == 5001  # the Leader's transactionId
            await cp.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": 5001,
                    "meterValue": [
                        {"timestamp": "2026-11-22T10:05:00Z", "sampledValue": [{"value": "1500"}]}
                    ],
                },
            )
            await beta_csms.wait_for(lambda: beta_csms.actions("MeterValues"))
            assert (
                beta_csms.actions("MeterValues")[0]["transaction_id"] == 9001
            )  # its own id substituted
            await acme.wait_for(lambda: acme.actions("MeterValues"))
            assert acme.actions("MeterValues")[0]["transaction_id"] == 5001
            assert beta_csms.actions("Authorize") == [
                {"id_tag": "ACME-ONLY"}
            ]  # every frame reaches followers

            # Backoffices -> charger: the Leader may; the follower may not (not in allowed_actions).
            answer = await acme.remote_start(STATION, "CAFE0001")
            assert answer.status == "Accepted"
            assert ("RemoteStartTransaction", {"idTag": "CAFE0001"}) in cp.calls
            refused = await beta_csms.remote_start(STATION, "CAFE0001")
            assert (
                refused.error_code == "SecurityError"
                and "not allowed through this proxy" in refused.error_description
            )
            assert len([c for c in cp.calls if c[0] == "RemoteStartTransaction"]) == 1

            # ... until the host allows it (API, handled by the server process, which reloads the link).
            async with httpx.AsyncClient(base_url=base, timeout=10) as web:
                token = (
                    await web.post(
                        "/api/v1/auth/token/",
                        json={"username": user.username, "password": "pw-for-proxy-e2e-1"},
                    )
                ).json()["token"]
                r = await web.patch(
                    f"/api/v1/chargers/{STATION}/backoffices/{beta.pk}/",
                    json={"allowed_actions": ["RemoteStartTransaction"]},
                    headers={"Authorization": f"Token {token}"},
                )
                assert r.status_code == 200, r.text
                assert (
                    r.json()["allowed_actions"] == ["RemoteStartTransaction"]
                    and "password" not in r.json()
                )
            await asyncio.sleep(0.5)
            allowed = await beta_csms.remote_start(STATION, "CAFE0001")
            assert allowed.status == "Accepted"

            # The follower goes away: charging goes on; its transaction messages wait, in order.
            await beta_csms.stop()
            await cp.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": 5001,
                    "meterValue": [
                        {"timestamp": "2026-11-22T10:10:00Z", "sampledValue": [{"value": "2500"}]}
                    ],
                },
            )
            stop = await cp.call(
                "StopTransaction",
                {
                    "transactionId": 5001,
                    "meterStop": 3000,
                    "timestamp": "2026-11-22T10:20:00Z",
                    "idTag": "CAFE0001",
                },
            )
            assert stop[0] == 3
            await _wait(
                lambda: asyncio.to_thread(
                    lambda: ProxyQueuedMessage.objects.filter(backoffice=beta).count() >= 2
                ),
                what="queued for Beta",
            )
            beta_csms = await UpstreamCsms(
                "Beta", port=beta_port, password="beta-secret-1", tx_base=9500
            ).start()
            await beta_csms.wait_for(lambda: beta_csms.actions("StopTransaction"), timeout=30)
            assert [
                a for a, _ in beta_csms.received if a in ("MeterValues", "StopTransaction")
            ] == ["MeterValues", "StopTransaction"]
            assert beta_csms.actions("StopTransaction")[0]["transaction_id"] == 9001
            assert beta_csms.actions("MeterValues")[0]["transaction_id"] == 9001

            # The Leader goes away: this system answers in its place, and says so.
            await acme.stop()
            await _wait(
                lambda: asyncio.to_thread(
                    lambda: (
                        not Backoffice.objects.filter(name="Acme CSMS", status="connected").exists()
                    )
                ),
                what="Acme down",
            )
            fallback = await cp.call("Authorize", {"idTag": "CAFE0001"})
            assert (
                fallback[2]["idTagInfo"]["status"] == "Accepted"
            )  # ours: the card is in our organization
            unknown = await cp.call("Authorize", {"idTag": "ACME-ONLY"})
            assert unknown[2]["idTagInfo"]["status"] == "Invalid"  # ours, not the absent Leader's
            # The Leader's part is noted on the decision once the charger has its answer
            # (consumers._note_leader), not before: wait for it rather than race it.
            await _wait(
                lambda: asyncio.to_thread(
                    lambda: (
                        AuthorizationDecision.objects.filter(station_id=STATION, uid="ACME-ONLY")
                        .order_by("id")
                        .last()
                        .leader_answered
                        is not None
                    )
                ),
                what="the fallback's Leader note",
            )
            await beta_csms.stop()
        return cp

    asyncio.run(scenario())

    decision = (
        AuthorizationDecision.objects.filter(station_id=STATION, uid="ACME-ONLY")
        .order_by("id")
        .first()
    )
    assert decision.status == "Invalid" and decision.leader_name == "Acme CSMS"
    assert decision.leader_status == "Accepted" and decision.leader_answered is True
    fallback = (
        AuthorizationDecision.objects.filter(station_id=STATION, uid="ACME-ONLY")
        .order_by("id")
        .last()
    )
    assert fallback.leader_answered is False and fallback.leader_name == "Acme CSMS"
    session = ChargingSession.objects.get(charger=charger)
    assert session.meter_stop_wh == 3000 and session.transaction_id != 5001
    assert (
        MeterValue.objects.filter(session=session).count() == 2
    )  # MeterValues for 5001 reached our session
    linked = {
        (p.backoffice.name if p.backoffice else "us", p.charger_transaction_id, p.transaction_id)
        for p in session.proxy_transactions.select_related("backoffice")
    }
    assert ("Beta CSMS", 5001, 9001) in linked and ("us", 5001, session.transaction_id) in linked
    assert not ProxyQueuedMessage.objects.exists()
