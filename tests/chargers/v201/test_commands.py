"""Commands to 2.0.1 chargers: 2.0.1 actions from the API, RequestStartTransaction through the
authorization engine, and protocol-neutral remote start/stop/reset/unlock (1.6 names translated)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, Command, DeviceVariable
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


async def command(api, client, action: str, payload: dict, answer: dict):
    """POST the command, answer the CALL the charger receives; return (call, API response)."""
    request = asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/chargers/CP-TEST-1/commands/{action}/", payload, format="json"
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], answer])
    return call, await request


async def test_request_start_goes_through_the_engine_and_links_the_session(charger, token, api):
    client = await connect201()
    call, response = await command(
        api,
        client,
        "RequestStartTransaction",
        {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}, "evseId": 1},
        {"status": "Accepted"},
    )
    assert call[0] == 2 and call[2] == "RequestStartTransaction"
    remote_start_id = call[3]["remoteStartId"]
    assert isinstance(remote_start_id, int) and call[3]["idToken"]["idToken"] == "04A1B2C3"
    assert response.status_code == 200 and response.json()["status"] == "Accepted"
    assert await AuthorizationDecision.objects.filter(
        uid="04A1B2C3", context="remote_app"
    ).aexists()
    # F01: the charger starts and names our remoteStartId.
    await client.result(
        "TransactionEvent",
        tx_event(
            "Started",
            0,
            trigger="RemoteStart",
            id_token="04A1B2C3",
            wh=0,
            remoteStartId=remote_start_id,
        ),
    )
    session = await ChargingSession.objects.aget(charger=charger)
    assert session.remote_start_id == remote_start_id
    await client.close()


async def test_request_start_refused_by_the_engine_sends_nothing(charger, token, api):
    client = await connect201()
    response = await sync_to_async(api.post)(
        "/api/v1/chargers/CP-TEST-1/commands/RequestStartTransaction/",
        {"idToken": {"idToken": "NOT-A-CARD", "type": "Central"}},
        format="json",
    )
    assert response.status_code == 403 and response.json()["reason"] == "unknown_token"
    assert not await Command.objects.filter(charger=charger).aexists()
    await client.close()


async def test_16_remote_start_and_stop_are_translated_for_a_201_charger(charger, token, api):
    client = await connect201()
    call, response = await command(
        api,
        client,
        "RemoteStartTransaction",
        {"idTag": "04A1B2C3", "connectorId": 1},
        {"status": "Accepted"},
    )
    assert call[2] == "RequestStartTransaction"
    assert (
        call[3]["idToken"] == {"idToken": "04A1B2C3", "type": "Central"} and call[3]["evseId"] == 1
    )
    assert response.json()["status"] == "Accepted"
    await client.result(
        "TransactionEvent", tx_event("Started", 0, "CHARGER-TX-9", id_token="04A1B2C3", wh=0)
    )
    session = await ChargingSession.objects.aget(charger=charger)
    call, response = await command(
        api,
        client,
        "RemoteStopTransaction",
        {"transactionId": session.transaction_id},
        {"status": "Accepted"},
    )
    assert call[2] == "RequestStopTransaction" and call[3] == {"transactionId": "CHARGER-TX-9"}
    assert response.json()["status"] == "Accepted"
    await client.close()


@pytest.mark.parametrize(
    ("action", "payload", "sent_action", "sent_payload"),
    [
        ("Reset", {"type": "Hard"}, "Reset", {"type": "Immediate"}),
        ("Reset", {"type": "Soft"}, "Reset", {"type": "OnIdle"}),
        ("UnlockConnector", {"connectorId": 2}, "UnlockConnector", {"evseId": 2, "connectorId": 1}),
        (
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
            "ChangeAvailability",
            {"operationalStatus": "Inoperative"},
        ),
        (
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "connectorId": 1},
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "evse": {"id": 1}},
        ),
        (
            "GetBaseReport",
            {"requestId": 5, "reportBase": "ConfigurationInventory"},
            "GetBaseReport",
            {"requestId": 5, "reportBase": "ConfigurationInventory"},
        ),
    ],
)
async def test_commands_reach_a_201_charger_in_201_words(
    charger, api, action, payload, sent_action, sent_payload
):
    client = await connect201()
    call, response = await command(api, client, action, payload, {"status": "Accepted"})
    assert (call[2], call[3]) == (sent_action, sent_payload)
    assert response.status_code == 200
    stored = await Command.objects.aget(charger=charger)
    assert stored.action == sent_action and stored.status == "answered"
    await client.close()


async def test_a_16_only_command_or_a_bad_201_payload_is_refused(charger, api):
    client = await connect201()
    for action, payload in [
        ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
        ("GetVariables", {"getVariableData": []}),
        ("Reset", {"type": "Sometime"}),
    ]:
        response = await sync_to_async(api.post)(
            f"/api/v1/chargers/CP-TEST-1/commands/{action}/", payload, format="json"
        )
        assert response.status_code == 400, (action, response.content)
    await client.close()


async def test_get_and_set_variables_answers_update_the_device_model(charger, api):
    client = await connect201()
    heartbeat = {"component": {"name": "OCPPCommCtrl"}, "variable": {"name": "HeartbeatInterval"}}
    _, response = await command(
        api,
        client,
        "GetVariables",
        {"getVariableData": [heartbeat]},
        {
            "getVariableResult": [
                {**heartbeat, "attributeStatus": "Accepted", "attributeValue": "300"}
            ]
        },
    )
    assert response.status_code == 200
    row = await DeviceVariable.objects.aget(
        charger=charger, component="OCPPCommCtrl", variable="HeartbeatInterval"
    )
    assert row.value == "300" and row.standardized
    _, response = await command(
        api,
        client,
        "SetVariables",
        {"setVariableData": [{**heartbeat, "attributeValue": "120"}]},
        {"setVariableResult": [{**heartbeat, "attributeStatus": "Accepted"}]},
    )
    await row.arefresh_from_db()
    assert row.value == "120"
    _, response = await command(
        api,
        client,
        "SetVariables",
        {"setVariableData": [{**heartbeat, "attributeValue": "5"}]},
        {"setVariableResult": [{**heartbeat, "attributeStatus": "Rejected"}]},
    )
    await row.arefresh_from_db()
    assert row.value == "120"  # a rejected value is not the charger's
    await client.close()


async def test_16_charger_does_not_take_201_actions(charger, api):
    from tests.ocpp_client import OcppTestClient

    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    response = await sync_to_async(api.post)(
        "/api/v1/chargers/CP-TEST-1/commands/RequestStartTransaction/",
        {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}, "remoteStartId": 1},
        format="json",
    )
    assert response.status_code == 400
    await client.close()


async def test_a_pending_station_takes_set_variables_and_may_send_what_it_was_triggered_for(
    charger, api
):
    # B02.FR.01: the CSMS may configure a Pending station; B02.FR.09: it may send triggered messages.
    charger.registration_status = "Pending"
    await charger.asave()
    client = await connect201()
    assert (
        await client.result(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        )
    )["status"] == "Pending"
    assert (await client.call("Heartbeat", {}))[2] == "SecurityError"
    heartbeat = {"component": {"name": "OCPPCommCtrl"}, "variable": {"name": "HeartbeatInterval"}}
    _, response = await command(
        api,
        client,
        "SetVariables",
        {"setVariableData": [{**heartbeat, "attributeValue": "90"}]},
        {"setVariableResult": [{**heartbeat, "attributeStatus": "Accepted"}]},
    )
    assert response.status_code == 200
    _, response = await command(
        api, client, "TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}
    )
    assert response.status_code == 200
    assert (await client.call("Heartbeat", {}))[0] == 3
    assert (
        await client.call(
            "StatusNotification",
            {
                "timestamp": "2026-11-20T10:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        )
    )[2] == "SecurityError"
    await client.close()
