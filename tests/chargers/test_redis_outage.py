"""The OCPP path through a Redis outage and restart (reliability checklist P1, P3).

Redis carries the channel layer (commands between processes) and the cache (who watches a
charger's Logs tab, counters). While it is away a charger still connects, is answered, and every
frame it sends is stored in the Logs, none in the dead letters; a command cannot be sent and
says so at once. Once Redis is back (empty, as a restart without persistence leaves it),
commands reach every charger again without the charger reconnecting.

Each test runs its own redis-server on a port of its own and stops it; the machine's Redis is
never touched.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.layers import channel_layers

from chargers.connections.consumer import rejoin_command_groups
from chargers.devices.commands import CommandTimeout, command_group, send_command
from chargers.messagelog.log import writer
from chargers.models import ChargingSession, Command, OcppDeadLetter, OcppMessage
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"


async def answer_next_call(client: OcppTestClient) -> list:
    call = await client.receive()
    assert call[0] == 2
    await client.send([3, call[1], {"status": "Accepted"}])
    return call


async def test_a_charger_connects_is_answered_and_logged_while_redis_is_down(
    charger, token, private_redis
):
    private_redis.stop()

    client = OcppTestClient("CP-TEST-1")
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp1.6"  # was a 500: the command group could not be joined
    boot = await client.result(
        "BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"}
    )
    assert boot["status"] == "Accepted"
    start = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": TS},
    )
    tx = start["transactionId"]
    meter_value = {"timestamp": "2026-11-20T10:10:00Z", "sampledValue": [{"value": "4500"}]}
    await client.result(
        "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [meter_value]}
    )
    stop = {"transactionId": tx, "meterStop": 8500, "timestamp": "2026-11-20T11:00:00Z"}
    assert await client.result("StopTransaction", stop) == {}
    await writer.flush()

    # Every frame and its answer is in the Logs; nothing went to the dead letters (a cache
    # lookup failing inside the log write used to be taken for rows the database refused).
    assert await OcppDeadLetter.objects.acount() == 0
    logged = [
        a
        async for a in OcppMessage.objects.filter(charger=charger).values_list("action", flat=True)
    ]
    for action in ("BootNotification", "StartTransaction", "MeterValues", "StopTransaction"):
        assert logged.count(action) == 2, (action, logged)  # the CALL and its CALLRESULT
    session = await ChargingSession.objects.aget(transaction_id=tx)
    assert session.energy_wh == 7500 and await session.meter_values.acount() == 1

    # A command cannot be handed over: the person is told at once that nothing was sent.
    await charger.arefresh_from_db()
    with pytest.raises(CommandTimeout) as raised:
        await send_command(charger, "Reset", {"type": "Soft"}, timeout=5)
    assert raised.value.unreachable
    assert "was not sent" in raised.value.told("Reset")
    command = await Command.objects.aget(charger=charger, action="Reset")
    assert command.status == Command.Status.TIMEOUT and not command.unique_id

    # The charger reconnects (a new socket replaces the old one, counted without the cache).
    again = OcppTestClient("CP-TEST-1")
    assert (await again.connect())[0]
    assert (await again.result("Heartbeat", {}))["currentTime"]
    await again.close()
    await client.close()


async def test_after_a_redis_restart_commands_reach_chargers_connected_through_it(
    charger, private_redis
):
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    await client.result("BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"})

    # Redis restarts without persistence: every group membership is gone.
    private_redis.stop()
    private_redis.start()
    # The layer's pooled connections were closed by the restart: the first rejoin must not fail
    # on one of them (it did, and commands waited a minute more for the next round).
    # The process joins its sockets' groups again (every REJOIN_EVERY_S in a server).
    assert await rejoin_command_groups() == 1

    await charger.arefresh_from_db()
    answering = asyncio.create_task(answer_next_call(client))
    command = await send_command(charger, "Reset", {"type": "Soft"}, timeout=10)
    assert (await answering)[2] == "Reset"
    assert command.status == Command.Status.ANSWERED
    await client.close()


async def test_a_charger_connected_longer_than_the_layers_group_expiry_still_gets_commands(
    charger, private_redis
):
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    await client.result("BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"})

    # channels_redis drops a group member `group_expiry` (a day) after it joined: age the
    # membership past it, as a charger connected since yesterday has.
    layer = channel_layers["default"]
    group = command_group(charger.pk)
    key = layer._group_key(group)
    async with layer.connection(layer.consistent_hash(group)) as conn:
        members = await conn.zrange(key, 0, -1)
        assert len(members) == 1
        await conn.zadd(key, {members[0]: time.time() - layer.group_expiry - 60})

    assert await rejoin_command_groups() == 1

    await charger.arefresh_from_db()
    answering = asyncio.create_task(answer_next_call(client))
    command = await send_command(charger, "Reset", {"type": "Soft"}, timeout=10)
    assert (await answering)[2] == "Reset"
    assert command.status == Command.Status.ANSWERED
    await client.close()
