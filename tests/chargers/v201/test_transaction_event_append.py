"""Steady transactions: in-order Updated events that can only add readings are appended in
batches (chargers.sessions.transaction_events, services_v201.transaction_events_append) instead of one
locked transaction and refold each; the session they give is the same, nothing is lost or doubled."""

import json
from datetime import UTC, datetime

import pytest

from billing.models import SessionCharge
from chargers.messagelog.log import writer
from chargers.models import (
    ChargingSession,
    MeterValue,
    OcppDeadLetter,
    OcppMessage,
    TransactionEvent,
)
from chargers.ocpp import quirks
from chargers.sessions import closing, transaction_events
from chargers.sessions import transactions as services_v201

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


def at(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00Z"


async def _steady(client) -> None:
    """Started, then one Updated through the full path, which tells the socket it is steady."""
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=1500),
    )


def _record_full_path(monkeypatch) -> list[int]:
    """The seqNos of the Updated and Ended events that took the full path
    (services_v201.transaction_event_record; a Started opens its session in a batch on
    PostgreSQL, chargers.sessions.transactions.started_batched, and through the full path elsewhere)."""
    full_path: list[int] = []
    record = services_v201.transaction_event_record

    def recording(**kwargs):
        if kwargs["payload"]["eventType"] != "Started":
            full_path.append(kwargs["payload"]["seqNo"])
        return record(**kwargs)

    monkeypatch.setattr(services_v201, "transaction_event_record", recording)
    return full_path


async def test_steady_updates_are_appended_stored_before_the_answer_and_end_in_the_same_session(
    charger, token, monkeypatch
):
    full_path = _record_full_path(monkeypatch)
    client = await connect201()
    # A Started with its energy reading makes the transaction steady at once.
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000)
    )
    batches = transaction_events._appends.batches
    for seq in range(1, 6):
        assert (
            await client.result(
                "TransactionEvent",
                tx_event(
                    "Updated",
                    seq,
                    timestamp=at(seq),
                    trigger="MeterValuePeriodic",
                    wh=1000 + 500 * seq,
                ),
            )
            == {}
        )
        # Committed before the charger got its answer.
        assert await TransactionEvent.objects.filter(charger=charger, seq_no=seq).aexists()
        assert (
            await MeterValue.objects.filter(
                charger=charger, timestamp=datetime(2026, 11, 20, 10, seq, tzinfo=UTC)
            ).acount()
            == 1
        )
    assert transaction_events._appends.batches == batches + 5  # all five went the appending way
    assert full_path == []  # and none of them was refused by it and refolded
    await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            6,
            timestamp=at(6),
            trigger="EVDeparted",
            wh=4000,
            stopped_reason="EVDisconnected",
        ),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.meter_start_wh, session.meter_stop_wh) == (
        "completed",
        1000,
        4000,
    )
    assert (
        session.stopped_at == datetime(2026, 11, 20, 10, 6, tzinfo=UTC)
        and session.stop_reason == "EVDisconnected"
    )
    assert await TransactionEvent.objects.filter(session=session).acount() == 7
    assert full_path == []  # the in-order Ended with its reading ended the session by the batch too
    assert await MeterValue.objects.filter(session=session).acount() == 7
    # Announced finished once committed: billing priced it before the charger got its answer.
    assert await SessionCharge.objects.filter(session=session).aexists()
    await client.close()


async def test_a_resent_event_of_a_steady_transaction_is_a_duplicate_not_a_second_row(
    charger, token
):
    client = await connect201()
    await _steady(client)
    event = tx_event("Updated", 2, timestamp=at(2), trigger="MeterValuePeriodic", wh=2000)
    assert await client.result("TransactionEvent", event) == {}
    assert await client.result("TransactionEvent", event) == {}  # our answer was lost; same seqNo
    assert await TransactionEvent.objects.filter(charger=charger, seq_no=2).acount() == 1
    assert (
        await MeterValue.objects.filter(
            charger=charger, timestamp=datetime(2026, 11, 20, 10, 2, tzinfo=UTC)
        ).acount()
        == 1
    )
    await client.close()


