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
