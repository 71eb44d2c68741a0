"""Issue 53 item 2: GetVariables / SetVariables within the charger's DeviceDataCtrlr
ItemsPerMessage and BytesPerMessage (B06.FR.05, B05.FR.11, TC_B_08), and a seqNo gap in a
transaction's events followed at once by GetTransactionStatus (E14)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.devices import device_model
from chargers.devices.stale import NO_ENDED_EVENT
from chargers.models import ChargingSession, Command, DeviceVariable
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

FIVE = [
    {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": n, "instance": i}}
    for n, i in (
        ("ItemsPerMessage", "GetReport"),
        ("ItemsPerMessage", "GetVariables"),
        ("BytesPerMessage", "GetReport"),
        ("BytesPerMessage", "GetVariables"),
    )
] + [{"component": {"name": "AuthCtrlr"}, "variable": {"name": "AuthorizeRemoteStart"}}]


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


def _limit(charger, variable: str, instance: str, value: str) -> None:
    DeviceVariable.objects.create(
        charger=charger,
        component="DeviceDataCtrlr",
        variable=variable,
        variable_instance=instance,
        value=value,
    )


def _results(items: list, status: str = "Accepted") -> list:
    return [
        {
            "attributeStatus": status,
            "component": i["component"],
            "variable": i["variable"],
            "attributeValue": "1",
        }
        for i in items
    ]


async def _post(api, action: str, payload: dict):
    return asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/chargers/CP-TEST-1/commands/{action}/", payload, format="json"
        )
    )


async def test_get_variables_is_split_by_items_per_message_tc_b_08(charger, api):
    await sync_to_async(_limit)(charger, "ItemsPerMessage", "GetVariables", "4")
    client = await connect201()
    request = await _post(api, "GetVariables", {"getVariableData": FIVE})
    sizes = []
    for _ in range(2):
        call = await client.receive(timeout=GENEROUS_S)
        assert call[2] == "GetVariables"
        items = call[3]["getVariableData"]
        sizes.append(len(items))
        await client.send([3, call[1], {"getVariableResult": _results(items)}])
    assert sizes == [4, 1]
    response = await request
    assert response.status_code == 200
    # The API's answer carries every part's results, in request order.
    assert [r["variable"] for r in response.json()["response"]["getVariableResult"]] == [
        i["variable"] for i in FIVE
    ]
    assert await Command.objects.filter(charger=charger, action="GetVariables").acount() == 2
    assert await client.communicator.receive_nothing(timeout=0.5)
    await client.close()


async def test_B06_FR_05_an_unreported_limit_bounds_nothing_tc_b_07(charger, api):
    """TC_B_07: a charger that reported no ItemsPerMessage gets the operator's request as asked,
    with no GetVariables of ours before it (the suite fails a CSMS that asks first)."""
    client = await connect201()
    two = [
        FIVE[4],
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}},
    ]
    request = await _post(api, "GetVariables", {"getVariableData": two})
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetVariables" and call[3]["getVariableData"] == two
    await client.send([3, call[1], {"getVariableResult": _results(two)}])
    assert (await request).status_code == 200
    assert await client.communicator.receive_nothing(timeout=0.5)
    await client.close()


async def test_B06_FR_16_a_refusal_as_too_many_asks_the_limit_splits_and_keeps_it(charger, api):
    """A charger whose limits we do not know refuses a request with more elements than it takes
    (CALLERROR OccurrenceConstraintViolation, B06.FR.16): its limits are asked, the request is
    sent again in parts within them (B05.FR.11), and the limit is kept for the next one."""
    client = await connect201()
    data = [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": n}, "attributeValue": "60"}
        for n in ("HeartbeatInterval", "OfflineThreshold", "MessageTimeout")
    ]
    request = await _post(api, "SetVariables", {"setVariableData": data})
    whole = await client.receive(timeout=GENEROUS_S)
    assert whole[2] == "SetVariables" and len(whole[3]["setVariableData"]) == 3
    await client.send([4, whole[1], "OccurrenceConstraintViolation", "at most 2", {}])
    ask = await client.receive(timeout=GENEROUS_S)
    assert ask[2] == "GetVariables" and ask[3]["getVariableData"] == [
        {
            "component": {"name": "DeviceDataCtrlr"},
            "variable": {"name": "ItemsPerMessage", "instance": "SetVariables"},
        }
    ]
    await client.send(
        [
            3,
            ask[1],
            {
                "getVariableResult": [
                    {**_results(ask[3]["getVariableData"])[0], "attributeValue": "2"}
                ]
            },
        ]
    )
    ask = await client.receive(timeout=GENEROUS_S)
    assert ask[3]["getVariableData"][0]["variable"]["name"] == "BytesPerMessage"
    await client.send(
        [
            3,
            ask[1],
            {"getVariableResult": _results(ask[3]["getVariableData"], "UnknownVariable")},
        ]
    )
    sizes = []
    for _ in range(2):
        call = await client.receive(timeout=GENEROUS_S)
        assert call[2] == "SetVariables"
        items = call[3]["setVariableData"]
        sizes.append(len(items))
        await client.send([3, call[1], {"setVariableResult": _results(items)}])
    assert sizes == [2, 1]
    response = await request
    assert response.status_code == 200
    assert len(response.json()["response"]["setVariableResult"]) == 3
    # Known now (the answer landed in the device model): sent in parts at once.
    request = await _post(api, "SetVariables", {"setVariableData": data})
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "SetVariables" and len(call[3]["setVariableData"]) == 2
    await client.send([3, call[1], {"setVariableResult": _results(call[3]["setVariableData"])}])
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], {"setVariableResult": _results(call[3]["setVariableData"])}])
    assert (await request).status_code == 200
    await client.close()


async def test_another_callerror_is_the_answer(charger, api):
    """Only B06.FR.16's refusal leads to asking the limits; any other CALLERROR is the answer."""
    client = await connect201()
    two = FIVE[:2]
    request = await _post(api, "GetVariables", {"getVariableData": two})
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([4, call[1], "InternalError", "broken", {}])
    response = await request
    assert response.status_code == 502
    assert response.json()["response"]["errorCode"] == "InternalError"
    assert await client.communicator.receive_nothing(timeout=0.5)
    await client.close()