async def test_an_older_reading_or_a_session_closed_elsewhere_takes_the_full_path(charger, token):
    client = await connect201()
    await _steady(client)
    batches = transaction_events._appends.batches
    # An offline-queued reading older than the last one may change the fold: never appended.
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 3, timestamp=at(0), trigger="MeterValuePeriodic", wh=900, offline=True),
    )
    assert transaction_events._appends.batches == batches
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (
        await TransactionEvent.objects.filter(charger=charger, seq_no=3, offline=True).acount() == 1
    )
    # Steady again; then something else closes the session (the stale-transaction check).
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 4, timestamp=at(4), trigger="MeterValuePeriodic", wh=2500),
    )
    await ChargingSession.objects.filter(pk=session.pk).aupdate(
        status="completed", stop_reason="NoEndedEvent"
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 5, timestamp=at(5), trigger="MeterValuePeriodic", wh=3000),
    )
    # Written once, by the full path, after the append found the session closed.
    assert await TransactionEvent.objects.filter(charger=charger, seq_no=5).acount() == 1
    assert (
        await MeterValue.objects.filter(
            charger=charger, timestamp=datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
        ).acount()
        == 1
    )
    await client.close()


async def test_a_charger_back_in_the_middle_of_a_transaction_appends_its_next_update(
    charger, token, monkeypatch
):
    """After a deploy every charger reconnects: the next in-order Updated of a transaction the new
    socket has not seen is appended after one read, not a locked transaction of its own."""
    full_path = _record_full_path(monkeypatch)
    first = await connect201()
    await _steady(first)
    await first.close()
    second = await connect201()
    batches = transaction_events._appends.batches
    update = tx_event("Updated", 2, timestamp=at(2), trigger="MeterValuePeriodic", wh=2000)
    assert await second.result("TransactionEvent", update) == {}
    assert transaction_events._appends.batches == batches + 1 and full_path == []
    assert (
        await second.result("TransactionEvent", update) == {}
    )  # its answer was lost: the same seqNo again
    assert await TransactionEvent.objects.filter(charger=charger, seq_no=2).acount() == 1
    assert (
        await MeterValue.objects.filter(
            charger=charger, timestamp=datetime(2026, 11, 20, 10, 2, tzinfo=UTC)
        ).acount()
        == 1
    )
    await second.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            3,
            timestamp=at(3),
            trigger="EVDeparted",
            wh=2500,
            stopped_reason="EVDisconnected",
        ),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.meter_start_wh, session.meter_stop_wh) == (
        "completed",
        1000,
        2500,
    )
    assert await TransactionEvent.objects.filter(session=session).acount() == 4
    await second.close()


async def test_back_after_the_session_was_closed_elsewhere_the_update_takes_the_full_path(
    charger, token, monkeypatch
):
    full_path = _record_full_path(monkeypatch)
    first = await connect201()
    await _steady(first)
    await first.close()
    await ChargingSession.objects.filter(charger=charger).aupdate(
        status="completed", stop_reason="NoEndedEvent"
    )
    second = await connect201()
    batches = transaction_events._appends.batches
    assert (
        await second.result(
            "TransactionEvent",
            tx_event("Updated", 2, timestamp=at(2), trigger="MeterValuePeriodic", wh=2000),
        )
        == {}
    )
    assert transaction_events._appends.batches == batches and full_path == [2]
    assert await TransactionEvent.objects.filter(charger=charger, seq_no=2).acount() == 1
    await second.close()


async def test_a_started_without_a_reading_is_steady_once_a_reading_is_stored(charger, token):
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3")
    )
    batches = transaction_events._appends.batches
    await client.result("TransactionEvent", tx_event("Updated", 1, timestamp=at(1), wh=1200))
    assert (
        transaction_events._appends.batches == batches
    )  # the first reading sets the meter start: full path
    await client.result("TransactionEvent", tx_event("Updated", 2, timestamp=at(2), wh=1700))
    assert (
        transaction_events._appends.batches == batches
    )  # the one that finds the reading stored: steady from here
    await client.result("TransactionEvent", tx_event("Updated", 3, timestamp=at(3), wh=2200))
    assert transaction_events._appends.batches == batches + 1
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert session.meter_start_wh == 1200
    await client.close()


@pytest.mark.parametrize("steady", [True, False], ids=["appended", "full-path"])
async def test_a_nan_reading_is_stored_not_taken_for_a_repeat(charger, token, steady):
    client = await connect201()
    started = tx_event(
        "Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000 if steady else None
    )
    await client.result("TransactionEvent", started)
    assert (
        await client.result(
            "TransactionEvent",
            tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=float("nan")),
        )
        == {}
    )
    assert await TransactionEvent.objects.filter(charger=charger, seq_no=1).aexists()
    assert (
        await MeterValue.objects.filter(
            charger=charger, timestamp=datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
        ).acount()
        == 1
    )
    await client.close()


