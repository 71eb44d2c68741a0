"""The cheap test on frames we write must flag every frame whose log row needs cleaning
(chargers.storable, docs/ocpp.md "What is stored"); a miss is a row PostgreSQL refuses."""

import pytest

from chargers.ocpp import protocol
from chargers.storable import clean_text, clean_value, ours_may_need_cleaning, text_is_clean

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


@pytest.mark.parametrize(("text", "cleaned"), [
    ("a\x00b", "a\\u0000b"),  # ASCII, but NUL
    ("\ud800 Zürich", "\\ud800 Zürich"),
    ("Zürich \udfff", "Zürich \\udfff"),
    ("plain", "plain"),
    ("Zürich", "Zürich"),
])
def test_text_the_database_refuses_is_escaped_and_other_text_kept(text, cleaned):
    assert clean_text(text) == cleaned
    assert text_is_clean(text) is (text == cleaned)
