"""Live messages a slow follower backoffice cannot take are dropped past links.LIVE_QUEUE_MAX, and
the Proxy tab (Chargers > View > Proxy) says how many and when: never silently. Transaction
messages are never dropped. The charger is driven through Channels' communicator; the upstream
is a real `ocpp`-package central system (tests/upstream_csms.py) on a real socket."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from chargers.proxy import links
from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice
from tests.bounds import GENEROUS_S
from tests.conftest import free_port
from tests.ocpp_client import OcppTestClient
from tests.upstream_csms import UpstreamCsms

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = 3  # instead of production's 1,000: a handful of frames fill it


@pytest.fixture(autouse=True)
def _small_queue(settings, monkeypatch):
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    monkeypatch.setattr(links, "LIVE_QUEUE_MAX", QUEUE)
    monkeypatch.setattr(links, "STATE_WRITE_EVERY_S", 0.2)


async def _until(predicate, timeout=GENEROUS_S):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(predicate)():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.05)


def _status(status: str) -> dict:
    return {"connectorId": 1, "errorCode": "NoError", "status": status}


async def test_a_slow_follower_drops_live_messages_and_the_proxy_tab_counts_them(
    charger, client, host
):
    port = free_port()
    await sync_to_async(proxy_services.backoffice_save)(
        charger,
        name="Slow CSMS",
        url=f"ws://127.0.0.1:{port}",
        role="follower",
        password="follower-secret-1",
    )
    # It answers no StatusNotification until the test is done: one is in flight, QUEUE wait,
    # the rest find the queue full.
    release = asyncio.Event()
    slow = await UpstreamCsms(
        "Slow",
        port=port,
        password="follower-secret-1",
        tx_base=1,
        delays={"StatusNotification": release},
    ).start()
    ours = OcppTestClient(charger.station_id)
    try:
        assert (await ours.connect())[0]
        await _until(lambda: Backoffice.objects.filter(status="connected").exists())
        for status in ["Available", "Preparing", "Available", "Preparing", "Available"] * 2:
            reply = await ours.call("StatusNotification", _status(status))
            assert reply[0] == 3  # we answer the charger at once whatever the follower does
        # 10 sent: at most one in flight and QUEUE waiting, so at least 6 not passed on,
        # written in one batch.
        await _until(lambda: Backoffice.objects.get().dropped_count >= 10 - 1 - QUEUE)
        row = await sync_to_async(Backoffice.objects.get)()
        assert row.dropped_count <= 10 - QUEUE
        assert row.dropped_first_at is not None and row.dropped_last_at >= row.dropped_first_at
    finally:
        release.set()
        await ours.close()
        await slow.stop()

    await sync_to_async(client.force_login)(host)
    page = await sync_to_async(client.get)(
        reverse("chargers:charger-proxy", args=[charger.station_id])
    )
    text = page.content.decode()
    assert f"{row.dropped_count:,} messages not passed on since" in text
    assert "start, meter values and stop are always kept" in text
    state = await sync_to_async(client.get)(
        reverse("chargers:charger-proxy-state", args=[charger.station_id])
    )
    slow_row = next(r for r in state.json()["rows"] if r["id"] == row.pk)
    assert slow_row["dropped_text"].startswith(f"{row.dropped_count:,} messages not passed on")


def test_a_stranger_host_sees_no_proxy_tab_of_another_organization(client, charger):
    from tests.factories import UserFactory

    stranger = UserFactory(username="stranger@example.com")
    client.force_login(stranger)
    for name in ("chargers:charger-proxy", "chargers:charger-proxy-state"):
        assert client.get(reverse(name, args=[charger.station_id])).status_code == 404
