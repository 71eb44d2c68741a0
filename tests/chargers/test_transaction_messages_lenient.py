"""Transaction messages are never refused for being odd (docs/ocpp.md, "Schema violations").

A CALLERROR on StartTransaction / StopTransaction / MeterValues makes the charger discard the
message after its retries: billing data lost. Odd but understandable payloads are accepted,
processed, and the violation is recorded on the message and counted on the charger.
"""

import pytest

from chargers.messagelog.log import writer
from chargers.models import Charger, ChargingSession, MeterValue, OcppMessage, OrphanStop
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"


async def _client():
    client = OcppTestClient("CP-TEST-1")
    ok, _ = await client.connect()
    assert ok
    return client


async def _start(client, **overrides):
    payload = {
        "connectorId": 1,
        "idTag": "04A1B2C3",
        "meterStart": 100,
        "timestamp": TS,
        **overrides,
    }
    return await client.result("StartTransaction", payload)


async def _logged(unique_action: str) -> OcppMessage:
    await writer.flush()
    return (
        await OcppMessage.objects.filter(direction="in", action=unique_action)
        .order_by("-id")
        .afirst()
    )


async def test_stop_with_vendor_reason_and_extra_field_closes_the_session(charger, token):
    client = await _client()
    started = await _start(client)
    reply = await client.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 5100,
            "timestamp": "2026-11-20T11:00:00Z",
            "reason": "VendorSpecificEmergency",
            "vendorExtra": {"x": 1},
        },
    )
    assert reply[0] == 3, reply
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert session.status == "completed" and session.meter_stop_wh == 5100
    assert session.stop_reason == "VendorSpecificEmergency"[:20]
    message = await _logged("StopTransaction")
    assert message.violation.startswith("schema:"), message.violation
    await client.close()
    assert (await Charger.objects.aget(pk=charger.pk)).schema_violations == 1


async def test_start_with_21_character_id_tag_is_recorded_not_refused(charger):
    client = await _client()
    tag = "A" * 21
    started = await _start(client, idTag=tag)
    assert started["transactionId"] > 0
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert session.id_tag == tag and session.status == "active"
    assert (await _logged("StartTransaction")).violation
    await client.close()


@pytest.mark.parametrize("connector_id", [-1, 2**31, 2**40])
async def test_start_with_out_of_range_connector_is_recorded_on_connector_0(
    charger, token, connector_id
):
    client = await _client()
    started = await _start(client, connectorId=connector_id)
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert session.connector_id == 0
    assert (
        f"connectorId {connector_id} out of range" in (await _logged("StartTransaction")).violation
    )
    await client.close()


@pytest.mark.parametrize("meter_start", [2**63, -(2**63) - 1, 10**30])
async def test_start_with_meter_beyond_the_column_is_recorded(charger, token, meter_start):
    client = await _client()
    started = await _start(client, meterStart=meter_start)
    session = await ChargingSession.objects.aget(transaction_id=started["transactionId"])
    assert session.meter_start_wh == 0
    assert "meterStart" in (await _logged("StartTransaction")).violation
    await client.close()


async def test_stop_with_out_of_range_transaction_id_is_kept_as_orphan(charger):
    client = await _client()
    reply = await client.call(
        "StopTransaction", {"transactionId": 2**40, "meterStop": 10, "timestamp": TS}
    )
    assert reply[0] == 3, reply
    orphan = await OrphanStop.objects.aget(charger=charger)
    assert orphan.transaction_id == 0 and orphan.payload["transactionId"] == 2**40
    await client.close()


async def test_meter_values_with_odd_fields_are_stored(charger, token):
    client = await _client()
    started = await _start(client)
    reply = await client.call(
        "MeterValues",
        {
            "connectorId": "1",
            "transactionId": started["transactionId"],
            "meterValue": [
                {
                    "timestamp": "not a time",
                    "sampledValue": [
                        {"value": 1234, "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                        {"value": "5", "measurand": "Vendor.Special.Measurand"},
                    ],
                }
            ],
        },
    )
    assert reply[0] == 3, reply
    values = [v async for v in MeterValue.objects.filter(charger=charger).order_by("id")]
    assert [v.raw_value for v in values] == ["1234", "5"]
    assert all(v.session_id is not None for v in values)
    message = await _logged("MeterValues")
    assert "not a date-time" in message.violation
    await client.close()


@pytest.mark.parametrize(
    ("action", "payload", "field", "code", "says"),
    [
        (
            "StopTransaction",
            {"meterStop": 10, "timestamp": TS},
            "transactionId",
            "OccurenceConstraintViolation",
            "required",
        ),
        (
            "StartTransaction",
            {"idTag": "X", "meterStart": 0, "timestamp": TS},
            "connectorId",
            "OccurenceConstraintViolation",
            "required",
        ),
        (
            "MeterValues",
            {"meterValue": []},
            "connectorId",
            "OccurenceConstraintViolation",
            "required",
        ),
        # Present but not a number: the error names the type and the value, not a missing field.
        (
            "MeterValues",
            {"connectorId": "one", "meterValue": []},
            "connectorId",
            "TypeConstraintViolation",
            "'one' is not an integer",
        ),
        (
            "StopTransaction",
            {"transactionId": [7], "meterStop": 10, "timestamp": TS},
            "transactionId",
            "TypeConstraintViolation",
            "[7]' is not an integer",
        ),
    ],
)
async def test_uninterpretable_transaction_messages_get_a_callerror(
    charger, action, payload, field, code, says
):
    client = await _client()
    reply = await client.call(action, payload)
    assert reply[0] == 4 and reply[2] == code, reply
    assert reply[3].startswith(field) and says in reply[3], reply
    assert reply[4] == {"field": field}
    assert not await ChargingSession.objects.aexists()
    await client.close()


async def test_stop_answers_the_cards_status_from_the_engine(charger, token):
    client = await _client()
    started = await _start(client)
    token.blocked = True
    await token.asave()
    stopped = await client.result(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "idTag": "04A1B2C3",
            "meterStop": 200,
            "timestamp": TS,
        },
    )
    assert stopped["idTagInfo"]["status"] == "Blocked"
    from authorization.models import AuthorizationDecision

    decision = await AuthorizationDecision.objects.filter(context="stop_transaction").afirst()
    assert decision is not None and decision.status == "Blocked"
    await client.close()