async def test_a_transaction_id_with_a_nul_byte_is_one_transaction_stored_and_answered(
    charger, token
):
    """PostgreSQL cannot hold NUL: the id is escaped the same way on every event, so its events
    find each other and the charger gets answers, not errors."""
    client = await connect201()
    odd = "TX\u0000-7"
    started = tx_event("Started", 0, odd, timestamp=at(0), id_token="04A1B2C3\u0000", wh=1000)
    assert (await client.result("TransactionEvent", started))["idTokenInfo"]["status"] in (
        "Invalid",
        "Unknown",
    )
    for seq in (1, 2):
        assert (
            await client.result(
                "TransactionEvent",
                tx_event(
                    "Updated",
                    seq,
                    odd,
                    timestamp=at(seq),
                    trigger="MeterValuePeriodic",
                    wh=1000 + 100 * seq,
                ),
            )
            == {}
        )
    assert (
        await client.result(
            "TransactionEvent",
            tx_event(
                "Ended",
                3,
                odd,
                timestamp=at(3),
                trigger="EVDeparted",
                wh=1500,
                stopped_reason="EVDisconnected",
            ),
        )
        == {}
    )
    sessions = [s async for s in ChargingSession.objects.filter(charger=charger)]
    assert len(sessions) == 1
    assert (sessions[0].ocpp_transaction_id, sessions[0].status, sessions[0].meter_stop_wh) == (
        "TX\\u0000-7",
        "completed",
        1500,
    )
    assert await TransactionEvent.objects.filter(session=sessions[0]).acount() == 4
    await client.close()


async def test_the_batched_steadiness_read_agrees_with_the_orm(charger, token):
    """On PostgreSQL the read is one statement on the loop's own connection: it must say what the
    ORM says for a steady transaction, one without a reading, a closed one and an unknown id."""
    from asgiref.sync import sync_to_async

    client = await connect201()
    await _steady(client)  # TX-1: steady
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-2", timestamp=at(2), id_token="04A1B2C3", evse=2),
    )  # no reading yet
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-3", timestamp=at(3), id_token="04A1B2C3", wh=10, evse=3),
    )
    await ChargingSession.objects.filter(ocpp_transaction_id="TX-3").aupdate(status="completed")
    # TX-4: steady, one of its events gave a stoppedReason (an Ended without one must refold).
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-4", timestamp=at(4), id_token="04A1B2C3", wh=10, evse=4),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, "TX-4", timestamp=at(5), wh=20, evse=4, stopped_reason="PowerLoss"),
    )
    keys = [
        (charger.pk, "TX-1"),
        (charger.pk, "TX-2"),
        (charger.pk, "TX-3"),
        (charger.pk, "NO-SUCH"),
        (charger.pk + 1000, "TX-1"),
        (charger.pk, "TX-4"),
    ]
    batched = await services_v201.transactions_steady_batch(keys)
    assert batched == await sync_to_async(services_v201.transactions_steady)(keys)
    assert [facts is not None for facts in batched] == [True, False, False, False, False, True]
    assert (batched[0].seq_no, batched[0].energy_at) == (
        1,
        datetime(2026, 11, 20, 10, 1, tzinfo=UTC),
    )
    assert (batched[0].reason_before, batched[5].reason_before) == (False, True)
    await client.close()


def _two_readings(event: dict) -> dict:
    """The Ended's reading at 10:06 followed, in the message, by an earlier one at 10:05."""
    event["meterValue"].append(
        {
            "timestamp": at(5),
            "sampledValue": [
                {
                    "value": 3000,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                }
            ],
        }
    )
    return event


