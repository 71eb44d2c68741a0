"""The OCPP 1.6J websocket endpoint, driven frame by frame like a charger would."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from authorization.models import AuthorizationDecision
from chargers.messagelog.log import writer
from chargers.models import Charger, ChargingSession, Connector, OcppMessage, OrphanStop
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"


async def connected(station_id="CP-TEST-1", **kwargs) -> OcppTestClient:
    client = OcppTestClient(station_id, **kwargs)
    ok, subprotocol = await client.connect()
    assert ok, subprotocol
    return client


async def test_unknown_station_is_refused(charger):
    ok, _ = await OcppTestClient("NOPE-123").connect()
    assert not ok
    assert not await Charger.objects.filter(station_id="NOPE-123").aexists()


async def test_station_id_is_case_sensitive(charger):
    ok, _ = await OcppTestClient("cp-test-1").connect()
    assert not ok


async def test_handshake_without_a_supported_subprotocol_is_refused(charger):
    # OCPP-J 1.6 §3.2: other subprotocols offered -> handshake completed without one, then closed.
    # (ocpp2.0.1 is spoken too: tests/chargers/v201.)
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.0"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol is None
    assert (await client.communicator.receive_output(timeout=5))["type"] == "websocket.close"
    assert not (await Charger.objects.aget(pk=charger.pk)).connection_id
    # None offered at all: refused before the upgrade.
    ok, _ = await OcppTestClient("CP-TEST-1", subprotocols=[]).connect()
    assert not ok


async def test_password_protected_charger_needs_the_right_password(charger):
    await sync_to_async(charger.set_ocpp_password)("correct-horse-battery")
    charger.security_profile = 1  # the factory's chargers are at profile 0
    await charger.asave()
    assert not (await OcppTestClient("CP-TEST-1").connect())[0]
    assert not (await OcppTestClient("CP-TEST-1", password="wrong-password-123").connect())[0]
    client = await connected(password="correct-horse-battery")
    await client.close()
    assert "correct-horse-battery" not in charger.ocpp_password_hash


async def test_accepted_subprotocol_is_ocpp16(charger):
    # A charger offering 2.0.1 too gets 2.0.1 (tests/chargers/v201).
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp1.5", "ocpp1.6"])
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp1.6"
    await client.close()


async def test_boot_heartbeat_and_status_are_stored(charger):
    client = await connected()
    boot = await client.result(
        "BootNotification",
        {
            "chargePointVendor": "Alfen",
            "chargePointModel": "Eve",
            "chargePointSerialNumber": "SN1",
            "firmwareVersion": "6.1",
        },
    )
    assert (
        boot["status"] == "Accepted" and boot["interval"] > 0 and boot["currentTime"].endswith("Z")
    )
    assert "currentTime" in await client.result("Heartbeat", {})
    assert (
        await client.result(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": TS},
        )
        == {}
    )
    await charger.arefresh_from_db()
    assert (charger.vendor, charger.model, charger.firmware_version) == ("Alfen", "Eve", "6.1")
    assert charger.is_online()
    connector = await Connector.objects.aget(charger=charger, connector_id=1)
    assert connector.status == "Available"
    await client.close()
    await charger.arefresh_from_db()
    assert not charger.is_online()


async def test_authorize_known_token_accepted_and_unknown_invalid(charger, token):
    client = await connected()
    assert (await client.result("Authorize", {"idTag": "04a1b2c3"}))["idTagInfo"][
        "status"
    ] == "Accepted"
    assert (await client.result("Authorize", {"idTag": "DEADBEEF"}))["idTagInfo"][
        "status"
    ] == "Invalid"
    await client.close()


async def test_a_card_with_text_the_database_cannot_hold_is_refused_with_a_reason_not_an_error(
    charger, token
):
    """NUL and a lone surrogate are valid JSON; PostgreSQL refuses both. The card is escaped once
    before the handlers (v16.storable_payload): no such card exists, so Invalid, decision kept."""
    client = await connected()
    for tag in ("04A1B2C3\u0000", "\ud800AB"):
        assert (await client.result("Authorize", {"idTag": tag}))["idTagInfo"][
            "status"
        ] == "Invalid"
    decisions = [
        d
        async for d in AuthorizationDecision.objects.filter(station_id=charger.station_id)
        .order_by("id")
        .values_list("uid", flat=True)
    ]
    assert decisions == ["04A1B2C3\\u0000", "\\ud800AB"]
    await client.close()


async def test_transaction_with_meter_values_and_energy(charger, token):
    client = await connected()
    start = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": TS},
    )
    tx = start["transactionId"]
    assert start["idTagInfo"]["status"] == "Accepted"
    assert 0 < tx < 2**31
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2026-11-20T10:10:00Z",
                    "sampledValue": [{"value": "4500", "unit": "Wh"}],
                }
            ],
        },
    )
    stop = await client.result(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 8500,
            "timestamp": "2026-11-20T11:00:00+01:00",
            "reason": "EVDisconnected",
            "idTag": "04A1B2C3",
        },
    )
    assert stop == {"idTagInfo": {"status": "Accepted"}}
    await writer.flush()
    session = await ChargingSession.objects.aget(transaction_id=tx)
    assert session.energy_wh == 7500 and session.status == "completed"
    assert session.stopped_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert await session.meter_values.acount() == 1
    await client.close()


async def test_repeated_start_returns_the_same_transaction(charger, token):
    client = await connected()
    payload = {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS}
    first = await client.result("StartTransaction", payload)
    second = await client.result("StartTransaction", payload)
    assert first["transactionId"] == second["transactionId"]
    assert await ChargingSession.objects.acount() == 1
    await client.close()


async def test_stop_for_unknown_transaction_is_acknowledged_and_kept(charger):
    client = await connected()
    payload = {"transactionId": 424242, "meterStop": 10, "timestamp": TS}
    assert await client.result("StopTransaction", payload) == {}
    assert await client.result("StopTransaction", payload) == {}
    assert await OrphanStop.objects.acount() == 1
    await client.close()


async def test_repeated_stop_changes_nothing(charger, token):
    client = await connected()
    tx = (
        await client.result(
            "StartTransaction",
            {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
        )
    )["transactionId"]
    await client.result(
        "StopTransaction",
        {"transactionId": tx, "meterStop": 100, "timestamp": "2026-11-20T10:30:00Z"},
    )
    await client.result(
        "StopTransaction",
        {"transactionId": tx, "meterStop": 999, "timestamp": "2026-11-20T12:30:00Z"},
    )
    session = await ChargingSession.objects.aget(transaction_id=tx)
    assert session.meter_stop_wh == 100
    await client.close()


async def test_offline_queued_transaction_with_old_timestamps_is_processed(charger, token):
    client = await connected()
    old = "2024-01-01T08:00:00.1234567Z"
    tx = (
        await client.result(
            "StartTransaction",
            {"connectorId": 2, "idTag": "04A1B2C3", "meterStart": 5, "timestamp": old},
        )
    )["transactionId"]
    await client.result(
        "StopTransaction",
        {"transactionId": tx, "meterStop": 2005, "timestamp": "2024-01-01T09:00:00Z"},
    )
    session = await ChargingSession.objects.aget(transaction_id=tx)
    assert session.started_at.year == 2024 and session.energy_wh == 2000
    await client.close()


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "FormationViolation"),
        ('{"a": 1}', "FormationViolation"),
        ('[2, "x1", "Heartbeat"]', "ProtocolError"),
        ('[2, "x2", "FooBar", {}]', "NotImplemented"),
        ('[2, "x3", "Reset", {"type": "Hard"}]', "NotSupported"),
        (
            '[2, "x4", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"}]',
            "TypeConstraintViolation",
        ),
        (
            '[2, "x5", "StatusNotification", {"connectorId": 1, "errorCode": "Broken", "status": "Available"}]',
            "PropertyConstraintViolation",
        ),
        (
            '[2, "x6", "StatusNotification", {"connectorId": 1, "status": "Available"}]',
            "OccurenceConstraintViolation",
        ),
        ('[2, "x7", "Heartbeat", {"extra": true}]', "FormationViolation"),
        ('[9, "x8", "Heartbeat", {}]', "ProtocolError"),
    ],
)
async def test_bad_frames_get_callerror_and_connection_stays_open(charger, frame, code):
    client = await connected()
    reply = await client.send_raw(frame)
    assert reply[0] == 4 and reply[2] == code, reply
    assert len(reply) == 5 and reply[4] == {} or isinstance(reply[4], dict)
    assert "currentTime" in await client.result("Heartbeat", {})
    await client.close()


async def test_every_frame_is_logged_with_action_on_results(charger, token):
    client = await connected()
    await client.result("Authorize", {"idTag": "04A1B2C3"})
    await client.send_raw("garbage")
    await writer.flush()
    rows = [row async for row in OcppMessage.objects.filter(charger=charger).order_by("id")]
    assert [(r.direction, r.message_type, r.action) for r in rows] == [
        ("in", 2, "Authorize"),
        ("out", 3, "Authorize"),
        ("in", None, ""),
        ("out", 4, ""),
    ]
    assert rows[0].id_tag == "04A1B2C3" and rows[2].raw == "garbage"
    await client.close()


async def test_newer_connection_replaces_older_one(charger):
    first = await connected()
    second = await connected()
    closed = await first.communicator.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    await charger.arefresh_from_db()
    assert charger.is_online()
    await first.close()
    await charger.arefresh_from_db()
    assert charger.is_online(), (
        "the late disconnect of the old socket must not mark the charger offline"
    )
    await second.close()


async def test_remote_start_command_reaches_the_charger_and_returns_its_answer(charger):
    from chargers.devices.commands import send_command

    client = await connected()

    async def charger_side():
        call = await client.receive()
        assert call[0] == 2 and call[2] == "RemoteStartTransaction"
        assert call[3] == {"connectorId": 1, "idTag": "04A1B2C3"}
        await client.send([3, call[1], {"status": "Accepted"}])

    answering = asyncio.create_task(charger_side())
    await charger.arefresh_from_db()
    command = await send_command(
        charger, "RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"}, timeout=5
    )
    await answering
    assert command.status == "answered" and command.response == {"status": "Accepted"}
    await writer.flush()
    result_row = await OcppMessage.objects.filter(
        charger=charger, direction="in", message_type=3
    ).alast()
    assert result_row.action == "RemoteStartTransaction"
    await client.close()


async def test_command_to_silent_charger_times_out(charger):
    from chargers.devices.commands import CommandTimeout, send_command

    client = await connected()
    await charger.arefresh_from_db()
    with pytest.raises(CommandTimeout):
        await send_command(charger, "Reset", {"type": "Soft"}, timeout=1)
    await client.close()


async def test_a_command_whose_socket_closes_before_the_answer_is_told_as_unknown(charger):
    """The charger got the Reset and its socket closed (it reset, or it reconnected) before it
    answered: the person who asked is not told it failed or timed out, but that whether it was
    done is not known, and to look before sending it again (it may do it twice)."""
    from chargers.devices.commands import CommandTimeout, send_command

    client = await connected()
    await charger.arefresh_from_db()
    asked = asyncio.create_task(send_command(charger, "Reset", {"type": "Hard"}, timeout=30))
    call = await client.receive()
    assert call[2] == "Reset"
    await client.close()
    with pytest.raises(CommandTimeout) as raised:
        await asked
    assert raised.value.disconnected and raised.value.command.unique_id == call[1]
    told = raised.value.told("Reset")
    assert "connection closed before it answered" in told and "not known" in told, told
    assert "did not answer in time" not in told


async def test_a_command_whose_time_runs_out_behind_an_unanswered_one_is_never_sent(charger):
    """OCPP-J allows one outstanding CALL per connection. A command queued behind a CALL the
    charger has not answered is not sent once its own time is up: the person who asked is told
    it was not sent (not that no process held the connection), and the charger never gets it
    later, after they were told it failed and may have asked again."""
    from chargers.connections.consumer import ANSWER_MIN_S, queue_wait_s
    from chargers.devices.commands import CommandTimeout, send_command

    client = await connected()
    await charger.arefresh_from_db()
    first = asyncio.create_task(
        send_command(charger, "GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout=60)
    )
    call = await client.receive()
    assert call[2] == "GetConfiguration"
    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    with pytest.raises(CommandTimeout) as raised:
        await send_command(charger, "Reset", {"type": "Soft"}, timeout=ANSWER_MIN_S + 0.5)
    # It waited its whole turn (a lower bound: a busy machine only makes it longer).
    assert loop.time() - asked_at >= queue_wait_s(ANSWER_MIN_S + 0.5) - 0.05
    assert raised.value.not_sent
    assert raised.value.command.status == "timeout" and not raised.value.command.unique_id
    assert "(GetConfiguration, sent" in raised.value.command.error
    assert raised.value.told("Reset").startswith("Reset was not sent")

    await client.send([3, call[1], {"configurationKey": []}])
    assert (await first).status == "answered"
    assert await client.communicator.receive_nothing(timeout=0.5), "the Reset was sent after all"
    await writer.flush()
    assert not await OcppMessage.objects.filter(charger=charger, action="Reset").aexists()
    await client.close()


async def test_a_power_limit_not_sent_behind_an_unanswered_call_says_so(charger):
    """Power records why a limit did not take: one never sent is not "no answer within"."""
    from chargers.connections.consumer import ANSWER_MIN_S
    from chargers.devices.commands import send_command
    from power.enforcement import Send, send_all
    from power.profiles import Profile

    client = await connected()
    await charger.arefresh_from_db()
    first = asyncio.create_task(send_command(charger, "GetConfiguration", {}, timeout=60))
    call = await client.receive()
    payload = {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
            },
        },
    }
    send = Send(charger, Profile(connector_id=0, purpose="max", limit_a=16, payload=payload))
    with override_settings(POWER_COMMAND_TIMEOUT=ANSWER_MIN_S + 0.5):
        [outcome] = await sync_to_async(send_all)([send])
    assert not outcome.accepted and not outcome.offline
    assert outcome.reason.startswith("Not sent: the charger had not yet answered"), outcome.reason
    await client.send([3, call[1], {"configurationKey": []}])
    await first
    await client.close()


def test_a_short_command_may_wait_half_its_timeout_for_its_turn():
    """The power sweep's limits (10 s) and short commands may still wait for their turn."""
    from chargers.connections.consumer import queue_wait_s

    assert queue_wait_s(2) == 1 and queue_wait_s(10) == 5 and queue_wait_s(30) == 25


