"""A host's open Logs tab gets each new frame live (chargers/web/sockets.py), also after a
day: channels' layers drop a group member a day after it joined, so the tab joins its group
again on each keep-alive round (docs/ocpp.md, "During a Redis outage"). After a Redis restart
the tab's socket closes and the page connects again by itself (static/backoffice/portal.js)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from chargers.messagelog.log import log_group
from chargers.web import sockets
from chargers.web.sockets import ChargerLogConsumer
from tests.factories import MembershipFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

GENEROUS_S = 30  # a bound for a busy machine, not a measure of speed


async def open_logs_tab(user, station_id: str) -> WebsocketCommunicator:
    tab = WebsocketCommunicator(ChargerLogConsumer.as_asgi(), f"/ws/chargers/{station_id}/logs/")
    tab.scope["user"] = user
    tab.scope["url_route"] = {"kwargs": {"station_id": station_id}}
    connected, _ = await tab.connect(timeout=GENEROUS_S)
    assert connected
    return tab


async def next_actions(tab: WebsocketCommunicator, wanted: str) -> list[str]:
    """The actions of the rows pushed to the tab until one of `wanted` arrives."""
    seen: list[str] = []
    while wanted not in seen:
        seen += [row["action"] for row in (await tab.receive_json_from(GENEROUS_S))["rows"]]
    return seen


async def test_an_open_logs_tab_gets_a_new_frame_and_another_host_gets_no_tab(charger, host):
    tab = await open_logs_tab(host, charger.station_id)
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("Heartbeat", {})
    assert "Heartbeat" in await next_actions(tab, "Heartbeat")
    await client.close()
    await tab.disconnect()

    # A host of another organization gets no tab of this charger.
    stranger = (await sync_to_async(MembershipFactory)(role="owner")).user
    other = WebsocketCommunicator(ChargerLogConsumer.as_asgi(), "/ws/chargers/x/logs/")
    other.scope["user"] = stranger
    other.scope["url_route"] = {"kwargs": {"station_id": charger.station_id}}
    assert not (await other.connect(timeout=GENEROUS_S))[0]


async def test_a_logs_tab_open_longer_than_the_layers_group_expiry_still_gets_rows(
    charger,
    host,
    private_redis,
    monkeypatch,
):
    # Keep-alive rounds every second (the watch key lives 3 s; the cache keeps whole seconds).
    monkeypatch.setattr(sockets, "LOG_WATCH_TTL_S", 3)
    tab = await open_logs_tab(host, charger.station_id)
    # channels_redis drops a group member `group_expiry` (a day) after it joined: age the tab's
    # membership past it, as for a tab left open since yesterday.
    layer = channel_layers["default"]
    group = log_group(charger.pk)
    async with layer.connection(layer.consistent_hash(group)) as conn:
        members = await conn.zrange(layer._group_key(group), 0, -1)
        assert len(members) == 1
        stale = time.time() - layer.group_expiry - 3600
        await conn.zadd(layer._group_key(group), {members[0]: stale})
        # The next keep-alive round joins again (a fresh score).
        while (await conn.zscore(layer._group_key(group), members[0])) == stale:
            await asyncio.sleep(0.05)

    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("Heartbeat", {})
    assert "Heartbeat" in await next_actions(tab, "Heartbeat")
    await client.close()
    await tab.disconnect()