@pytest.mark.parametrize(
    "case, ended, reason_before, batched",
    [
        (
            "reading and reason",
            tx_event("Ended", 3, timestamp=at(6), wh=4000, stopped_reason="EVDisconnected"),
            None,
            True,
        ),
        ("no reason: Local", tx_event("Ended", 3, timestamp=at(6), wh=4000), None, True),
        (
            "no reason, an earlier one",
            tx_event("Ended", 3, timestamp=at(6), wh=4000),
            "PowerLoss",
            False,
        ),
        ("no reading", tx_event("Ended", 3, timestamp=at(6), stopped_reason="Remote"), None, False),
        (
            "register below the start",
            tx_event("Ended", 3, timestamp=at(6), wh=500, stopped_reason="Local"),
            None,
            True,
        ),
        (
            "newest reading first",
            _two_readings(tx_event("Ended", 3, timestamp=at(6), wh=4000)),
            None,
            True,
        ),
        (
            "stopped by a card",
            tx_event(
                "Ended", 3, timestamp=at(6), wh=4000, id_token="04A1B2C3", trigger="StopAuthorized"
            ),
            None,
            True,
        ),
        (
            "stopped by another card",
            tx_event(
                "Ended", 3, timestamp=at(6), wh=4000, id_token="CARD-2", trigger="StopAuthorized"
            ),
            None,
            True,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_an_ended_is_batched_only_when_the_session_it_gives_is_the_fold_of_all_events(
    charger, token, monkeypatch, case, ended, reason_before, batched
):
    """The batch completes the session from the Ended alone; for every case it takes, the session
    must be what folding all the transaction's events gives, and the rest take the full path."""
    from asgiref.sync import sync_to_async

    from chargers.sessions import v201_transactions as tx

    full_path = _record_full_path(monkeypatch)
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=1500),
    )
    await client.result(
        "TransactionEvent",
        tx_event(
            "Updated",
            2,
            timestamp=at(2),
            trigger="MeterValuePeriodic",
            wh=2000,
            stopped_reason=reason_before,
        ),
    )
    assert full_path == []
    answer = await client.result("TransactionEvent", ended)
    assert full_path == ([] if batched else [3])
    # A stop by card is answered with the card's status now, whichever path took it.
    assert ("idTokenInfo" in answer) == ("idToken" in ended)
    if "idToken" in ended:
        assert answer["idTokenInfo"]["status"] == (
            "Accepted" if ended["idToken"]["idToken"] == "04A1B2C3" else "Invalid"
        )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    state = tx.fold(await sync_to_async(services_v201._events_of)(charger.pk, "TX-1", quirks.NONE))
    assert (
        session.status,
        session.stopped_at,
        session.meter_start_wh,
        session.meter_stop_wh,
        session.stop_reason,
        session.stop_id_tag,
    ) == (
        "completed",
        state.stopped_at,
        state.meter_start_wh,
        state.meter_stop_wh,
        state.stop_reason,
        state.stop_id_token,
    )
    assert session.received_stop_at is not None
    await client.close()


async def test_a_late_event_after_a_batched_ended_is_folded_in(charger, token, monkeypatch):
    """An offline-queued Updated that arrives after the Ended (E: queued while offline) takes the
    full path, which refolds the ended session with it."""
    full_path = _record_full_path(monkeypatch)
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000)
    )
    await client.result(
        "TransactionEvent", tx_event("Ended", 2, timestamp=at(6), wh=4000, stopped_reason="Local")
    )
    assert full_path == []
    await client.result(
        "TransactionEvent",
        tx_event(
            "Updated", 1, timestamp=at(3), trigger="MeterValuePeriodic", wh=2500, offline=True
        ),
    )
    assert full_path == [1]
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    # Folded in by the charger's clock: the Ended's reading (10:06) stays the last one.
    assert (session.status, session.meter_stop_wh, session.stop_reason) == (
        "completed",
        4000,
        "Local",
    )
    assert await TransactionEvent.objects.filter(session=session).acount() == 3
    await client.close()


async def test_in_one_batch_nothing_is_appended_to_a_session_after_its_ended(charger, token):
    """Two sockets of one charger (the old one not yet gone) can put an Ended and another event of
    the same transaction in one batch: the one after the Ended is not written (its caller takes
    the full path, which refolds the ended session)."""
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1000)
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    received = datetime(2026, 11, 20, 10, 10, tzinfo=UTC)

    def item(payload: dict, end: closing.TxEnd | None = None) -> services_v201.TxAppend:
        return services_v201.TxAppend(
            charger_id=charger.pk,
            session_id=session.pk,
            connector_id=1,
            payload=payload,
            received_at=received,
            event=services_v201.read_transaction_event(payload, received),
            end=end,
        )

    ended = tx_event("Ended", 2, timestamp=at(6), wh=4000, stopped_reason="Local")
    late = tx_event("Updated", 3, timestamp=at(7), wh=4100)
    written = await services_v201.transaction_events_append_batch(
        [
            item(tx_event("Updated", 1, timestamp=at(5), wh=3000)),
            item(ended, closing.TxEnd(datetime(2026, 11, 20, 10, 6, tzinfo=UTC), 4000, "Local")),
            item(late),
        ]
    )
    assert written == [True, True, False]
    assert sorted([e.seq_no async for e in TransactionEvent.objects.filter(session=session)]) == [
        0,
        1,
        2,
    ]
    await session.arefresh_from_db()
    assert (session.status, session.meter_stop_wh) == ("completed", 4000)
    await client.close()


