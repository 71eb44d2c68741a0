"""E01-E07 TransactionEvent: the same Session model, idempotent by (transactionId, seqNo),
late offline-queued events accepted after Ended, never refused."""

from datetime import UTC, datetime

import pytest

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, MeterValue, TransactionEvent
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0, T1, T2, T3 = (
    "2026-11-20T10:00:00Z",
    "2026-11-20T10:15:00Z",
    "2026-11-20T10:30:00Z",
    "2026-11-20T10:45:00Z",
)


async def test_started_updated_ended_make_one_session_with_the_chargers_facts(charger, token):
    client = await connect201()
    started = await client.result(
        "TransactionEvent",
        tx_event(
            "Started",
            0,
            timestamp=T0,
            id_token="04A1B2C3",
            wh=1000,
            context="Transaction.Begin",
            chargingState="Charging",
        ),
    )
    assert started == {"idTokenInfo": {"status": "Accepted"}}
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (
        session.status == "active" and session.id_tag == "04A1B2C3" and session.token_id == token.pk
    )
    assert (
        session.started_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
        and session.meter_start_wh == 1000
    )
    assert session.connector_id == 1 and session.transaction_id > 0
    assert await AuthorizationDecision.objects.filter(
        uid="04A1B2C3", context="start_transaction"
    ).aexists()

    assert (
        await client.result(
            "TransactionEvent",
            tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=6000),
        )
        == {}
    )
    ended = await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            2,
            timestamp=T2,
            trigger="EVDeparted",
            wh=11000,
            context="Transaction.End",
            stopped_reason="EVDisconnected",
        ),
    )
    assert ended == {}
    await session.arefresh_from_db()
    assert session.status == "completed" and session.stop_reason == "EVDisconnected"
    assert session.stopped_at == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (
        1000,
        11000,
        10000,
    )
    assert await MeterValue.objects.filter(session=session).acount() == 3
    await client.close()


async def test_a_repeated_event_changes_nothing(charger, token):
    client = await connect201()
    event = tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    first = await client.result("TransactionEvent", event)
    again = await client.result("TransactionEvent", event)  # our answer was lost; same seqNo
    assert first == again
    assert await TransactionEvent.objects.filter(charger=charger).acount() == 1
    assert await MeterValue.objects.filter(charger=charger).acount() == 1
    assert await ChargingSession.objects.filter(charger=charger).acount() == 1
    await client.close()


async def test_offline_updated_arriving_after_ended_is_accepted_and_counted(charger, token):
    # The Ended carries no meter value: the energy comes from the late, offline-queued Updated.
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 3, timestamp=T3, trigger="StopAuthorized", stopped_reason="Local"),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.meter_stop_wh) == ("completed", 1000)
    # 1 and 2 are missing: the charger is asked at once, and says they are queued.
    ask = await client.receive(timeout=GENEROUS_S)
    assert ask[2] == "GetTransactionStatus" and ask[3] == {"transactionId": "TX-1"}
    await client.send([3, ask[1], {"messagesInQueue": True, "ongoingIndicator": False}])
    late = await client.call(
        "TransactionEvent",
        tx_event("Updated", 2, timestamp=T2, trigger="MeterValuePeriodic", wh=8000, offline=True),
    )
    assert late[0] == 3 and late[2] == {}
    await session.arefresh_from_db()
    assert session.status == "completed" and session.stopped_at == datetime(
        2026, 11, 20, 10, 45, tzinfo=UTC
    )
    assert (session.meter_stop_wh, session.energy_wh) == (8000, 7000)
    assert session.received_stop_at is not None
    assert await TransactionEvent.objects.filter(session=session, offline=True).acount() == 1
    await client.close()


async def test_late_event_older_than_the_ended_reading_does_not_lower_the_final_reading(
    charger, token
):
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=0)
    )
    await client.result("TransactionEvent", tx_event("Ended", 2, timestamp=T3, wh=9000))
    # seqNo 1 is missing: the charger is asked at once (E14), and says it is queued. Answered
    # first: on a busy machine the question came between the late Updated and its answer.
    ask = await client.receive(timeout=GENEROUS_S)
    assert ask[2] == "GetTransactionStatus"
    await client.send([3, ask[1], {"messagesInQueue": True, "ongoingIndicator": False}])
    await client.result(
        "TransactionEvent", tx_event("Updated", 1, timestamp=T1, wh=4000, offline=True)
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.meter_start_wh, session.meter_stop_wh, session.stop_reason) == (
        0,
        9000,
        "Local",
    )
    await client.close()


