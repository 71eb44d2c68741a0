"""An AuthorizationKey is a password: it never reaches the message log, whatever its case, and
not when a charger (wrongly) reports it back in GetConfiguration."""

import json

import pytest
from channels.layers import get_channel_layer

from chargers.devices.commands import command_group
from chargers.messagelog.log import writer
from chargers.models import Command, OcppMessage
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "00112233445566778899aabbccddeeff"


async def _command(charger, action, payload):
    command = await Command.objects.acreate(
        charger=charger, action=action, payload={}, status="pending"
    )
    await get_channel_layer().group_send(
        command_group(charger.pk),
        {
            "type": "cp.call",
            "command_id": command.pk,
            "action": action,
            "payload": payload,
            "timeout": 5,
        },
    )
    return command


async def test_authorization_key_is_masked_in_the_log(charger):
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    await _command(charger, "ChangeConfiguration", {"key": "authorizationKEY", "value": SECRET})
    call = await client.receive()
    assert call[2] == "ChangeConfiguration" and call[3]["value"] == SECRET  # the charger gets it
    await client.send([3, call[1], {"status": "Rejected"}])
    await _command(charger, "GetConfiguration", {})
    call = await client.receive()
    await client.send(
        [
            3,
            call[1],
            {
                "configurationKey": [
                    {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
                    {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
                ]
            },
        ]
    )
    await client.result("Heartbeat", {})  # both answers were read before this reply
    await writer.flush()
    stored = json.dumps(
        [m.payload async for m in OcppMessage.objects.filter(charger=charger)]
    ) + "".join([m.raw async for m in OcppMessage.objects.filter(charger=charger)])
    assert SECRET not in stored
    assert "HeartbeatInterval" in stored
    await client.close()
