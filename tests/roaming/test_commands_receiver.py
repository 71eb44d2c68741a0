"""Commands receiver: a partner's START_SESSION / STOP_SESSION / UNLOCK_CONNECTOR / RESERVE_NOW /
CANCEL_RESERVATION reach the charger over OCPP and the CommandResult reaches its response_url."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession
from roaming.models import RemoteCommand
from tests.bounds import GENEROUS_S
from tests.ocpp_client import OcppTestClient
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.emsp_stub import EmspStub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


@pytest.fixture
def emsp(operator, stub):
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    return partner


def _token(uid="APP0001", whitelist="ALLOWED"):
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": uid,
        "type": "APP_USER",
        "contract_id": "DE-EMS-C1",
        "issuer": "Stub",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": "2024-01-01T00:00:00Z",
    }


def _post(command, body):
    response = Client().post(
        f"/ocpi/2.2.1/commands/{command}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert response.status_code == 200
    return response.json()


async def _charger(station_id):
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    return client


async def _answer(client, action, reply):
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == action, call
    await client.send([3, call[1], reply])
    return call[3]


def _results(stub, command):
    return [r["body"] for r in stub.requests_to(f"commands/{command}", "POST")]


async def test_start_session_starts_the_charger_and_the_result_reaches_the_response_url(
    operator, stub, emsp
):
    charger = await _charger("PUB-1")
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/START_SESSION/42",
        "token": _token(),
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*2",
        "connector_id": "1",
    }

    request = asyncio.create_task(sync_to_async(_post)("START_SESSION", body))
    payload = await _answer(charger, "RemoteStartTransaction", {"status": "Accepted"})
    answer = await request

    assert (
        answer["status_code"] == 1000
        and answer["data"]["result"] == "ACCEPTED"
        and answer["data"]["timeout"] > 0
    )
    assert payload == {"idTag": "APP0001", "connectorId": 2}
    assert _results(stub, "START_SESSION") == [
        {
            "result": "ACCEPTED",
            "message": [{"language": "en", "text": "The charger answered Accepted."}],
        }
    ]
    assert stub.requests_to("commands/START_SESSION/42")[0]["headers"]["Authorization"].startswith(
        "Token "
    )
    decision = await AuthorizationDecision.objects.aget(uid="APP0001")
    assert (decision.context, decision.reason, decision.station_id) == (
        "remote_msp",
        "accepted_roaming",
        "PUB-1",
    )
    await charger.close()


async def test_start_session_where_roaming_is_off_is_refused_with_a_recorded_decision(
    operator, stub, emsp
):
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/START_SESSION/43",
        "token": _token(),
        "location_id": str(operator["closed"].pk),
    }

    answer = await sync_to_async(_post)("START_SESSION", body)

    assert answer["data"]["result"] == "REJECTED"
    assert "roaming is off" in answer["data"]["message"][0]["text"]
    decision = await AuthorizationDecision.objects.aget(uid="APP0001")
    assert (decision.reason, decision.context, decision.station_id) == (
        "remote_start_roaming_disabled",
        "remote_msp",
        "CLOSED-1",
    )
    remote = await RemoteCommand.objects.aget()
    assert (remote.response, remote.result) == ("REJECTED", "")
    assert _results(stub, "START_SESSION") == []


async def test_a_blocked_provider_and_an_unknown_location_are_refused(operator, stub, emsp):
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/START_SESSION/1",
        "token": _token(),
        "location_id": "999999",
    }
    assert (await sync_to_async(_post)("START_SESSION", body))["status_code"] == 2003
    assert (await sync_to_async(_post)("START_CHARGING", body))["data"]["result"] == "NOT_SUPPORTED"
    emsp.msp.blocked = True
    await emsp.msp.asave()
    body["location_id"] = str(operator["public"].pk)
    answer = await sync_to_async(_post)("START_SESSION", body)
    assert (
        answer["data"]["result"] == "REJECTED" and "blocked" in answer["data"]["message"][0]["text"]
    )


async def test_a_charger_that_rejects_or_does_not_answer_gives_rejected_or_timeout(
    operator, stub, emsp, settings
):
    charger = await _charger("PUB-1")
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/START_SESSION/1",
        "token": _token(),
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
    }
    request = asyncio.create_task(sync_to_async(_post)("START_SESSION", body))
    await _answer(charger, "RemoteStartTransaction", {"status": "Rejected"})
    await request
    settings.OCPP_CALL_TIMEOUT = 1
    body["response_url"] = f"{stub.base}/2.2.1/commands/START_SESSION/2"
    request = asyncio.create_task(sync_to_async(_post)("START_SESSION", body))
    await charger.receive(timeout=10)  # never answered
    await request
    assert [r["result"] for r in _results(stub, "START_SESSION")] == ["REJECTED", "TIMEOUT"]
    await charger.close()


async def test_unlock_connector(operator, stub, emsp):
    charger = await _charger("PUB-1")
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/UNLOCK_CONNECTOR/7",
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*2",
        "connector_id": "1",
    }
    request = asyncio.create_task(sync_to_async(_post)("UNLOCK_CONNECTOR", body))
    assert await _answer(charger, "UnlockConnector", {"status": "Unlocked"}) == {"connectorId": 2}
    assert (await request)["data"]["result"] == "ACCEPTED"
    assert [r["result"] for r in _results(stub, "UNLOCK_CONNECTOR")] == ["ACCEPTED"]
    await charger.close()


async def test_reserve_now_then_cancel_reservation_use_one_ocpp_reservation_id(
    operator, stub, emsp
):
    charger = await _charger("PUB-1")
    reserve = {
        "response_url": f"{stub.base}/2.2.1/commands/RESERVE_NOW/1",
        "token": _token(),
        "expiry_date": "2030-01-01T12:00:00Z",
        "reservation_id": "R-77",
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
    }
    request = asyncio.create_task(sync_to_async(_post)("RESERVE_NOW", reserve))
    sent = await _answer(charger, "ReserveNow", {"status": "Accepted"})
    assert (await request)["data"]["result"] == "ACCEPTED"
    assert (
        sent["idTag"] == "APP0001"
        and sent["connectorId"] == 1
        and sent["expiryDate"] == "2030-01-01T12:00:00Z"
    )

    cancel = {
        "response_url": f"{stub.base}/2.2.1/commands/CANCEL_RESERVATION/1",
        "reservation_id": "R-77",
    }
    request = asyncio.create_task(sync_to_async(_post)("CANCEL_RESERVATION", cancel))
    cancelled = await _answer(charger, "CancelReservation", {"status": "Accepted"})
    await request
    assert cancelled == {"reservationId": sent["reservationId"]}
    assert [r["result"] for r in _results(stub, "RESERVE_NOW")] == ["ACCEPTED"]
    assert [r["result"] for r in _results(stub, "CANCEL_RESERVATION")] == ["ACCEPTED"]
    # An unknown reservation: accepted for processing, answered UNKNOWN_RESERVATION.
    cancel = {
        "response_url": f"{stub.base}/2.2.1/commands/CANCEL_RESERVATION/2",
        "reservation_id": "nope",
    }
    await sync_to_async(_post)("CANCEL_RESERVATION", cancel)
    assert [r["result"] for r in _results(stub, "CANCEL_RESERVATION")] == [
        "ACCEPTED",
        "UNKNOWN_RESERVATION",
    ]
    await charger.close()


async def test_stop_session_only_for_the_partners_own_running_session(operator, stub, emsp):
    from django.utils import timezone

    from authorization.models import Token

    charger = await _charger("PUB-1")
    own = await Token.objects.acreate(uid="APP0009", msp=emsp.msp, type="APP")
    foreign = await Token.objects.acreate(uid="OWN0001", organization=operator["org"])
    mine = await ChargingSession.objects.acreate(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=501,
        id_tag="APP0009",
        token=own,
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    theirs = await ChargingSession.objects.acreate(
        charger=operator["cp_public"],
        connector_id=2,
        transaction_id=502,
        id_tag="OWN0001",
        token=foreign,
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    url = f"{stub.base}/2.2.1/commands/STOP_SESSION/1"
    assert (
        await sync_to_async(_post)(
            "STOP_SESSION", {"response_url": url, "session_id": str(theirs.pk)}
        )
    )["data"]["result"] == "REJECTED"
    assert (await sync_to_async(_post)("STOP_SESSION", {"response_url": url, "session_id": "0"}))[
        "data"
    ]["result"] == "UNKNOWN_SESSION"
    request = asyncio.create_task(
        sync_to_async(_post)("STOP_SESSION", {"response_url": url, "session_id": str(mine.pk)})
    )
    assert await _answer(charger, "RemoteStopTransaction", {"status": "Accepted"}) == {
        "transactionId": 501
    }
    assert (await request)["data"]["result"] == "ACCEPTED"
    assert [r["result"] for r in _results(stub, "STOP_SESSION")] == ["ACCEPTED"]
    await charger.close()


async def test_the_session_a_start_session_opened_says_command_with_the_emsps_reference(
    operator, stub, emsp
):
    charger = await _charger("PUB-1")
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/START_SESSION/44",
        "token": _token(),
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
        "authorization_reference": "REF-42",
    }
    request = asyncio.create_task(sync_to_async(_post)("START_SESSION", body))
    await _answer(charger, "RemoteStartTransaction", {"status": "Accepted"})
    await request

    start = await charger.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "APP0001",
            "meterStart": 0,
            "timestamp": "2026-11-20T08:00:00Z",
        },
    )

    assert start["idTagInfo"]["status"] == "Accepted"
    (put,) = stub.requests_to("sessions", "PUT")
    assert (put["body"]["auth_method"], put["body"]["authorization_reference"]) == (
        "COMMAND",
        "REF-42",
    )
    assert put["body"]["cdr_token"]["type"] == "APP_USER"
    await charger.close()
