"""The pure 2.0.1 modules, without a database: transaction fold, command translation, statuses."""

from datetime import UTC, datetime

import pytest

from chargers.ocpp.protocol import OcppError
from chargers.ocpp.protocol201 import REQUEST_VALIDATORS, check_outgoing, id_token_status
from chargers.ocpp.v201_commands import translate
from chargers.sessions.v201_transactions import fold, read_event

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VALIDATE = REQUEST_VALIDATORS["TransactionEvent"]


def event(event_type, seq_no, minute, wh=None, **extra):
    timestamp = f"2026-11-20T10:{minute:02d}:00Z"
    payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": "Trigger",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "T", **extra.pop("info", {})},
        **extra,
    }
    if wh is not None:
        payload["meterValue"] = [{"timestamp": timestamp, "sampledValue": [{"value": wh}]}]
    return read_event(payload, VALIDATE, RECEIVED)


def test_fold_is_the_same_in_any_order():
    events = [
        event("Started", 0, 0, 100, idToken={"idToken": "A", "type": "Central"}),
        event("Updated", 1, 10, 400),
        event("Ended", 2, 20, 900, info={"stoppedReason": "EVDisconnected"}),
    ]
    states = {fold(order) for order in (events, events[::-1], [events[1], events[2], events[0]])}
    assert len(states) == 1
    state = states.pop()
    assert (state.meter_start_wh, state.meter_stop_wh, state.stop_reason, state.id_token) == (
        100,
        900,
        "EVDisconnected",
        "A",
    )
    assert state.started_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_fold_without_an_ended_is_not_ended_and_left_out_reason_is_local():
    assert not fold([event("Started", 0, 0, 100)]).ended
    assert fold([event("Started", 0, 0, 100), event("Ended", 1, 5)]).stop_reason == "Local"


def test_meter_stop_never_below_meter_start():
    assert fold([event("Started", 0, 0, 500), event("Ended", 1, 5, 400)]).meter_stop_wh == 500


def test_read_event_records_violations_and_refuses_only_a_missing_transaction_id():
    odd = read_event(
        {
            "eventType": "Weird",
            "timestamp": "not a time",
            "triggerReason": "X",
            "seqNo": "3",
            "transactionInfo": {"transactionId": "T"},
        },
        VALIDATE,
        RECEIVED,
    )
    assert (
        odd.event_type == "Updated"
        and odd.timestamp == RECEIVED
        and odd.seq_no == 3
        and odd.violation
    )
    with pytest.raises(OcppError) as refused:
        read_event({"eventType": "Started", "transactionInfo": {}}, VALIDATE, RECEIVED)
    assert refused.value.code == "OccurrenceConstraintViolation"


def test_multiplier_and_kwh():
    reading = read_event(
        {
            "eventType": "Updated",
            "timestamp": "2026-11-20T10:00:00Z",
            "triggerReason": "Trigger",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "T"},
            "meterValue": [
                {
                    "timestamp": "2026-11-20T10:00:00Z",
                    "sampledValue": [
                        {"value": 1.5, "unitOfMeasure": {"unit": "kWh"}},
                        {
                            "value": 2,
                            "measurand": "Power.Active.Import",
                            "unitOfMeasure": {"unit": "W", "multiplier": 3},
                        },
                    ],
                }
            ],
        },
        VALIDATE,
        RECEIVED,
    ).meter_values[0]
    samples = {s.measurand: (s.value, s.unit) for s in reading.samples}
    assert samples == {
        "Energy.Active.Import.Register": ("1.5", "kWh"),
        "Power.Active.Import": ("2000", "W"),
    }


@pytest.mark.parametrize(
    ("action", "payload", "expected"),
    [
        ("Reset", {"type": "Hard"}, ("Reset", {"type": "Immediate"})),
        (
            "UnlockConnector",
            {"connectorId": 3},
            ("UnlockConnector", {"evseId": 3, "connectorId": 1}),
        ),
        (
            "ChangeAvailability",
            {"connectorId": 2, "type": "Operative"},
            ("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}}),
        ),
        (
            "RemoteStopTransaction",
            {"transactionId": 5},
            ("RequestStopTransaction", {"transactionId": "abc"}),
        ),
        ("GetVariables", {"getVariableData": []}, ("GetVariables", {"getVariableData": []})),
    ],
)
def test_translate_gives_valid_201_commands(action, payload, expected):
    translated = translate(action, payload, ocpp_transaction_id="abc")
    assert (translated.action, translated.payload) == expected
    if expected[0] != "GetVariables":
        check_outgoing(translated.action, translated.payload)  # the charger would take it


def test_translate_remote_start_draws_a_remote_start_id_and_refuses_16_profiles():
    start = translate("RemoteStartTransaction", {"idTag": "CARD", "connectorId": 1})
    assert start.action == "RequestStartTransaction" and start.payload["remoteStartId"] > 0
    check_outgoing(start.action, start.payload)
    with pytest.raises(OcppError):
        translate("RemoteStartTransaction", {"idTag": "CARD", "chargingProfile": {}})
    with pytest.raises(OcppError):
        translate("RemoteStopTransaction", {"transactionId": 5}, ocpp_transaction_id=None)
    with pytest.raises(OcppError):
        translate("ChangeConfiguration", {"key": "x", "value": "y"})


def test_id_token_status_maps_reasons_to_201_words():
    assert id_token_status("Invalid", "unknown_token") == "Unknown"
    assert id_token_status("Invalid", "not_in_local_group") == "NotAtThisLocation"
    assert id_token_status("Blocked", "token_blocked") == "Blocked"
    assert id_token_status("Accepted", "accepted_local") == "Accepted"
    assert id_token_status("Whatever") == "Invalid"


def test_an_ended_whose_clock_ran_ahead_still_ends_at_its_own_reading():
    # The Updated is 9 minutes ahead of our clock (kept), the Ended 25 minutes ahead (its times
    # replaced by the receive time, so its reading sorts before the Updated's): the session ends
    # at the Ended's 900 Wh, not at the Updated's 400.
    def ahead(event_type, seq_no, minute, wh):
        timestamp = f"2026-11-20T12:{minute:02d}:00Z"
        payload = {
            "eventType": event_type,
            "timestamp": timestamp,
            "triggerReason": "Trigger",
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": "T"},
            "meterValue": [{"timestamp": timestamp, "sampledValue": [{"value": wh}]}],
        }
        return read_event(payload, VALIDATE, RECEIVED)

    ended = ahead("Ended", 2, 25, 900)
    assert ended.meter_values[0].timestamp == RECEIVED  # replaced: 25 minutes ahead
    state = fold([event("Started", 0, 0, 100), ahead("Updated", 1, 9, 400), ended])
    assert (state.meter_start_wh, state.meter_stop_wh) == (100, 900)
