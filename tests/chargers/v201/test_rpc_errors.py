"""OCPP-J 2.0.1 part 4 §4.2.3/§4.3: CALLERRORs with the 2.0.1 error codes; the socket stays open."""

import json

import pytest

from chargers.messagelog.log import writer
from chargers.models import OcppMessage

from .conftest import BOOT, connect201

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("frame", "code", "message_id"),
    [
        ("not json", "RpcFrameworkError", "-1"),
        ('{"a": 1}', "RpcFrameworkError", "-1"),
        ('[2, "m1", "Heartbeat"]', "ProtocolError", "m1"),
        ('[2, "m2", "Heartbeat", []]', "FormatViolation", "m2"),
        ('[7, "m3", "Heartbeat", {}]', "MessageTypeNotSupported", "m3"),
        ('[2, "m4", "FlyToTheMoon", {}]', "NotImplemented", "m4"),
        ('[2, "m5", "Reset", {"type": "Immediate"}]', "NotSupported", "m5"),
        (
            '[2, "m6", "BootNotification", {"reason": "PowerUp"}]',
            "OccurrenceConstraintViolation",
            "m6",
        ),
        ('[2, "m7", "Heartbeat", {"extra": 1}]', "FormatViolation", "m7"),
        (
            '[2, "m8", "BootNotification", {"reason": "Bored", "chargingStation": {"model": "m", "vendorName": "v"}}]',
            "PropertyConstraintViolation",
            "m8",
        ),
        (
            '[2, "m9", "BootNotification", {"reason": "PowerUp", "chargingStation": {"model": 5, "vendorName": "v"}}]',
            "TypeConstraintViolation",
            "m9",
        ),
        (
            '[2, "m10", "TransactionEvent", {"eventType": "Started", "timestamp": "2026-11-20T10:00:00Z", '
            '"triggerReason": "Authorized", "seqNo": 0, "transactionInfo": {}}]',
            "OccurrenceConstraintViolation",
            "m10",
        ),
    ],
)
async def test_bad_frames_get_the_201_error_code(charger, frame, code, message_id):
    client = await connect201()
    reply = await client.send_raw(frame)
    assert reply[0] == 4 and reply[1] == message_id and reply[2] == code, reply
    assert isinstance(reply[3], str) and isinstance(reply[4], dict)
    # still open and answering
    assert (await client.result("Heartbeat", {}))["currentTime"]
    await client.close()


async def test_error_replies_are_logged(charger):
    client = await connect201()
    await client.send_raw('[2, "bad-1", "BootNotification", {"reason": "PowerUp"}]')
    await client.close()
    await writer.flush()
    row = await OcppMessage.objects.aget(charger=charger, direction="out", unique_id="bad-1")
    assert row.message_type == 4 and row.payload["errorCode"] == "OccurrenceConstraintViolation"


async def test_valid_boot_is_not_an_error(charger):
    client = await connect201()
    reply = await client.send_raw(json.dumps([2, "ok-1", "BootNotification", BOOT]))
    assert reply[0] == 3
    await client.close()
