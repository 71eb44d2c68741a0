"""The journal is replayed in chunks, one database transaction each (issue 33 item 6: one per
entry made a 30 s outage's journal take minutes). Each entry is still applied exactly once, and
an entry the database refuses costs only itself, not the chunk it shares a transaction with."""

import pytest
from django.conf import settings

from chargers.models import JournalEntryApplied, OcppDeadLetter, StatusEvent
from chargers.plumbing.journal import Journal

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"


def _status(seq: int, charger_id: int, connector_id: int) -> dict:
    return {
        "seq": seq,
        "action": "StatusNotification",
        "charger_id": charger_id,
        "payload": {
            "connectorId": connector_id,
            "errorCode": "NoError",
            "status": "Available",
            "timestamp": TS,
        },
        "received_at": TS,
    }


def test_a_refused_entry_costs_only_itself_and_a_chunk_replayed_again_changes_nothing(charger):
    from chargers.sessions import replay

    journal = Journal()
    journal.configure(replay.journal_apply)
    entries = [
        _status(1, charger.pk, 1),
        # Out of the column's range: PostgreSQL refuses it inside the chunk's transaction.
        _status(2, charger.pk, 2**40),
        {"seq": 3, "action": "Unheard", "charger_id": charger.pk, "payload": {}},
        _status(4, charger.pk, 2),
    ]
    for _ in range(2):  # an interrupted replay runs the chunk again: nothing twice
        journal._apply_chunk("chunks.journal", entries)
    refused = 2 if settings.IS_POSTGRES else 1  # SQLite stores the large integer
    assert sorted(StatusEvent.objects.values_list("connector_id", flat=True))[:2] == [1, 2]
    assert StatusEvent.objects.count() == 4 - refused
    assert OcppDeadLetter.objects.filter(kind="journal").count() == refused
    assert JournalEntryApplied.objects.filter(journal="chunks.journal").count() == 4
