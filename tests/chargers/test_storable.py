"""The cheap test on frames we write must flag every frame whose log row needs cleaning
(chargers.ocpp.storable, docs/ocpp.md "What is stored"); a miss is a row PostgreSQL refuses."""

import json

import pytest

from chargers.ocpp import protocol
from chargers.ocpp.storable import (
    clean_text,
    clean_value,
    ours_may_need_cleaning,
    text_is_clean,
)

NEEDS_CLEANING = [
    {"data": "a\x00b"},
    {"\x00key": 1},
    {"data": "\ud800"},
    {"data": "ok \udfff tail é"},  # a lone surrogate beside clean non-ASCII text
    {"n": float("nan")},
    {"n": float("inf")},
    {"n": [1, {"m": float("-inf")}]},
]
CLEAN = [
    {"currentTime": "2026-11-20T10:00:00Z", "interval": 300},
    {"idTokenInfo": {"status": "Accepted"}, "text": "Zürich Hbf – ladestation"},
    {"n": 1e308, "m": -2.5e-300},  # finite, however large: jsonb holds it
]


@pytest.mark.parametrize("payload", NEEDS_CLEANING)
def test_an_answer_holding_what_the_database_refuses_is_flagged(payload):
    assert clean_value(payload)[1]
    assert ours_may_need_cleaning(protocol.call_result("u1", payload))
    assert ours_may_need_cleaning(protocol.call_error("u1", "GenericError", "see details", payload))


@pytest.mark.parametrize("unique_id", ["p\x00", "p\ud800"])
def test_an_answer_echoing_a_unique_id_the_database_refuses_is_flagged(unique_id):
    assert ours_may_need_cleaning(protocol.call_result(unique_id, {}))


@pytest.mark.parametrize("payload", CLEAN)
def test_an_ordinary_answer_is_not_walked(payload):
    assert not clean_value(payload)[1]
    assert not ours_may_need_cleaning(protocol.call_result("u1", payload))


@pytest.mark.parametrize("description", ["Unknown action 'a\x00'", "Unknown action '\ud800'"])
def test_an_error_quoting_the_charger_is_flagged(description):
    assert ours_may_need_cleaning(protocol.call_error("u1", "NotImplemented", description))


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("a\x00b", "a\\u0000b"),  # ASCII, but NUL
        ("\ud800 Zürich", "\\ud800 Zürich"),
        ("Zürich \udfff", "Zürich \\udfff"),
        ("plain", "plain"),
        ("Zürich", "Zürich"),
    ],
)
def test_text_the_database_refuses_is_escaped_and_other_text_kept(text, cleaned):
    assert clean_text(text) == cleaned
    assert text_is_clean(text) is (text == cleaned)


def test_a_log_row_reuses_the_payload_json_it_is_given_only_when_nothing_needs_cleaning():
    """make_row takes the payload's JSON from a handler that wrote it already (a 2.0.1
    TransactionEvent's event row); a payload whose text needs cleaning is cleaned and dumped
    here instead, whatever JSON it came with."""
    from chargers.messagelog.log import make_row

    clean = {"idTag": "CAFE"}
    row, _ = make_row(
        charger_id=1,
        direction="in",
        message_type=2,
        unique_id="a",
        action="Authorize",
        payload=clean,
        text='[2,"a","Authorize",{"idTag":"CAFE"}]',
        text_suspect=False,
        payload_json='{"idTag": "CAFE"}',
    )
    assert row[7] == '{"idTag": "CAFE"}'  # the text given, not a second dump
    dirty = {"idTag": "CA\x00FE"}
    text = json.dumps([2, "b", "Authorize", dirty])
    row, _ = make_row(
        charger_id=1,
        direction="in",
        message_type=2,
        unique_id="b",
        action="Authorize",
        payload=dirty,
        text=text,
        text_suspect=True,
        payload_json=json.dumps(dirty),
    )
    assert json.loads(row[7]) == {"idTag": clean_text("CA\x00FE")} != dirty
    # Without a verdict on the text, the JSON given is not trusted either.
    row, _ = make_row(
        charger_id=1,
        direction="in",
        message_type=2,
        unique_id="c",
        action="Authorize",
        payload=dirty,
        text=text,
        payload_json=json.dumps(dirty),
    )
    assert json.loads(row[7]) == {"idTag": clean_text("CA\x00FE")}


@pytest.mark.parametrize("unique_id", ["u1", 'a,"b",c', "Zürich-1", "p\ud800", "p\x00"])
@pytest.mark.parametrize("payload", [*CLEAN, *NEEDS_CLEANING, {}, None, {"s": 'x"],[3'}])
def test_an_answer_and_its_logged_json_are_written_once_and_as_before(unique_id, payload):
    """The answer's text is call_result's, byte for byte; the JSON handed to its Logs row is the
    payload's own, and none when the text needed escaping (the row then cleans and dumps it)."""
    text, body = protocol.call_result_json(unique_id, payload)
    assert text == protocol.call_result(unique_id, payload)
    if body is None:
        assert not text_is_clean(json.dumps([3, unique_id, payload], ensure_ascii=False))
    else:
        assert body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        assert text.endswith("," + body + "]")


def test_an_answer_time_is_utc_with_milliseconds_and_z():
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert protocol.format_datetime(moment) == "2026-01-02T01:04:05.678Z"
    assert protocol.format_datetime(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[2,"m1","MeterValues",{"connectorId":1,"meterValue":[]}]',
            '{"connectorId":1,"meterValue":[]}',
        ),
        ('[2,"m1","Heartbeat",{}]', "{}"),
        ('[2, "m1", "Heartbeat", {}]', None),  # spaced: the parsed payload is dumped instead
        ('[2,"m\\"1","Heartbeat",{}]', None),  # an escaped id reads differently from its text
        ('[2,"m\\u0031","Heartbeat",{}]', None),
        ('[2,"m1","Heartbeat",{}] ', None),
    ],
)
def test_a_call_logs_its_payload_as_the_charger_wrote_it_only_when_that_is_certain(text, expected):
    frame = protocol.parse_frame(text)
    found = protocol.call_payload_json(frame, text)
    assert found == expected
    if found is not None:
        assert json.loads(found) == frame.payload
