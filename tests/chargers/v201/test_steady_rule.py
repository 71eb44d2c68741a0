"""The steady rule, stated once (chargers/sessions/rules.py): which 2.0.1 events may be appended
to a transaction without refolding it. Pure: no database, no socket."""

from datetime import UTC, datetime

import pytest

from chargers.ocpp.protocol201 import REQUEST_VALIDATORS
from chargers.sessions import rules
from chargers.sessions import v201_transactions as tx
from tests.chargers.v201.conftest import tx_event

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LAST_READING = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)


def _event(*args, **kwargs) -> tx.TxEvent:
    payload = tx_event(*args, **kwargs)
    # Received after the charger's time (TS, 10:00): an event is never read before it happened.
    return tx.read_event(payload, REQUEST_VALIDATORS["TransactionEvent"], RECEIVED)


def _steady(**changes) -> rules.SteadyFacts:
    facts = dict(
        session_id=1,
        connector_id=1,
        transaction_id=7,
        started_at=START,
        remote_start_id=None,
        seq_no=3,
        energy_at=LAST_READING,
        reason_before=False,
        driver="",
    )
    return rules.SteadyFacts(**{**facts, **changes})


def _appendable(steady, event) -> bool:
    return rules.appendable(steady, event, tx.end_register_wh)


def test_an_in_order_updated_with_a_newer_reading_is_appended():
    assert _appendable(_steady(), _event("Updated", 4, wh=1500))


@pytest.mark.parametrize(
    "why, event, steady",
    [
        ("no steady transaction known", _event("Updated", 4, wh=1500), None),
        ("a resend or an older seqNo", _event("Updated", 3, wh=1500), _steady()),
        ("it names a driver", _event("Updated", 4, wh=1500, id_token="04A1"), _steady()),
        ("another EVSE", _event("Updated", 4, wh=1500, evse=2), _steady()),
        (
            "a reading older than the last stored",
            _event("Updated", 4, wh=1500, timestamp="2026-11-20T09:10:00Z"),
            _steady(),
        ),
        (
            "before the session's start",
            _event("Updated", 4, timestamp="2026-11-20T08:00:00Z"),
            _steady(),
        ),
        ("a Started", _event("Started", 4, wh=1500), _steady()),
        (
            "an Ended without the reading it ends at",
            _event("Ended", 4, stopped_reason="Local"),
            _steady(),
        ),
        (
            "an Ended without its reason, after an event that gave one",
            _event("Ended", 4, wh=1500),
            _steady(reason_before=True),
        ),
        (
            "an Ended by card of a transaction no event named a driver for",
            _event("Ended", 4, wh=1500, stopped_reason="Local", id_token="04A1"),
            _steady(),
        ),
    ],
)
def test_what_takes_the_full_path(why, event, steady):
    assert not _appendable(steady, event), why


def test_an_ended_with_its_reading_and_reason_is_appended_and_may_name_the_card_of_a_known_driver():
    ended = _event("Ended", 4, wh=1500, stopped_reason="EVDisconnected")
    assert _appendable(_steady(), ended)
    by_card = _event("Ended", 4, wh=1500, stopped_reason="Local", id_token="04A1")
    assert _appendable(_steady(driver="04A1"), by_card)
    # No reason ever given: it ends as "Local", as its fold would.
    assert _appendable(_steady(reason_before=False), _event("Ended", 4, wh=1500))


def test_the_full_path_skips_a_refold_by_the_same_rule():
    # What the full path checks before and after reading the last reading it has stored.
    event = _event("Updated", 4, wh=1500)
    facts = dict(connector_id=1, remote_start_id=None, started_at=START)
    assert rules.steady_continues(event, energy_at=None, **facts)
    assert rules.steady_continues(event, energy_at=LAST_READING, **facts)
    late_reading = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert not rules.steady_continues(event, energy_at=late_reading, **facts)
    # An event that names no remote start leaves the session's; one that names another does not.
    remote = {**facts, "remote_start_id": 5}
    assert rules.steady_continues(event, energy_at=None, **remote)
    other = _event("Updated", 4, wh=1500, remoteStartId=6)
    assert not rules.steady_continues(other, energy_at=None, **remote)
    assert rules.steady_continues(_event("Updated", 4, remoteStartId=5), energy_at=None, **remote)
