"""OCPP 2.1 chargers (issue 53 item 3): the ocpp2.1 subprotocol, frames checked against the 2.1
schemas of the pinned `ocpp` package, message types 5 (CALLRESULTERROR) and 6 (SEND), and every
2.0.1 use case served through the same handlers and domain, by a charger written from the 2.1
schemas (raw frames over Channels' communicator). Every answer we send is checked against the
2.1 response schema of its action, every CALL against the 2.1 request schema."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision
from billing.models import Rate
from billing.services import session_cost
from chargers.handlers.v21 import domain_id_token
from chargers.models import Charger, ChargingSession, Command, OcppMessage
from chargers.ocpp import protocol21
from tests.ocpp_client import OcppTestClient

from .conftest import BOOT, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0, T1, T2 = "2026-11-20T10:00:00Z", "2026-11-20T10:30:00Z", "2026-11-20T11:00:00Z"
LONG_TOKEN = "urn:emi3:contract:" + "A1" * 110  # 238 characters: a 2.1 idToken, not a 2.0.1 one


class Client21(OcppTestClient):
    """A 2.1 charger that checks every answer against the 2.1 response schema of its CALL."""

    async def result(self, action: str, payload: dict) -> dict:
        protocol21.check_call(action, payload)  # the test sends only valid 2.1 CALLs
        answer = await super().result(action, payload)
        protocol21.RESPONSE_VALIDATORS[action](answer)
        return answer

    async def csms_call(self, timeout: float = 10) -> list:
        call = await self.receive(timeout=timeout)
        assert call[0] == 2, call
        protocol21.check_outgoing(call[2], call[3])
        return call


async def connect21(station_id: str = "CP-TEST-1", offered=("ocpp2.1",)) -> Client21:
    client = Client21(station_id, subprotocols=list(offered))
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp2.1", subprotocol
    return client


def event21(*args, **kwargs) -> dict:
    """A 2.0.1-shaped TransactionEvent with fields only 2.1 has (refused by the 2.0.1 schema)."""
    payload = tx_event(*args, **kwargs)
    payload["transactionInfo"]["operationMode"] = "ChargingOnly"
    payload["transactionInfo"]["tariffId"] = "T-2026"
    payload["evseSleep"] = False
    if "idToken" in payload:
        payload["idToken"]["type"] = "MacAddress"  # 2.1: a free string, no 2.0.1 enum value
    return payload


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


@pytest.mark.parametrize(
    "offered",
    [("ocpp2.1",), ("ocpp1.6", "ocpp2.0.1", "ocpp2.1"), ("ocpp2.0.1", "ocpp2.1")],
    ids=["only-2.1", "all-three", "2.0.1-first"],
)
async def test_ocpp21_is_accepted_and_preferred_and_shown(charger, offered):
    client = await connect21(offered=offered)
    answer = await client.result("BootNotification", BOOT)
    assert answer["status"] == "Accepted"
    await client.close()
    stored = await Charger.objects.aget(pk=charger.pk)
    assert stored.ocpp_version == "2.1" and stored.get_ocpp_version_display() == "OCPP 2.1"
    assert stored.speaks_v2()


async def test_a_charger_offering_2_0_1_and_1_6_still_gets_2_0_1(charger):
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp1.6", "ocpp2.0.1"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp2.0.1"
    await client.close()


async def test_boot_authorize_transaction_remote_stop_and_price(charger, token, prop, api):
    """The issue's outside check, in one socket: boot, authorize, a transaction with meter values
    and 2.1-only fields, a remote stop by the protocol-neutral command, a priced session whose
    final totalCost is billing's."""
    await Rate.objects.acreate(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("19"),
        prices_include_tax=False,
    )
    client = await connect21()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    await client.result(
        "StatusNotification",
        {"timestamp": T0, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )
    accepted = await client.result(
        "Authorize", {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}
    )
    assert accepted["idTokenInfo"]["status"] == "Accepted"
    # 2.1: a 255-character token of a free type; no card of ours can be it (Unknown, recorded).
    unknown = await client.result(
        "Authorize", {"idToken": {"idToken": LONG_TOKEN, "type": "VendorToken"}}
    )
    assert unknown["idTokenInfo"]["status"] == "Unknown"
    assert await AuthorizationDecision.objects.filter(uid=domain_id_token(LONG_TOKEN)).aexists()

    started = await client.result(
        "TransactionEvent", event21("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    )
    assert started["idTokenInfo"]["status"] == "Accepted"
    await client.result(
        "TransactionEvent",
        event21("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=6000),
    )
    await client.result(
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": T1,
                    "sampledValue": [
                        {
                            "value": 7200,
                            "measurand": "Power.Active.Import",
                            "unitOfMeasure": {"unit": "W"},
                        }
                    ],
                }
            ],
        },
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.id_tag == "04A1B2C3" and session.stopped_at is None

    # A remote stop in the 1.6 words every caller uses, sent as a valid 2.1 CALL.
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/CP-TEST-1/commands/RemoteStopTransaction/",
            {"transactionId": session.transaction_id},
            format="json",
        )
    )
    call = await client.csms_call()
    assert call[2] == "RequestStopTransaction" and call[3] == {"transactionId": "TX-1"}
    await client.send([3, call[1], {"status": "Accepted"}])
    response = await request
    assert response.status_code == 200 and response.json()["status"] == "Accepted"

    ended = await client.result(
        "TransactionEvent",
        event21(
            "Ended",
            2,
            timestamp=T2,
            trigger="RemoteStop",
            wh=11000,
            context="Transaction.End",
            stopped_reason="Remote",
        ),
    )
    session = await ChargingSession.objects.select_related("charger__property").aget(pk=session.pk)
    assert session.stopped_at == datetime(2026, 11, 20, 11, tzinfo=UTC)
    assert session.stop_reason == "Remote"
    assert session.meter_start_wh == 1000 and session.meter_stop_wh == 11000
    cost = await sync_to_async(session_cost)(session)
    # 1.00 + 10 kWh x 0.40, plus 19 % tax: priced like any 2.0.1 session, by billing.
    assert cost.total == Decimal("5.95")
    assert Decimal(str(ended["totalCost"])) == cost.total
    await client.close()


