"""The proxy inside the consumer (issue 13): a slow or failing Leader, a refused link. The charger
is driven through Channels' communicator; the upstream is a real `ocpp`-package central system
(tests/upstream_csms.py) on a real socket in the same event loop."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from authorization.models import AuthorizationDecision
from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice
from tests.bounds import GENEROUS_S
from tests.conftest import free_port
from tests.ocpp_client import OcppTestClient
from tests.upstream_csms import UpstreamCsms

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _upstreams_allow_listed(settings):
    # The upstream listens on 127.0.0.1, which the outbound guard refuses unless staff allow it.
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]


def _port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


async def _until(predicate, timeout=GENEROUS_S):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(predicate)():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.05)


def _leader(charger, port, password="leader-secret-1"):
    charger.proxy_leader_timeout_s = 1
    charger.save(update_fields=["proxy_leader_timeout_s"])
    return proxy_services.backoffice_save(
        charger, name="Acme CSMS", url=f"ws://127.0.0.1:{port}", role="leader", password=password
    )


async def test_a_slow_leader_is_answered_for_once_and_its_late_answer_dropped(charger, token):
    port = _port()
    await sync_to_async(_leader)(charger, port)
    acme = await UpstreamCsms(
        "Acme",
        port=port,
        password="leader-secret-1",
        tx_base=1,
        default_status="Blocked",
        delays={"Authorize": 2.5},
    ).start()
    client = OcppTestClient(charger.station_id)
    try:
        assert (await client.connect())[0]
        await _until(lambda: Backoffice.objects.filter(status="connected").exists())
        reply = await client.call("Authorize", {"idTag": token.uid})
        assert (
            reply[2]["idTagInfo"]["status"] == "Accepted"
        )  # ours, after the 1 s timeout, not Acme's Blocked
        await asyncio.sleep(2.5)  # Acme answers late: the charger must not get a second answer
        assert await client.communicator.receive_nothing(timeout=0.5)
        heartbeat = await client.call("Heartbeat", {})
        assert "currentTime" in heartbeat[2]
    finally:
        await client.close()
        await acme.stop()
    decision = await sync_to_async(AuthorizationDecision.objects.get)(uid=token.uid)
    assert decision.leader_answered is False and decision.leader_name == "Acme CSMS"
    assert "did not answer in time" in decision.leader_summary


async def test_the_leaders_callerror_reaches_the_charger(charger):
    port = _port()
    await sync_to_async(_leader)(charger, port)
    acme = await UpstreamCsms(
        "Acme", port=port, password="leader-secret-1", tx_base=1, fail=frozenset({"Heartbeat"})
    ).start()
    client = OcppTestClient(charger.station_id)
    try:
        assert (await client.connect())[0]
        await _until(lambda: Backoffice.objects.filter(status="connected").exists())
        reply = await client.call("Heartbeat", {})
        assert reply[0] == 4 and reply[2] == "InternalError"
    finally:
        await client.close()
        await acme.stop()


async def test_a_refused_link_says_why_and_we_answer_at_once(charger, token):
    port = _port()
    await sync_to_async(_leader)(charger, port, password="not-the-password")
    acme = await UpstreamCsms(
        "Acme", port=port, password="leader-secret-1", tx_base=1, default_status="Invalid"
    ).start()
    client = OcppTestClient(charger.station_id)
    try:
        assert (await client.connect())[0]
        await _until(lambda: "401" in (Backoffice.objects.get().last_error or ""))
        assert acme.refused_auth >= 1
        reply = await client.call("Authorize", {"idTag": token.uid})
        assert reply[2]["idTagInfo"]["status"] == "Accepted"  # the Leader is unreachable: ours
        assert (await sync_to_async(Backoffice.objects.get)()).status in (
            "disconnected",
            "connecting",
        )
    finally:
        await client.close()
        await acme.stop()
