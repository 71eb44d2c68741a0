"""An upstream backoffice whose connection goes half-open (a silent network drop: no FIN, no
RST, nothing passes) is noticed by our pings, reconnected with back-off, and the Proxy tab stops
showing it connected on the dead socket; the charger's traffic reaches it again afterwards."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chargers.proxy import links
from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice
from tests.bounds import GENEROUS_S
from tests.conftest import free_port
from tests.ocpp_client import OcppTestClient
from tests.tcp_proxy import CuttableProxy
from tests.upstream_csms import UpstreamCsms

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _upstreams_allow_listed(settings, monkeypatch):
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    # Seconds instead of the production half minute, so the test sees the drop noticed.
    monkeypatch.setattr(links, "PING_INTERVAL_S", 0.3)
    monkeypatch.setattr(links, "PING_TIMEOUT_S", 0.5)
    monkeypatch.setattr(links, "BACKOFF_FIRST_S", 2.0)  # the tab's words stay up a moment


async def _until(predicate, timeout=GENEROUS_S):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(predicate)():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.05)


async def test_a_half_open_upstream_is_noticed_and_reconnected(charger):
    port = free_port()
    network = CuttableProxy("127.0.0.1", port)
    await sync_to_async(proxy_services.backoffice_save)(
        charger,
        name="Acme CSMS",
        url=f"ws://127.0.0.1:{network.port}",
        role="follower",
        password="follower-secret-1",
    )
    acme = await UpstreamCsms("Acme", port=port, password="follower-secret-1", tx_base=1).start()
    client = OcppTestClient(charger.station_id)
    try:
        assert (await client.connect())[0]
        await _until(lambda: Backoffice.objects.filter(status="connected").exists())
        first = await sync_to_async(Backoffice.objects.get)()
        before = acme.points.get(charger.station_id)

        network.freeze()  # the network dropped: the socket is half-open, nobody is told

        # Noticed: the Proxy tab says so in words while the link waits to reconnect.
        await _until(lambda: "stopped answering" in (Backoffice.objects.get().last_error or ""))
        # Reconnected: a new connection at the upstream, a new "Connected since".
        await acme.wait_for(
            lambda: acme.points.get(charger.station_id) not in (None, before), GENEROUS_S
        )
        await _until(
            lambda: Backoffice.objects.filter(
                status="connected", connected_at__gt=first.connected_at
            ).exists()
        )
        # The charger's traffic reaches the upstream again.
        await client.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Faulted"}
        )
        await acme.wait_for(
            lambda: any(p.get("status") == "Faulted" for p in acme.actions("StatusNotification"))
        )
    finally:
        await client.close()
        network.close()  # first: the upstream's side of the frozen socket ends with it
        await acme.stop()
