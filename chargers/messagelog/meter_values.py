"""The one home of meter-value rows (issue 50 item 3).

Every writer of `MeterValue` rows (the message log's samples, a 1.6 stop's transaction data, a
2.0.1 TransactionEvent's readings, MeterValues at journal replay) builds them as `MeterRow`s and
writes them by one of two paths, side by side over the same rule (`_columns`): `store_orm`
(Django, any database: the replay, SQLite, the full paths inside a session's transaction) and
`store_copy` (COPY on an async PostgreSQL cursor: the batched hot paths). The rule: texts cleaned
of what PostgreSQL cannot store and cut to their columns' sizes, the value read as a number where
it is one (`reading_value`), the raw text kept (cut to 100). Before, the ORM paths did not cut:
a 2.0.1 unit longer than its 10-character column stored by COPY failed the same row written by the
ORM. tests/chargers/test_meter_value_rows.py writes one table of edge cases both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from chargers.ocpp.readings import reading_value
from chargers.ocpp.storable import clean_text

COLUMNS = (
    "charger_id, session_id, connector_id, timestamp, measurand, phase, unit, context, location, "
    "value, raw_value"
)
_FIELDS = tuple(name.strip() for name in COLUMNS.split(","))


class MeterRow(NamedTuple):
    """One sampled value to store, as read (the rule is applied when it is written)."""

    charger_id: int
    session_id: int | None
    connector_id: int
    timestamp: datetime
    measurand: str
    phase: str
    unit: str
    context: str
    location: str
    raw: str


class _Sample(Protocol):
    value: str
    measurand: str
    phase: str
    unit: str
    context: str
    location: str


class _Reading(Protocol):
    timestamp: datetime

    @property
    def samples(self) -> Sequence[_Sample]: ...


def rows_of(
    charger_id: int, connector_id: int, session_id: int | None, readings: Iterable[_Reading]
) -> list[MeterRow]:
    """The rows of a message's readings (chargers.ocpp.tolerant.MeterReading), one per sample."""
    return [
        MeterRow(
            charger_id,
            session_id,
            connector_id,
            reading.timestamp,
            s.measurand,
            s.phase,
            s.unit,
            s.context,
            s.location,
            s.value,
        )
        for reading in readings
        for s in reading.samples
    ]


def _columns(row: MeterRow) -> tuple[Any, ...]:
    """The row's columns in COLUMNS' order: the one rule both paths write by."""
    charger_id, session_id, connector_id, timestamp, *texts = row
    joined = "".join(texts)
    if not joined.isascii() or "\x00" in joined:  # rare: one check for the six texts
        texts = [clean_text(text) for text in texts]
    measurand, phase, unit, context, location, raw = texts
    return (
        charger_id,
        session_id,
        connector_id,
        timestamp,
        measurand[:50],
        phase[:10],
        unit[:10],
        context[:20],
        location[:10],
        reading_value(measurand, unit, raw),
        raw[:100],
    )


def store_orm(rows: Iterable[MeterRow]) -> int:
    """Write the rows with the ORM (in the caller's transaction); returns how many."""
    from chargers.models import MeterValue

    models = [MeterValue(**dict(zip(_FIELDS, _columns(row), strict=True))) for row in rows]
    if models:
        MeterValue.objects.bulk_create(models)
    return len(models)


async def store_copy(cur: Any, rows: Iterable[MeterRow]) -> None:
    """Write the rows by COPY on an async psycopg cursor (in its transaction)."""
    from chargers.models import MeterValue

    async with cur.copy(f"COPY {MeterValue._meta.db_table} ({COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(_columns(row))