async def test_a_long_id_token_starts_and_stops_its_transaction_under_one_name(charger):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    started = await client.result(
        "TransactionEvent", event21("Started", 0, id_token=LONG_TOKEN, wh=0)
    )
    assert started["idTokenInfo"]["status"] == "Unknown"
    await client.result(
        "TransactionEvent",
        event21("Ended", 1, trigger="StopAuthorized", id_token=LONG_TOKEN, wh=500),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    name = domain_id_token(LONG_TOKEN)
    assert len(name) == 36 and name.startswith(LONG_TOKEN[:20])
    assert session.id_tag == name and session.stop_id_tag == name
    # The message log keeps the token as the charger sent it.
    logged = await OcppMessage.objects.filter(
        charger=charger, direction="in", action="TransactionEvent"
    ).afirst()
    assert logged.payload["idToken"]["idToken"] == LONG_TOKEN
    await client.close()


def test_long_tokens_get_distinct_case_insensitive_names():
    assert domain_id_token("04A1B2C3") == "04A1B2C3"
    assert domain_id_token("x" * 36) == "x" * 36
    a, b = "A" * 200 + "1", "A" * 200 + "2"
    assert domain_id_token(a) != domain_id_token(b)
    assert domain_id_token(a)[20:] == domain_id_token(a.lower())[20:]  # idTokens ignore case


async def test_a_2_1_frame_is_checked_against_the_2_1_schemas(charger):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    # 2.1 limits still hold: 256 characters is too long.
    error = await client.call("Authorize", {"idToken": {"idToken": "x" * 256, "type": "ISO14443"}})
    assert error[0] == 4 and error[2] == "PropertyConstraintViolation"
    # A field neither version knows.
    error = await client.call("Heartbeat", {"extra": 1})
    assert error[0] == 4 and error[2] == "FormatViolation"
    # A TransactionEvent with 2.1 fields is no violation on a 2.1 connection.
    await client.result("TransactionEvent", event21("Started", 0, wh=0))
    logged = await OcppMessage.objects.aget(
        charger=charger, action="TransactionEvent", direction="in"
    )
    assert logged.violation == ""
    await client.close()


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("NotifyDERAlarm", {"controlType": "FreqDroop", "timestamp": T0}, "NotSupported"),
        ("VatNumberValidation", {"vatNumber": "DE123456789"}, "NotSupported"),
        ("SetDERControl", {}, "NotSupported"),  # the CSMS sends it, not a Charging Station
        ("NotifyPeriodicEventStream", {}, "NotSupported"),  # only ever a SEND
        ("ChargeFasterPlease", {}, "NotImplemented"),
    ],
)
async def test_actions_we_do_not_serve_get_no_made_up_success(charger, action, payload, code):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    error = await client.call(action, payload)
    assert error[0] == 4 and error[2] == code, error
    await client.close()


