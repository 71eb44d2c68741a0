"""Journal entries written by an earlier build replay on this one (issue 50 item 8).

A deploy can happen during a database outage: the new build then replays the journal the old one
wrote (chargers.plumbing.journal). tests/chargers/data/ holds the journals commit 9e51581 wrote
during an outage (before issue 50 moved the charging core's files): a 1.6 charger booting and
charging a session (meter values, a stop with transaction data, statuses) and a 2.0.1 charger
doing the same with TransactionEvents, each with its message-log rows. They were written by that
build's own handlers (the outage fixture engaged, as tests/chargers/v201/test_durability.py
does); only the charger's row id is mapped to this database's. Replayed here, they must give the
rows that build's own replay gave (`*.expected.json`, written by running `outcome` below on that
build after its own replay), each entry applied once even when the replay runs twice, message-log
rows included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chargers.models import (
    Charger,
    ChargingSession,
    Connector,
    MeterValue,
    OcppDeadLetter,
    OcppMessage,
)
from chargers.plumbing.journal import read_entries
from chargers.sessions import replay

pytestmark = pytest.mark.django_db(transaction=True)

DATA = Path(__file__).parent / "data"


def _entries(name: str, charger_id: int) -> list[dict[str, Any]]:
    """The journal's entries, its charger's row id (in the database the old build wrote
    against) replaced by this database's."""
    entries, _ = read_entries(DATA / name)
    old = {entry["charger_id"] for entry in entries if entry.get("kind") == "call"}
    assert len(old) == 1, old  # one charger per journal
    for entry in entries:
        if entry.get("charger_id") in old:
            entry["charger_id"] = charger_id
        for row in entry.get("rows", []):
            assert row[0] in old
            row[0] = charger_id
    return entries


def outcome(charger: Charger) -> dict[str, Any]:
    """What a replay left in the database for `charger`, as JSON (decimals as text)."""
    sessions = [
        [
            s.status,
            str(s.meter_start_wh),
            str(s.meter_stop_wh),
            s.started_at.isoformat(),
            s.stopped_at.isoformat() if s.stopped_at else None,
            s.stop_reason,
            s.id_tag,
        ]
        for s in ChargingSession.objects.filter(charger=charger).order_by("pk")
    ]
    values = sorted(
        [v.measurand, v.phase, str(v.value), v.timestamp.isoformat()]
        for v in MeterValue.objects.filter(charger=charger)
    )
    log = sorted(
        [m.direction, m.action, m.unique_id, json.dumps(m.payload, sort_keys=True)]
        for m in OcppMessage.objects.filter(charger=charger)
    )
    charger.refresh_from_db()
    connectors = Connector.objects.filter(charger=charger).order_by("connector_id")
    return {
        "charger": [charger.vendor, charger.model, charger.firmware_version],
        "connectors": [[c.connector_id, c.status] for c in connectors],
        "sessions": sessions,
        "values": values,
        "log": log,
        "dead letters": OcppDeadLetter.objects.count(),
    }


def _expected(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _replay_twice(name: str, entries: list[dict[str, Any]]) -> None:
    for _ in range(2):  # an interrupted replay run again applies each entry once
        for entry in entries:
            replay.journal_apply(name, entry)


def test_a_16_journal_of_the_old_build_replays(charger, token):
    _replay_twice("old-16", _entries("journal-9e51581-16.jsonl", charger.pk))
    assert outcome(charger) == _expected("journal-9e51581-16.expected.json")


def test_a_201_journal_of_the_old_build_replays(charger, token):
    charger.ocpp_version = "2.0.1"
    charger.save(update_fields=["ocpp_version"])
    _replay_twice("old-201", _entries("journal-9e51581-201.jsonl", charger.pk))
    assert outcome(charger) == _expected("journal-9e51581-201.expected.json")
