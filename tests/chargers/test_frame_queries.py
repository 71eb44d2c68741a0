"""What a MeterValues frame costs the database (issue 48 item 3): for a charger with no power
budget, no signing meter and no open alert, only the message log's own batched writes, and
nothing for those features. Every statement of every thread and of the event loop's own
connections is counted (a CaptureQueriesContext sees one thread's connection only)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection
from django.db.backends import utils as db_utils

from chargers.messagelog.log import writer
from tests.ocpp_client import OcppTestClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The production path: the message log's COPY on the event loop's own connection.
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the batched log writes are PostgreSQL's"
    ),
]


@contextmanager
def every_statement():
    """All SQL run meanwhile: Django's cursors in any thread, psycopg's async cursors and COPY."""
    seen: list[str] = []
    lock = threading.Lock()

    def note(sql) -> None:
        with lock:
            seen.append(str(sql))

    django_execute = db_utils.CursorWrapper._execute
    django_many = db_utils.CursorWrapper._executemany
    async_execute = psycopg.AsyncCursor.execute
    async_copy = psycopg.AsyncCursor.copy

    def _execute(self, sql, params, *ignored):
        note(sql)
        return django_execute(self, sql, params, *ignored)

    def _executemany(self, sql, param_list, *ignored):
        note(sql)
        return django_many(self, sql, param_list, *ignored)

    async def execute(self, query, *args, **kwargs):
        note(query)
        return await async_execute(self, query, *args, **kwargs)

    def copy(self, statement, *args, **kwargs):
        note(statement)
        return async_copy(self, statement, *args, **kwargs)

    db_utils.CursorWrapper._execute = _execute
    db_utils.CursorWrapper._executemany = _executemany
    psycopg.AsyncCursor.execute = execute
    psycopg.AsyncCursor.copy = copy
    try:
        yield seen
    finally:
        db_utils.CursorWrapper._execute = django_execute
        db_utils.CursorWrapper._executemany = django_many
        psycopg.AsyncCursor.execute = async_execute
        psycopg.AsyncCursor.copy = async_copy


# The message log's own writes, batched across chargers (chargers.messagelog.log): the frame
# rows, the readings, the session a transaction id belongs to (once per transaction), the
# last-seen times, and a 2.0.1 steady transaction's appended events.
LOG_WRITES = (
    "COPY chargers_ocppmessage ",
    "COPY chargers_metervalue ",
    "COPY chargers_transactionevent ",
    "SELECT id, charger_id, transaction_id FROM chargers_chargingsession ",
    "SELECT id, meter_start_wh FROM chargers_chargingsession ",
    'UPDATE "chargers_charger" ',
    "UPDATE chargers_charger ",
)
FEATURES = ("power_", "metering_", "reliability_", "chargers_signedsample", "chargers_connector")

FRAMES = 5
READINGS = [
    {"value": "1000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    {"value": "16", "measurand": "Current.Import", "unit": "A"},
    {"value": "3.6", "measurand": "Power.Active.Import", "unit": "kW"},
]


def _features(statements: list[str]) -> list[str]:
    return [sql for sql in statements if any(table in sql for table in FEATURES)]


# A connection opened meanwhile (a database thread's or the log's pool, on a slow machine) sets
# its time zone once: the connection's cost, not the frame's.
CONNECTION_SETUP = ("SET TIME ZONE ",)


def _others(statements: list[str]) -> list[str]:
    return [
        sql
        for sql in statements
        if not sql.lstrip().startswith(LOG_WRITES) and not sql.lstrip().startswith(CONNECTION_SETUP)
    ]


async def _started_frame(client: OcppTestClient, readings: list[dict]) -> dict:
    """A transaction started (its writes flushed) and a MeterValues frame of it."""
    started = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 0,
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    await writer.flush()
    return {
        "connectorId": 1,
        "transactionId": started["transactionId"],
        "meterValue": [{"timestamp": "2026-11-20T10:30:00Z", "sampledValue": readings}],
    }


async def _metering(client: OcppTestClient, readings: list[dict]) -> list[str]:
    frame = await _started_frame(client, readings)
    with every_statement() as seen:
        for _ in range(FRAMES):
            await client.result("MeterValues", frame)
        await writer.flush()
    return seen


async def test_a_meter_values_frame_of_a_plain_charger_costs_only_its_log_writes(charger, token):
    """No power budget, no signing meter, no open alert: no statement for any of them, and at
    most three per frame (its readings, its row in, the answer's row out), each a batch that
    other chargers' frames share under load. Measured on 25 Nov 2026 (issue 48): 3.0 per frame
    before and after; none for the features (they read their inputs in batches: the power sweep
    along MeterValue's primary key, the signed check only for a signed value)."""
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"})
    seen = await _metering(client, READINGS)
    assert _features(seen) == []
    assert _others(seen) == []
    assert sum(sql.startswith("COPY") for sql in seen) <= 3 * FRAMES
    await client.close()


async def test_the_count_sees_what_a_signing_meter_costs(charger, token):
    """The same frames with a signed value: the signed samples are stored on a pool thread
    before the answer; the count sees them (it is no count of one connection only)."""
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"})
    signed = {**READINGS[0], "format": "SignedData", "value": "OCMF|{}|{}"}
    seen = await _metering(client, [*READINGS, signed])
    assert len([sql for sql in _features(seen) if "chargers_signedsample" in sql]) >= FRAMES
    await client.close()


async def test_a_steady_2_0_1_transaction_costs_only_its_batched_appends(charger, token, settings):
    """The 2.0.1 frames of a charger with no budget, signing meter or alert: a steady
    TransactionEvent Updated is appended with other chargers' (the session checked active and
    locked, the event and its readings by COPY), a MeterValues is its readings and log rows."""
    from tests.chargers.v201.conftest import BOOT, connect201, tx_event

    settings.OCPP_BASE_REPORT_AFTER_BOOT = False
    client = await connect201(charger.station_id)
    await client.result("BootNotification", BOOT)
    started = tx_event("Started", 0, id_token="04A1B2C3", wh=0, trigger="Authorized")
    await client.result("TransactionEvent", started)
    await client.result(
        "TransactionEvent", tx_event("Updated", 1, wh=10, trigger="MeterValuePeriodic")
    )
    await writer.flush()
    with every_statement() as seen:
        for n in range(2, 2 + FRAMES):
            updated = tx_event("Updated", n, wh=10 * n, trigger="MeterValuePeriodic")
            await client.result("TransactionEvent", updated)
        meter = {"timestamp": "2026-11-20T10:00:00Z", "sampledValue": [{"value": 5}]}
        await client.result("MeterValues", {"evseId": 1, "meterValue": [meter]})
        await writer.flush()
    assert _features(seen) == []
    assert _others(seen) == []
    per_frame = [sql for sql in seen if sql.startswith("COPY") or "FOR UPDATE" in sql]
    assert (
        len(per_frame) <= 5 * FRAMES + 3
    )  # lock, event, readings, row in, row out; 3 for the last
    await client.close()


async def test_a_charger_with_a_quirk_profile_costs_no_more_per_frame(charger, token):
    """Issue 58: its deviations are resolved once per connection (at connect, at boot), so the
    reader asks no database per frame: the same statements as a plain charger's, and its kWh
    labelled Wh stored as kWh."""
    from chargers.models import MeterValue
    from chargers.state import quirks as quirks_state

    quirks_state.forget()
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result(
        "BootNotification",
        {"chargePointVendor": "OpenEVSE", "chargePointModel": "B", "firmwareVersion": "4.2.2"},
    )
    seen = await _metering(client, READINGS)
    assert _features(seen) == []
    assert _others(seen) == []
    assert sum(sql.startswith("COPY") for sql in seen) <= 3 * FRAMES
    assert (
        await MeterValue.objects.filter(
            charger=charger, measurand="Energy.Active.Import.Register", unit="kWh"
        ).acount()
        == FRAMES
    )
    await client.close()


async def test_a_meter_values_answer_waits_for_one_batch_holding_its_readings_and_its_row(
    charger, token
):
    """Issue 48: the frame's Logs row is queued beside its readings (conn.log_alongside), so the
    answer waits for one batch, not for the readings' batch and then its row's. The batch writes
    its frame rows and its readings side by side, each one COPY."""
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"})
    frame = await _started_frame(client, READINGS)
    before = writer.batches_written
    with every_statement() as seen:
        await client.result("MeterValues", frame)
        committed = writer.batches_written - before
        copies = [sql.split()[1] for sql in seen if sql.startswith("COPY")]
    assert committed == 1
    assert sorted(copies) == ["chargers_metervalue", "chargers_ocppmessage"]
    await client.close()