async def test_send_and_callresulterror_are_logged_and_never_answered(charger):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    stream = {
        "id": 1,
        "pending": 0,
        "basetime": T0,
        "data": [{"t": 0, "v": "230.1"}],
    }
    await client.send([6, "s1", "NotifyPeriodicEventStream", stream])
    await client.send([6, "s2", "NotifyPeriodicEventStream", {"id": "x"}])
    await client.send([5, "r1", "FormatViolation", "totalCost is not a number", {}])
    assert await client.communicator.receive_nothing(timeout=1)
    # The connection goes on, and all three are in the log with their types.
    assert (await client.result("Heartbeat", {}))["currentTime"]

    async def logged() -> dict:
        rows = OcppMessage.objects.filter(charger=charger, unique_id__in=["s1", "s2", "r1"])
        return {row.unique_id: row async for row in rows}

    deadline = asyncio.get_running_loop().time() + 30
    rows = await logged()
    while len(rows) < 3 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        rows = await logged()
    assert rows["s1"].message_type == 6 and rows["s1"].violation == ""
    assert rows["s2"].message_type == 6 and "OccurrenceConstraintViolation" in rows["s2"].violation
    assert rows["r1"].message_type == 5
    await client.close()


async def test_an_invalid_callresult_gets_a_callresulterror_and_is_kept(charger, api):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/CP-TEST-1/commands/Reset/", {"type": "Hard"}, format="json"
        )
    )
    call = await client.csms_call()
    assert call[2] == "Reset" and call[3] == {"type": "Immediate"}
    await client.send([3, call[1], {"status": "Sure"}])  # not a ResetStatusEnumType
    reply = await client.receive()
    assert reply[0] == 5 and reply[1] == call[1] and reply[2] == "PropertyConstraintViolation"
    response = await request
    assert response.status_code == 200
    command = await Command.objects.aget(charger=charger, action="Reset")
    assert command.response == {"status": "Sure"}
    await client.close()


async def test_the_api_takes_2_1_actions_for_a_2_1_charger_only(charger, api):
    client = await connect21()
    await client.result("BootNotification", BOOT)
    payload = {"tariffId": "T-1"}
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/CP-TEST-1/commands/GetTariffs/", {"evseId": 1}, format="json"
        )
    )
    call = await client.csms_call()
    assert call[2] == "GetTariffs"
    await client.send([3, call[1], {"status": "NoTariff"}])
    assert (await request).status_code == 200
    await client.close()
    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    refused = await sync_to_async(api.post)(
        "/api/v1/chargers/CP-TEST-1/commands/GetTariffs/", payload, format="json"
    )
    assert refused.status_code == 400, json.dumps(refused.json())


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("RemoteStartTransaction", {"idTag": "04A1B2C3", "connectorId": 1}),
        ("Reset", {"type": "Hard"}),
        ("UnlockConnector", {"connectorId": 2}),
        ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}),
        ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
        (
            "ReserveNow",
            {
                "connectorId": 1,
                "expiryDate": "2026-11-20T12:00:00Z",
                "idTag": "04A1B2C3",
                "reservationId": 7,
            },
        ),
        ("ClearCache", {}),
    ],
)
def test_the_commands_we_translate_are_valid_2_1_calls(action, payload):
    from chargers.ocpp import v201_commands

    translated = v201_commands.translate(action, payload, native=protocol21.CSMS_ACTIONS)
    protocol21.check_outgoing(translated.action, translated.payload)


def test_the_power_profiles_are_valid_2_1_calls():
    from power import profiles

    now = datetime(2026, 11, 20, 10, tzinfo=UTC)
    built = [
        profiles.safe_default(profiles.V201, 16, now=now),
        *profiles.leases(profiles.V201, 32, now=now, valid_to=now.replace(hour=11)),
        profiles.session_limit(
            profiles.V201, connector_id=1, transaction_id="TX-1", limit_a=10, number_phases=3
        ),
    ]
    for profile in built:
        protocol21.check_outgoing(profile.action, profile.payload)
    action, payload = profiles.clear_session(profiles.V201, 1)
    protocol21.check_outgoing(action, payload)
