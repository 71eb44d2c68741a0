"""How long a command waits past its timeout (chargers/devices/commands.py `_await_reply`).

The process holding the charger's socket reports every CALL it gets (`cp_call`), a hop after
the sender's clock started. The sender used to wait a fixed 2 s "for the hops" past its timeout
and then record "no process answered", even when that process's report (the charger's answer)
was still on its way: a slow database write lost the answer. Now it waits as long as the
charger's connection is held and unreported, and stops as soon as it is gone.

The process holding the socket is played here by a channel of the test's own in the charger's
command group (as another server process's consumer would be), reporting the way `cp_call` does:
the row first, then the reply.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.utils import timezone

from backoffice import db
from chargers.devices.commands import (
    NO_OWNER,
    CommandTimeout,
    command_complete,
    command_group,
    send_command,
)
from chargers.models import Charger, Command

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_S = 1.0


async def _online_elsewhere(charger: Charger) -> Charger:
    """The charger connected to another process (its socket is not in this one)."""
    now = timezone.now()
    await Charger.objects.filter(pk=charger.pk).aupdate(
        connection_id="held-elsewhere",
        connection_process="another-process",
        connected_at=now,
        last_seen_at=now + timedelta(minutes=5),  # online through the test
    )
    return await Charger.objects.aget(pk=charger.pk)


async def _owner(charger: Charger, *, report_after_s: float) -> asyncio.Task:
    """A process holding the charger's socket whose report comes `report_after_s` after the
    CALL reached it: the charger answered Accepted."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(command_group(charger.pk), channel)

    async def report() -> dict:
        call = await layer.receive(channel)
        assert call["type"] == "cp.call"
        await asyncio.sleep(report_after_s)
        response = {"status": "Accepted"}
        await db.run(
            command_complete,
            command_id=call["command_id"],
            status=Command.Status.ANSWERED,
            response=response,
        )
        await layer.send(
            call["reply_channel"], {"type": "cp.reply", "status": "answered", "response": response}
        )
        return call

    return asyncio.create_task(report())


async def test_an_answer_reported_after_the_old_grace_is_the_commands_answer(charger):
    """The holding process reports 3 s past the timeout (its database was slow): the command is
    answered, not "no process answered" (the fixed 2 s grace gave up on it)."""
    charger = await _online_elsewhere(charger)
    owner = await _owner(charger, report_after_s=TIMEOUT_S + 3)
    command = await send_command(charger, "Reset", {"type": "Soft"}, timeout=TIMEOUT_S)
    await owner
    assert command.status == Command.Status.ANSWERED, (command.status, command.error)
    assert command.response == {"status": "Accepted"}


async def test_a_charger_whose_connection_is_gone_is_not_waited_for(charger):
    """Nobody got the CALL (its process died) and the charger's connection is cleared: the
    command ends as nobody's once its time is up, without waiting for a report that cannot
    come; a report that arrives after all (a process that was only slow) is still kept."""
    charger = await _online_elsewhere(charger)
    asked = asyncio.create_task(send_command(charger, "Reset", {"type": "Soft"}, timeout=TIMEOUT_S))
    # The process heartbeat clears the dead process's connections (connections/process.py).
    await asyncio.sleep(0)
    await Charger.objects.filter(pk=charger.pk).aupdate(connection_id="", connection_process="")
    with pytest.raises(CommandTimeout) as raised:
        await asked
    assert raised.value.command.error == NO_OWNER
    assert "did not answer in time" in raised.value.told("Reset")

    # A process that held it after all reports late: the row keeps the truth.
    await db.run(
        command_complete,
        command_id=raised.value.command.pk,
        status=Command.Status.ANSWERED,
        response={"status": "Accepted"},
    )
    stored = await Command.objects.aget(pk=raised.value.command.pk)
    assert stored.status == Command.Status.ANSWERED and stored.error == ""


async def test_a_silent_charger_is_told_by_its_own_process(charger):
    """The usual case, unchanged: the process holding the socket reports that the charger did
    not answer within the timeout, and that is what the person is told."""
    from tests.ocpp_client import OcppTestClient

    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await charger.arefresh_from_db()
    with pytest.raises(CommandTimeout) as raised:
        await send_command(charger, "Reset", {"type": "Soft"}, timeout=TIMEOUT_S)
    assert raised.value.command.error == f"The charger did not answer within {TIMEOUT_S:g} s."
    await client.close()