async def test_events_in_any_order_give_the_same_session(charger, token):
    # The Started was queued and arrives last: the session still starts at its time and reading.
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Updated", 1, timestamp=T1, wh=3000, id_token=None)
    )
    await client.result("TransactionEvent", tx_event("Ended", 2, timestamp=T2, wh=7000))
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=2000, offline=True),
    )
    sessions = [s async for s in ChargingSession.objects.filter(charger=charger)]
    assert len(sessions) == 1
    session = sessions[0]
    assert session.started_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert (session.meter_start_wh, session.meter_stop_wh, session.id_tag) == (
        2000,
        7000,
        "04A1B2C3",
    )
    assert session.token_id == token.pk
    await client.close()


async def test_unknown_token_is_answered_unknown_but_the_transaction_is_kept(charger, token):
    client = await connect201()
    reply = await client.call(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="NOBODY", wh=0)
    )
    assert reply[0] == 3 and reply[2] == {"idTokenInfo": {"status": "Unknown"}}
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.id_tag == "NOBODY" and session.id_tag_status == "Invalid"
    decision = await AuthorizationDecision.objects.aget(uid="NOBODY")
    assert decision.reason == "unknown_token"
    await client.close()


async def test_a_schema_violation_is_recorded_not_refused(charger, token):
    client = await connect201()
    event = tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=500)
    event["triggerReason"] = "VendorSpecialReason"
    reply = await client.call("TransactionEvent", event)
    assert reply[0] == 3
    assert await ChargingSession.objects.filter(
        charger=charger, ocpp_transaction_id="TX-1"
    ).aexists()
    await charger.arefresh_from_db()
    assert charger.schema_violations == 1
    await client.close()


async def test_kwh_and_multiplier_are_read_as_wh(charger, token):
    client = await connect201()
    event = tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3")
    event["meterValue"] = [
        {"timestamp": T0, "sampledValue": [{"value": 12.5, "unitOfMeasure": {"unit": "kWh"}}]}
    ]  # measurand defaults to the import register
    await client.result("TransactionEvent", event)
    end = tx_event("Ended", 1, timestamp=T1)
    end["meterValue"] = [
        {
            "timestamp": T1,
            "sampledValue": [
                {
                    "value": 14,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh", "multiplier": 3},
                }
            ],
        }
    ]
    await client.result("TransactionEvent", end)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (
        12500,
        14000,
        1500,
    )
    await client.close()


async def test_two_transactions_are_two_sessions(charger, token):
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, "TX-A", timestamp=T0, id_token="04A1B2C3", wh=0)
    )
    await client.result("TransactionEvent", tx_event("Ended", 1, "TX-A", timestamp=T1, wh=100))
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-B", timestamp=T2, id_token="04A1B2C3", wh=100),
    )
    sessions = {
        s.ocpp_transaction_id: s async for s in ChargingSession.objects.filter(charger=charger)
    }
    assert set(sessions) == {"TX-A", "TX-B"}
    assert sessions["TX-A"].transaction_id != sessions["TX-B"].transaction_id
    assert sessions["TX-B"].status == "active"
    await client.close()


async def test_meter_values_outside_a_transaction_are_stored(charger):
    client = await connect201()
    payload = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": T0,
                "sampledValue": [
                    {
                        "value": 230.1,
                        "measurand": "Voltage",
                        "phase": "L1-N",
                        "unitOfMeasure": {"unit": "V"},
                    },
                    {"value": 42, "unitOfMeasure": {"unit": "kWh"}},
                ],
            }
        ],
    }
    assert await client.result("MeterValues", payload) == {}
    rows = {m.measurand: m async for m in MeterValue.objects.filter(charger=charger)}
    assert str(rows["Voltage"].value).startswith("230.1") and rows["Voltage"].phase == "L1-N"
    assert (
        rows["Energy.Active.Import.Register"].unit == "kWh"
        and rows["Energy.Active.Import.Register"].value == 42
    )
    await client.close()