def test_bytes_per_message_bounds_the_whole_frame():
    parts = device_model.split_variable_data("GetVariables", FIVE, None, 300)
    assert [item for part in parts for item in part] == FIVE and len(parts) > 1
    for part in parts:
        frame = json.dumps(
            [2, "x" * 36, "GetVariables", {"getVariableData": part}], separators=(",", ":")
        )
        assert len(frame.encode()) <= 300
    # One element larger than the limit goes alone; order is kept.
    assert device_model.split_variable_data("GetVariables", FIVE[:2], None, 10) == [
        [FIVE[0]],
        [FIVE[1]],
    ]


async def test_a_single_variable_is_never_split_nor_asked_about(charger, api):
    client = await connect201()
    request = await _post(api, "GetVariables", {"getVariableData": FIVE[:1]})
    call = await client.receive(timeout=GENEROUS_S)
    assert call[3]["getVariableData"] == FIVE[:1]
    await client.send([3, call[1], {"getVariableResult": _results(FIVE[:1])}])
    assert (await request).status_code == 200
    await client.close()


async def test_a_seq_no_gap_is_asked_about_at_once(charger):
    client = await connect201()
    await client.result("TransactionEvent", tx_event("Started", 0, wh=0))
    await client.result("TransactionEvent", tx_event("Updated", 1, wh=100))
    assert await client.communicator.receive_nothing(timeout=0.5)  # in order: nothing asked
    await client.result("TransactionEvent", tx_event("Updated", 3, wh=300))  # 2 is missing
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetTransactionStatus" and call[3] == {"transactionId": "TX-1"}
    await client.send([3, call[1], {"messagesInQueue": True, "ongoingIndicator": True}])
    # The missing event arrives: counted, and no new question.
    await client.result("TransactionEvent", tx_event("Updated", 2, wh=200, offline=True))
    assert await client.communicator.receive_nothing(timeout=0.5)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.status == ChargingSession.Status.ACTIVE
    await client.close()


async def test_a_gap_whose_transaction_is_over_closes_the_session(charger):
    client = await connect201()
    await client.result("TransactionEvent", tx_event("Started", 0, wh=0))
    await client.result("TransactionEvent", tx_event("Updated", 2, wh=200))
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "GetTransactionStatus"
    # Over, nothing queued: the Ended (and 1) are lost.
    await client.send([3, call[1], {"messagesInQueue": False, "ongoingIndicator": False}])
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
        if session.status != ChargingSession.Status.ACTIVE:
            break
        await asyncio.sleep(0.1)
    assert session.stop_reason == NO_ENDED_EVENT and session.meter_stop_wh == 200
    await client.close()
