"""The one home of meter-value rows (chargers.messagelog.meter_values): the ORM path and the COPY
path store the same rows from the same readings, edge cases included (issue 50 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from backoffice import async_pg
from chargers.messagelog import meter_values
from chargers.models import MeterValue
from chargers.ocpp.tolerant import MeterReading, Sample
from tests.factories import ChargerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's"),
]

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

# What chargers send: plain readings and the edges each column has.
READINGS = [
    MeterReading(
        T0,
        [
            Sample("1500.25", unit="Wh", context="Sample.Periodic"),
            Sample("7200", measurand="Power.Active.Import", unit="W", phase="L1-N"),
            Sample("1.5e3", measurand="Energy.Active.Import.Register", unit="Wh"),
            Sample("not a number", measurand="Voltage", unit="V", location="Outlet"),
            # A 2.0.1 unit may be 20 characters; the column holds 10.
            Sample("3", measurand="Current.Import", unit="customUnitOf20chars!"),
            Sample("2", measurand="M" * 60, context="C" * 30, location="L" * 20, phase="P" * 12),
            Sample("4\x00", measurand="Voltage", unit="V\x00", context="Trigger\x00"),
            Sample("9" * 130, measurand="Energy.Active.Import.Register", unit="Wh"),
            Sample("\ud800", measurand="Temperature", unit="Celsius"),
        ],
    ),
]


def _stored(charger_id: int) -> list[tuple]:
    return [
        tuple(row)
        for row in MeterValue.objects.filter(charger_id=charger_id)
        .order_by("pk")
        .values_list(
            "session_id",
            "connector_id",
            "timestamp",
            "measurand",
            "phase",
            "unit",
            "context",
            "location",
            "value",
            "raw_value",
        )
    ]


async def _copy(rows: list[meter_values.MeterRow]) -> None:
    writer = async_pg.LoopConnection("test-meter-rows")
    try:
        async with writer.use() as conn, conn.transaction(), conn.cursor() as cur:
            await meter_values.store_copy(cur, rows)
    finally:
        writer.close()


async def test_the_orm_and_copy_paths_store_the_same_rows():
    from asgiref.sync import sync_to_async

    by_orm, by_copy = await sync_to_async(lambda: (ChargerFactory(), ChargerFactory()))()
    await sync_to_async(meter_values.store_orm)(meter_values.rows_of(by_orm.pk, 1, None, READINGS))
    await _copy(meter_values.rows_of(by_copy.pk, 1, None, READINGS))

    orm, copied = await sync_to_async(_stored)(by_orm.pk), await sync_to_async(_stored)(by_copy.pk)
    assert len(orm) == len(READINGS[0].samples)
    assert orm == copied
    # The rule itself: numbers read, texts cut to their columns, NUL and lone surrogates escaped.
    assert [row[8] for row in orm[:4]] == [
        Decimal("1500.25"),
        Decimal("7200"),
        Decimal("1500"),
        None,
    ]
    assert orm[4][5] == "customUnit"
    assert (len(orm[5][3]), len(orm[5][4]), len(orm[5][6]), len(orm[5][7])) == (50, 10, 20, 10)
    assert "\x00" not in orm[6][5] + orm[6][6] + orm[6][9]
    assert len(orm[7][9]) == 100
    assert orm[8][9] == "\\ud800"