async def test_a_command_queued_behind_one_answered_in_time_is_sent(charger):
    from chargers.connections.consumer import ANSWER_MIN_S
    from chargers.devices.commands import send_command

    client = await connected()
    await charger.arefresh_from_db()
    first = asyncio.create_task(
        send_command(charger, "GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout=60)
    )
    call = await client.receive()
    second = asyncio.create_task(
        send_command(charger, "Reset", {"type": "Soft"}, timeout=ANSWER_MIN_S + 60)
    )
    assert await client.communicator.receive_nothing(timeout=0.2), "two CALLs outstanding"
    await client.send([3, call[1], {"configurationKey": []}])
    reset = await client.receive()
    assert reset[2] == "Reset"
    await client.send([3, reset[1], {"status": "Accepted"}])
    assert (await first).status == "answered"
    assert (await second).response == {"status": "Accepted"}
    await client.close()


async def test_command_to_offline_charger_is_refused(charger):
    from chargers.devices.commands import ChargerOffline, send_command

    with pytest.raises(ChargerOffline):
        await send_command(charger, "Reset", {"type": "Soft"})


async def test_invalid_command_payload_is_refused_before_sending(charger):
    from chargers.devices.commands import InvalidCommand, send_command

    with pytest.raises(InvalidCommand):
        await send_command(charger, "Reset", {"type": "Sideways"})


def test_a_watched_charger_missing_from_an_earlier_batch_is_still_seen_as_watched():
    from django.core.cache import cache

    from chargers.messagelog.log import MessageLogWriter, log_watch_key

    writer_under_test = MessageLogWriter()
    cache.set(log_watch_key(2), 1, 60)
    assert writer_under_test._watched_memo({1}) == set()
    assert writer_under_test._watched_if_fresh({1, 2}) is None, (
        "charger 2 was never asked: not fresh"
    )
    assert writer_under_test._watched_memo({1, 2}) == {2}
    assert writer_under_test._watched_if_fresh({1, 2}) == {2}


async def test_a_new_start_closes_the_session_a_rebooted_charger_left_running(charger, token):
    client = await connected()
    old = (
        await client.result(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "04A1B2C3",
                "meterStart": 1000,
                "timestamp": "2026-11-20T08:00:00Z",
            },
        )
    )["transactionId"]
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": old,
            "meterValue": [
                {
                    "timestamp": "2026-11-20T08:30:00Z",
                    "sampledValue": [{"value": "3.5", "unit": "kWh"}],
                }
            ],
        },
    )
    await writer.flush()
    # The charger lost power and reboots without a StopTransaction, then starts anew.
    await client.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    new = (
        await client.result(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "04A1B2C3",
                "meterStart": 3600,
                "timestamp": "2026-11-20T09:00:00Z",
            },
        )
    )["transactionId"]
    closed = await ChargingSession.objects.aget(transaction_id=old)
    assert (closed.status, closed.stop_reason, closed.meter_stop_wh) == (
        "completed",
        "Superseded",
        3500,
    )
    assert closed.stopped_at.isoformat() == "2026-11-20T08:30:00+00:00"
    assert (await ChargingSession.objects.aget(transaction_id=new)).status == "active"
    # The charger's own stop, queued while it was off, still replaces the estimate once.
    await client.result(
        "StopTransaction",
        {
            "transactionId": old,
            "meterStop": 3590,
            "timestamp": "2026-11-20T08:41:00Z",
            "reason": "PowerLoss",
        },
    )
    closed = await ChargingSession.objects.aget(transaction_id=old)
    assert (closed.stop_reason, closed.meter_stop_wh) == ("PowerLoss", 3590)
    await client.result(
        "StopTransaction",
        {"transactionId": old, "meterStop": 9999, "timestamp": "2026-11-20T10:00:00Z"},
    )
    assert (await ChargingSession.objects.aget(transaction_id=old)).meter_stop_wh == 3590
    await client.close()


async def test_a_charger_leaving_never_waits_for_the_sync_thread(charger):
    """Channels closes Django connections on its one thread-sensitive thread after every
    disconnect; 10,000 chargers leaving at a deploy's SIGTERM queued there one by one. Ours does
    not: with that thread blocked, a charger still leaves and its socket is recorded closed."""
    import threading

    client = await connected()
    assert (
        await client.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    )["status"] == "Accepted"
    release = threading.Event()
    blocker = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)())
    try:
        # asgiref's wait() cancels an application that has not finished in time, silently.
        await client.communicator.disconnect(timeout=5)
        assert not client.communicator.future.cancelled(), "the consumer waited for the sync thread"
    finally:
        release.set()
        await blocker
    await charger.arefresh_from_db()  # Django's async ORM itself needs that thread
    assert charger.connection_id == ""
