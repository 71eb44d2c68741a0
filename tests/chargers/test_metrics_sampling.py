"""The per-process OCPP gauges of GET /metrics (chargers/connections/sampling.py): the journal's
backlog while the database is away, and the message log's buffer."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from chargers.connections import sampling
from chargers.messagelog.log import MessageLogWriter
from chargers.models import OcppMessage
from chargers.plumbing.journal import Journal

pytestmark = pytest.mark.django_db(transaction=True)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_the_journal_backlog_is_what_waits_for_replay(tmp_path, settings, monkeypatch):
    settings.OCPP_JOURNAL_DIR = tmp_path
    refusals = []

    def refuse(journal_name: str, entry: dict) -> None:  # the database still refuses
        refusals.append(entry["seq"])
        raise RuntimeError("database away")

    journal = Journal()
    journal.configure(refuse, "metrics-sampling")
    monkeypatch.setattr(sampling, "journal", journal)
    sampling.sample()
    assert gauge("evportal_journal_backlog_bytes") == 0
    assert gauge("evportal_journal_engaged") == 0

    await journal.append([{"action": "StatusNotification", "payload": {}}] * 3)
    journal.engage("test outage")
    size = (tmp_path / "metrics-sampling.journal").stat().st_size
    try:
        async with asyncio.timeout(120):
            while not refusals:  # the replay tried and failed: the backlog stays
                await asyncio.sleep(0.05)
        sampling.sample()
        assert gauge("evportal_journal_backlog_bytes") == size > 0
        assert gauge("evportal_journal_engaged") == 1
    finally:
        journal.close()


async def test_the_message_log_buffer_is_counted_until_it_is_written(charger, monkeypatch):
    log = MessageLogWriter()
    monkeypatch.setattr(sampling, "writer", log)
    for n in range(3):  # add_message awaits nothing here: the writer's task has not run yet
        await log.add_message(
            charger_id=charger.pk,
            direction="in",
            message_type=2,
            unique_id=f"m{n}",
            action="Heartbeat",
            payload={},
        )
    sampling.sample()
    assert gauge("evportal_message_log_buffered_frames") == 3
    assert gauge("evportal_message_log_buffered_bytes") == log.buffered_bytes > 0
    await log.flush()
    sampling.sample()
    assert gauge("evportal_message_log_buffered_frames") == 0
    assert gauge("evportal_message_log_buffered_bytes") == 0
    assert (
        await OcppMessage.objects.filter(charger=charger, unique_id__in=["m0", "m1", "m2"]).acount()
        == 3
    )
    await log.close()
