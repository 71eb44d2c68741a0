"""No frame can stop the message log (docs/ocpp.md, "What is stored").

Frames holding text the database cannot store are kept losslessly (escaped) and a row the
database still refuses is isolated as a dead letter while the rest of its batch is written.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from chargers.messagelog.log import writer
from chargers.models import Charger, MeterValue, OcppDeadLetter, OcppMessage
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"

POISON_FRAMES = [
    '[2,"p1","DataTransfer",{"vendorId":"X","data":"a\\u0000b"}]',
    '[2,"p2","DataTransfer",{"vendorId":"X","data":"\\ud800"}]',
    '[2,"p3\\u0000","Heartbeat",{}]',
    '[2,"p4","DataTransfer",{"vendorId":"X","data":NaN}]',
    '[2,"p5","DataTransfer",{"vendorId":"X","n":Infinity,"m":1e999}]',
    '[2,"p6","MeterValues",{"connectorId":-1,"meterValue":[{"timestamp":"2026-11-20T10:00:00Z","sampledValue":[{"value":"1\\u0000"}]}]}]',
    '[2,"p7","MeterValues",{"connectorId":2147483648,"meterValue":[{"timestamp":"2026-11-20T10:00:00Z","sampledValue":[{"value":"2"}]}]}]',
    '[2,"p8","Heartbeat",{"\\u0000key":"\\udfff"}]',
    "not json at all \x00 with a NUL",
    # Overflows a float without an exponent: decoded as inf, which jsonb cannot hold either.
    '[2,"p9","DataTransfer",{"vendorId":"X","n":1' + "0" * 400 + ".5}]",
    '[2,"p10","DataTransfer",1' + "0" * 400 + ".5]",  # refused as a frame, logged all the same
    '[2,"p11\\udfff","Heartbeat",{}]',  # echoed in the answer's unique id, logged with it
]


async def _connect(station_id):
    client = OcppTestClient(station_id)
    ok, _ = await client.connect()
    assert ok
    return client


def _energy_sample(charger):
    """One energy reading of the charger, as a MeterValues handler queues it."""
    from datetime import UTC, datetime

    from chargers.messagelog.log import MeterSample

    return MeterSample(
        charger.pk,
        1,
        None,
        datetime(2026, 11, 20, 10, tzinfo=UTC),
        "Energy.Active.Import.Register",
        "",
        "Wh",
        "Sample.Periodic",
        "Outlet",
        "100",
    )


async def _one_batch(charger, unique_ids):
    """Queue Heartbeat rows with these unique ids and one energy reading of the charger so that
    they go into one batch of the writer; returns the reading's future (its handler's wait)."""
    import asyncio

    sample = _energy_sample(charger)
    writer._ensure_running()
    async with writer._flush_lock:  # everything below goes into one batch
        for unique_id in unique_ids:
            await writer.add_message(
                charger_id=charger.pk,
                direction="in",
                message_type=2,
                unique_id=unique_id,
                action="Heartbeat",
                payload={},
            )
        meters = asyncio.ensure_future(writer.store_meter_samples([sample]))
        await asyncio.sleep(0)
    return meters


async def test_every_poison_frame_is_answered_stored_and_others_keep_flowing(charger):
    healthy_charger = (
        await ChargerFactory.acreate(station_id="CP-HEALTHY", property=charger.property)
        if hasattr(ChargerFactory, "acreate")
        else None
    )
    if healthy_charger is None:
        from asgiref.sync import sync_to_async

        healthy_charger = await sync_to_async(ChargerFactory)(
            station_id="CP-HEALTHY", property=charger.property
        )
    bad, healthy = await _connect("CP-TEST-1"), await _connect("CP-HEALTHY")
    for n, frame in enumerate(POISON_FRAMES):
        reply = await bad.send_raw(frame)
        assert reply[0] in (3, 4), reply  # answered, never silence
        assert "currentTime" in await healthy.result("Heartbeat", {})
        await healthy.result(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": TS,
                "info": f"n{n}",
            },
        )
    await writer.flush()
    # The healthy charger's frames all reached the log.
    healthy_rows = OcppMessage.objects.filter(
        charger=healthy_charger, direction="in", action="StatusNotification"
    )
    assert await healthy_rows.acount() == len(POISON_FRAMES)
    # Every poison frame is in the log, kept losslessly.
    stored = [
        m async for m in OcppMessage.objects.filter(charger=charger, direction="in").order_by("id")
    ]
    assert len(stored) == len(POISON_FRAMES)
    escaped = [m for m in stored if m.escaped]
    for message in escaped:
        assert json.loads(message.raw) in POISON_FRAMES
    assert {json.loads(m.raw) for m in escaped} == {
        f
        for f in POISON_FRAMES
        if "NaN" in f
        or "\\u0000" in f
        or "\\ud8" in f
        or "\\udf" in f
        or "Infinity" in f
        or "\x00" in f
        or '"p9"' in f
        or '"p10"' in f
    }
    # Out-of-range connector ids were stored on connector 0 and flagged, not lost.
    assert await MeterValue.objects.filter(charger=charger, connector_id=0).acount() == 2
    assert await OcppDeadLetter.objects.acount() == 0
    await bad.close()
    await healthy.close()


async def test_a_row_the_database_refuses_is_dead_lettered_and_the_batch_is_written(charger):
    """A row with a foreign key to nothing stands for any row the database refuses."""
    for n in range(5):
        await writer.add_message(
            charger_id=charger.pk,
            direction="in",
            message_type=2,
            unique_id=f"ok{n}",
            action="Heartbeat",
            payload={},
        )
    await writer.add_message(
        charger_id=999_999_999,
        direction="in",
        message_type=2,
        unique_id="bad",
        action="Heartbeat",
        payload={},
    )
    for n in range(5, 10):
        await writer.add_message(
            charger_id=charger.pk,
            direction="in",
            message_type=2,
            unique_id=f"ok{n}",
            action="Heartbeat",
            payload={},
        )
    await writer.flush()
    stored = {m.unique_id async for m in OcppMessage.objects.filter(charger=charger)}
    assert stored == {f"ok{n}" for n in range(10)}
    dead = await OcppDeadLetter.objects.aget()
    assert dead.charger_id == 999_999_999 and "bad" in dead.row
    # The writer goes on: a later frame is written too, and the bad row is not retried.
    await writer.add_message(
        charger_id=charger.pk,
        direction="in",
        message_type=2,
        unique_id="later",
        action="Heartbeat",
        payload={},
    )
    await writer.flush()
    assert await OcppMessage.objects.filter(unique_id="later").aexists()
    assert await OcppDeadLetter.objects.acount() == 1


async def test_a_log_batch_rolled_back_by_a_deadlock_is_written_again(charger, monkeypatch):
    """A deadlock is no outage and no poison row: the batch is written again, whole."""
    import psycopg
    from django.db import OperationalError

    from chargers.plumbing.journal import journal

    real, calls = writer._write_batch, []

    async def write_batch(messages, samples):
        calls.append(len(messages))
        if len(calls) == 1:
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected()
        return await real(messages, samples)

    monkeypatch.setattr(writer, "_write_batch", write_batch)
    for n in range(3):
        await writer.add_message(
            charger_id=charger.pk,
            direction="in",
            message_type=2,
            unique_id=f"d{n}",
            action="Heartbeat",
            payload={},
        )
    await writer.flush()
    assert {m.unique_id async for m in OcppMessage.objects.filter(charger=charger)} == {
        "d0",
        "d1",
        "d2",
    }
    assert calls[:2] == [calls[0], calls[0]]  # the same batch again, not split into halves
    assert not journal.engaged and await OcppDeadLetter.objects.acount() == 0


async def test_last_seen_is_written_even_when_the_log_batch_fails(charger):
    await writer.add_message(
        charger_id=999_999_999,
        direction="in",
        message_type=2,
        unique_id="bad",
        action="Heartbeat",
        payload={},
    )
    writer.touch(charger.pk, heartbeat=True)
    await writer.flush(with_last_seen=True)
    refreshed = await Charger.objects.aget(pk=charger.pk)
    assert refreshed.last_heartbeat_at is not None


async def test_a_last_seen_write_never_waits_for_a_locked_charger_row(charger):
    """Last-seen times are written beside the log (PostgreSQL) and never wait for a charger row
    another batch holds (two batches waiting for each other's rows would deadlock): that
    charger's time waits in memory, meter values keep being committed, and it lands later."""
    import asyncio

    import psycopg
    from django.db import connection

    from backoffice import async_pg

    if connection.vendor != "postgresql":
        pytest.skip("the async last-seen write is PostgreSQL's")
    other = await sync_to_async(ChargerFactory)(station_id="CP-FREE", property=charger.property)
    sample = _energy_sample(charger)
    locker = await psycopg.AsyncConnection.connect(**async_pg.conninfo("test-row-lock"))
    try:
        await locker.execute(
            "SELECT id FROM chargers_charger WHERE id = %s FOR NO KEY UPDATE", [charger.pk]
        )
        writer.touch(charger.pk, heartbeat=True)
        writer.touch(other.pk, heartbeat=True)
        writer._seen_scanned = 0.0  # the next batch scans the last-seen times
        await writer.store_meter_samples([sample])
        seen_task = writer._seen_task
        assert seen_task is not None
        await asyncio.wait([seen_task], timeout=30)
        assert seen_task.done() and seen_task.exception() is None  # it did not wait for the lock
        assert (await Charger.objects.aget(pk=other.pk)).last_heartbeat_at is not None
        assert (await Charger.objects.aget(pk=charger.pk)).last_heartbeat_at is None
        await writer.store_meter_samples([sample])
        assert await MeterValue.objects.filter(charger=charger).acount() == 2
    finally:
        await locker.rollback()
        await locker.close()
    await writer.flush(with_last_seen=True)
    assert (await Charger.objects.aget(pk=charger.pk)).last_heartbeat_at is not None


async def test_one_charger_over_its_byte_share_waits_alone(charger, settings):
    """Backpressure is per charger: a flooding charger waits, another is buffered at once."""
    import asyncio

    from asgiref.sync import sync_to_async

    other = await sync_to_async(ChargerFactory)(station_id="CP-OTHER", property=charger.property)
    settings.OCPP_LOG_BUFFER_BYTES_PER_CHARGER = 50_000
    big = {"data": "x" * 40_000}
    writer._ensure_running()
    async with writer._flush_lock:  # the writer cannot flush meanwhile: the buffer only fills
        await writer.add_message(
            charger_id=charger.pk,
            direction="in",
            message_type=2,
            unique_id="b1",
            action="DataTransfer",
            payload=big,
        )
        second = asyncio.create_task(
            writer.add_message(
                charger_id=charger.pk,
                direction="in",
                message_type=2,
                unique_id="b2",
                action="DataTransfer",
                payload=big,
            )
        )
        await asyncio.sleep(0.05)
        assert not second.done()  # over its share: this charger waits
        # Another charger is not held up by it.
        await asyncio.wait_for(
            writer.add_message(
                charger_id=other.pk,
                direction="in",
                message_type=2,
                unique_id="o1",
                action="Heartbeat",
                payload={},
            ),
            1,
        )
    await asyncio.wait_for(second, 5)  # the writer drained the first frame: room again
    await writer.flush()
    assert {m.unique_id async for m in OcppMessage.objects.all()} == {"b1", "b2", "o1"}


@pytest.mark.django_db
def test_log_rows_replayed_from_the_journal_keep_their_payload_as_json(charger):
    """Rows the database could not take during an outage are journaled as they were bound for COPY
    (payload as JSON text); replayed, the payload is the object again (searchable, shown)."""
    from chargers.messagelog.log import _journal_entry, make_row
    from chargers.sessions import replay

    row, _ = make_row(
        charger_id=charger.pk,
        direction="in",
        message_type=2,
        unique_id="j1",
        action="Authorize",
        payload={"idTag": "CAFE"},
        text='[2,"j1","Authorize",{"idTag":"CAFE"}]',
    )
    entry = {**json.loads(json.dumps(_journal_entry([row]), default=str)), "seq": 1}
    replay.journal_apply("test-journal", entry)
    stored = OcppMessage.objects.get(unique_id="j1")
    assert stored.payload == {"idTag": "CAFE"} and stored.id_tag == "CAFE"


async def test_an_outage_while_a_poison_row_is_isolated_journals_the_rest_and_stalls_nothing(
    charger, monkeypatch, outage
):
    """The batch's frame rows are refused for a bad row; while they are cut in halves the
    database goes away, also for the readings written beside them. The half written stays
    written, the other frames go to the journal, and the meter values' handler is told (it
    journals its message): nobody waits for ever, nothing is written twice."""
    import asyncio

    from django.db import DataError, OperationalError

    from chargers.messagelog.log import DatabaseUnavailable
    from chargers.plumbing.journal import read_entries

    real, calls, gone = writer._write_batch, [], asyncio.Event()

    async def write_batch(messages, samples):
        uids = [m[4] for m in messages]
        calls.append((uids, len(samples)))
        if uids == ["i0", "i1", "i2", "i3"]:
            raise DataError("a bad row somewhere")
        if uids == ["i2", "i3"]:
            gone.set()
            raise OperationalError("connection refused")
        if samples:  # the readings' part, beside the frames': refused once the database is gone
            await gone.wait()
            raise OperationalError("connection refused")
        return await real(messages, samples)

    monkeypatch.setattr(writer, "_write_batch", write_batch)
    meters = await _one_batch(charger, [f"i{n}" for n in range(4)])
    done, _ = await asyncio.wait([meters], timeout=30)
    assert meters in done and isinstance(meters.exception(), DatabaseUnavailable)
    if writer._use_async_pg():  # PostgreSQL: the frame rows and the readings side by side
        assert sorted(calls) == [
            ([], 1),
            (["i0", "i1"], 0),
            (["i0", "i1", "i2", "i3"], 0),
            (["i2", "i3"], 0),
        ]
    else:  # SQLite's one database thread: one transaction for both, halved together
        assert calls[:3] == [(["i0", "i1", "i2", "i3"], 1), (["i0", "i1"], 0), (["i2", "i3"], 1)]
    assert {m.unique_id async for m in OcppMessage.objects.filter(charger=charger)} == {"i0", "i1"}
    assert outage.engaged
    entries, _ = read_entries(outage._path)
    assert [row[4] for entry in entries if entry["kind"] == "log" for row in entry["rows"]] == [
        "i2",
        "i3",
    ]
    assert await MeterValue.objects.filter(charger=charger).acount() == 0


@pytest.mark.django_db
def test_a_poison_row_in_a_replayed_log_entry_costs_only_itself(charger, prop):
    """A journaled batch holds rows of many chargers. One the database refuses (a NUL it cannot
    store in text or jsonb, from any path that did not clean it) is kept as a dead letter; every
    other row of the entry is stored. It used to dead-letter the whole entry (issue 33 item 5)."""
    from chargers.messagelog.log import _journal_entry, make_row
    from chargers.sessions import replay

    others = [ChargerFactory(station_id=f"CP-REPLAY-{n}", property=prop) for n in range(3)]
    rows = []
    for n in range(30):
        row, _ = make_row(
            charger_id=others[n % 3].pk,
            direction="in",
            message_type=2,
            unique_id=f"ok-{n}",
            action="Heartbeat",
            payload={},
            text=f'[2,"ok-{n}","Heartbeat",{{}}]',
        )
        rows.append(row)
    good, _ = make_row(
        charger_id=charger.pk,
        direction="in",
        message_type=2,
        unique_id="bad",
        action="DataTransfer",
        payload={"vendorId": "X"},
    )
    # As the rows reached the journal before: not cleaned. jsonb refuses \u0000, text a NUL.
    rows.insert(7, (*good[:7], '{"vendorId":"X","data":"a\\u0000b"}', *good[8:]))
    rows.insert(20, (*good[:4], "bad-raw", *good[5:8], "not json \x00", *good[9:]))
    entry = {**json.loads(json.dumps(_journal_entry(rows), default=str)), "seq": 1}
    replay.journal_apply("test-journal", entry)
    stored = set(OcppMessage.objects.values_list("unique_id", flat=True))
    if settings.IS_POSTGRES:
        assert stored == {f"ok-{n}" for n in range(30)}
        assert OcppDeadLetter.objects.filter(kind="message", charger_id=charger.pk).count() == 2
    else:  # SQLite stores NUL: nothing to isolate
        assert stored == {f"ok-{n}" for n in range(30)} | {"bad", "bad-raw"}
    assert not OcppDeadLetter.objects.filter(kind="journal").exists()


def test_a_call_of_ours_logged_without_its_text_is_cleaned_too():
    """A DataTransfer sent through the API with a NUL in its data, or a violation quoting one,
    reaches the log storable: the stored payload shows the escape, `raw` keeps what was sent."""
    from chargers.messagelog.log import make_row

    payload = {"vendorId": "X", "data": "a\x00b"}
    row, _ = make_row(
        charger_id=1,
        direction="out",
        message_type=2,
        unique_id="c1",
        action="DataTransfer",
        payload=payload,
        violation="reason 'x\x00' unknown",
    )
    assert json.loads(row[7]) == {"vendorId": "X", "data": "a\\u0000b"}
    assert row[9] is True and json.loads(json.loads(row[8])) == payload
    assert row[10] == "reason 'x\\u0000' unknown"


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the two parts go side by side on the event loop's PostgreSQL connections",
)
async def test_a_batch_writes_its_readings_beside_its_frame_rows_not_after_them(charger):
    """Issue 48: a batch's readings are written while its frame rows are still being written,
    each part in one round trip, instead of one after the other in one transaction: the
    readings are committed (their MeterValues can be answered) while the rows still wait."""
    import asyncio

    real, release = writer._write_batch, asyncio.Event()

    async def write_batch(messages, samples):
        if messages:
            await release.wait()  # the frame rows' part is slow (a busy database, a long COPY)
        return await real(messages, samples)

    writer._write_batch = write_batch
    try:
        meters = await _one_batch(charger, ["beside"])
        async with asyncio.timeout(60):
            while not await MeterValue.objects.filter(charger=charger).aexists():
                await asyncio.sleep(0.02)
        assert not await OcppMessage.objects.filter(unique_id="beside").aexists()
        release.set()
        await asyncio.wait_for(meters, 60)
        await writer.flush()
        assert await OcppMessage.objects.filter(unique_id="beside").acount() == 1
    finally:
        release.set()
        writer._write_batch = real