async def test_an_ended_that_names_the_first_driver_takes_the_full_path(
    charger, token, monkeypatch
):
    """A transaction started by plugging in (no idToken) whose Ended names a card: the fold makes
    that card the driver (the guest flow links the session then), which only the full path does."""
    full_path = _record_full_path(monkeypatch)
    client = await connect201()
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, timestamp=at(0), wh=1000, trigger="CablePluggedIn"),
    )
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=at(1), trigger="MeterValuePeriodic", wh=1500),
    )
    assert full_path == []
    answer = await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            2,
            timestamp=at(6),
            wh=4000,
            id_token="04A1B2C3",
            trigger="StopAuthorized",
            stopped_reason="Local",
        ),
    )
    assert full_path == [2] and answer["idTokenInfo"]["status"] == "Accepted"
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.id_tag, session.stop_id_tag, session.meter_stop_wh) == (
        "completed",
        "04A1B2C3",
        "04A1B2C3",
        4000,
    )
    await client.close()


async def test_a_register_reading_no_meter_can_hold_is_stored_not_used_and_nothing_is_refused(
    charger, token
):
    """A Started whose energy register is 1e30 Wh (a broken meter) must still open its session
    (a refused TransactionEvent loses billing data): the reading is not taken as the meter start,
    and with no usable reading the session's energy is unknown (no reading reported), not 0."""
    client = await connect201()
    answer = await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=at(0), id_token="04A1B2C3", wh=1e30)
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    await client.result(
        "TransactionEvent", tx_event("Ended", 1, timestamp=at(5), wh=2e30, stopped_reason="Local")
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (session.status, session.meter_start_wh, session.meter_stop_wh) == (
        "completed",
        None,
        None,
    )
    assert session.no_reading
    assert await TransactionEvent.objects.filter(session=session).acount() == 2
    await client.close()


async def test_a_reading_no_float_holds_is_stored_escaped_and_the_transaction_goes_on(
    charger, token
):
    """A power reading of 400 digits (no exponent: the frame is valid JSON) decodes to infinity,
    which jsonb refuses: the steady event is answered, its payload stored with the number as
    text, and the next event is appended as before."""
    client = await connect201()
    await _steady(client)
    event = tx_event("Updated", 2, timestamp=at(2), trigger="MeterValuePeriodic", wh=2000)
    event["meterValue"][0]["sampledValue"].append(
        {"value": "__HUGE__", "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}}
    )
    text = json.dumps([2, "huge-1", "TransactionEvent", event]).replace(
        '"__HUGE__"', "1" + "0" * 400 + ".5"
    )
    reply = await client.send_raw(text)
    assert reply[0] == 3, reply
    stored = await TransactionEvent.objects.aget(charger=charger, seq_no=2)
    powers = [
        s["value"]
        for r in stored.payload["meterValue"]
        for s in r["sampledValue"]
        if s.get("measurand") == "Power.Active.Import"
    ]
    assert powers == ["Infinity"]
    assert (
        await client.result(
            "TransactionEvent",
            tx_event("Updated", 3, timestamp=at(3), trigger="MeterValuePeriodic", wh=2500),
        )
        == {}
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    assert (await TransactionEvent.objects.filter(session=session).acount(), session.status) == (
        4,
        "active",
    )
    # The frame is in the Logs, escaped and lossless, not set aside as a dead letter.
    await writer.flush()
    logged = await OcppMessage.objects.aget(charger=charger, unique_id="huge-1", direction="in")
    assert logged.escaped and json.loads(logged.raw) == text
    assert not await OcppDeadLetter.objects.aexists()
    await client.close()


async def test_an_appended_event_is_logged_as_sent_and_the_next_frame_with_its_own_payload(
    charger, token
):
    """An appended event's JSON is written once, for its event row and its log row
    (v16.Connection.dumped): both hold what the charger sent, and the frame after it is logged
    with its own payload."""
    client = await connect201()
    await _steady(client)
    batches = transaction_events._appends.batches
    event = tx_event("Updated", 2, timestamp=at(2), trigger="MeterValuePeriodic", wh=2000)
    reply = await client.call("TransactionEvent", event)
    assert reply[0] == 3 and transaction_events._appends.batches == batches + 1
    assert "currentTime" in await client.result("Heartbeat", {})
    await writer.flush()
    logged = await OcppMessage.objects.aget(charger=charger, unique_id=reply[1], direction="in")
    stored = await TransactionEvent.objects.aget(charger=charger, seq_no=2)
    assert logged.payload == stored.payload == event
    heartbeat = await OcppMessage.objects.aget(charger=charger, action="Heartbeat", direction="in")
    assert heartbeat.payload == {}
    await client.close()