async def test_a_transaction_the_evse_left_open_is_superseded_until_its_ended_arrives(
    charger, token
):
    client = await connect201()
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-OLD", timestamp=T0, id_token="04A1B2C3", wh=0),
    )
    await client.result("TransactionEvent", tx_event("Updated", 1, "TX-OLD", timestamp=T1, wh=3000))
    # The charger rebooted without ending TX-OLD and starts a new transaction on the same EVSE.
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-NEW", timestamp=T2, id_token="04A1B2C3", wh=3000),
    )
    old = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-OLD")
    assert (old.status, old.stop_reason, old.meter_stop_wh) == ("completed", "Superseded", 3000)
    assert (
        await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-NEW")
    ).status == "active"
    # Its own Ended, queued, replaces the estimate.
    await client.result(
        "TransactionEvent",
        tx_event(
            "Ended", 2, "TX-OLD", timestamp=T1, wh=3500, stopped_reason="PowerLoss", offline=True
        ),
    )
    await old.arefresh_from_db()
    assert (old.status, old.stop_reason, old.meter_stop_wh) == ("completed", "PowerLoss", 3500)
    await client.close()


async def test_an_older_transaction_arriving_after_a_newer_one_never_leaves_two_active(
    charger, token
):
    client = await connect201()
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-NEW", timestamp=T2, id_token="04A1B2C3", wh=500),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-OLD", timestamp=T0, id_token="04A1B2C3", wh=0, offline=True),
    )
    sessions = {
        s.ocpp_transaction_id: s async for s in ChargingSession.objects.filter(charger=charger)
    }
    assert sessions["TX-NEW"].status == "active"
    assert (sessions["TX-OLD"].status, sessions["TX-OLD"].stop_reason) == (
        "completed",
        "Superseded",
    )
    await client.close()


async def test_meter_start_comes_from_the_first_reading_when_the_started_has_none(charger, token):
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3")
    )
    await client.result("TransactionEvent", tx_event("Updated", 1, timestamp=T1, wh=4000))
    await client.result("TransactionEvent", tx_event("Updated", 2, timestamp=T2, wh=5000))
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.meter_start_wh) == ("active", 4000)
    await client.result("TransactionEvent", tx_event("Ended", 3, timestamp=T3, wh=6000))
    await session.arefresh_from_db()
    assert (session.meter_start_wh, session.meter_stop_wh) == (4000, 6000)
    await client.close()


async def test_two_transactions_that_start_alike_are_two_sessions(charger):
    """A charger whose clock or meter is stuck starts two transactions on one EVSE at the same
    second, same reading, no card: both are stored and answered (the 1.6 rule that takes such a
    start for a resent StartTransaction does not apply; 2.0.1 names its transactions). An EVSE
    runs one transaction at a time: the one that arrived later supersedes the first."""
    client = await connect201()
    for tx_id in ("TX-STUCK-1", "TX-STUCK-2"):
        assert (
            await client.result(
                "TransactionEvent",
                tx_event(
                    "Started",
                    0,
                    tx_id,
                    timestamp="2026-11-20T10:00:00Z",
                    trigger="CablePluggedIn",
                    wh=0,
                ),
            )
            == {}
        )
        assert (
            await client.result(
                "TransactionEvent",
                tx_event(
                    "Updated",
                    1,
                    tx_id,
                    timestamp="2026-11-20T10:00:00Z",
                    trigger="MeterValuePeriodic",
                    wh=0,
                ),
            )
            == {}
        )
    assert await ChargingSession.objects.filter(charger=charger).acount() == 2
    assert await TransactionEvent.objects.filter(charger=charger).acount() == 4
    states = {
        s.ocpp_transaction_id: (s.status, s.stop_reason)
        async for s in ChargingSession.objects.filter(charger=charger)
    }
    assert states == {"TX-STUCK-1": ("completed", "Superseded"), "TX-STUCK-2": ("active", "")}
    await client.close()
