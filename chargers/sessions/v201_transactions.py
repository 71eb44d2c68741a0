"""OCPP 2.0.1 transactions in domain words. Pure: no I/O, no Django.

A 2.0.1 transaction is a sequence of TransactionEvent messages (Started, Updated..., Ended)
numbered by seqNo (E01-E06). Events can arrive late (queued while offline, C/E "offline"),
twice (a lost answer) or out of order, and must never be refused (a CALLERROR loses billing
data). So the session is not built by applying events as they come: it is recomputed from
every event received so far, in seqNo order (`fold`), which makes the result the same whatever
order and however often they arrive.

`read_event` reads a payload leniently: what breaks the schema but is still understandable is
recorded as a violation, as for the 1.6 transaction messages (chargers.ocpp.tolerant).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import fastjsonschema

from chargers.ocpp import clock
from chargers.ocpp import quirks as q
from chargers.ocpp.energy import register_wh as _register
from chargers.ocpp.protocol import OcppError, parse_datetime
from chargers.ocpp.protocol201 import OCCURRENCE_CONSTRAINT_VIOLATION
from chargers.ocpp.storable import clean_text
from chargers.ocpp.tolerant import MeterReading, Sample
from chargers.sessions.rules import meter_stop_floor

ENERGY_REGISTER = "Energy.Active.Import.Register"
TRANSACTION_ID_MAX = 36
ID_TOKEN_MAX = 36
STOP_REASON_MAX = 20
INT32_MAX = 2**31 - 1
VIOLATION_MAX = 500
SAMPLE_FIELDS = {"measurand": 50, "phase": 10, "context": 20, "location": 10}


@dataclass
class TxEvent:
    """The usable values of one TransactionEvent."""

    transaction_id: str
    event_type: str  # Started | Updated | Ended
    timestamp: datetime
    seq_no: int | None
    trigger_reason: str = ""
    offline: bool = False
    charging_state: str = ""
    stopped_reason: str = ""
    remote_start_id: int | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    id_token: str = ""
    id_token_type: str = ""
    reservation_id: int | None = None
    phases_used: int | None = None  # numberOfPhasesUsed: the phases the car draws on
    meter_values: list[MeterReading] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # Deviations met that the charger's quirk profile does not name (chargers.ocpp.quirks).
    deviations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def violation(self) -> str:
        return "; ".join(self.violations)[:VIOLATION_MAX]


def _int(value: Any, low: int = 0, high: int = INT32_MAX) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int) -> str:
    """Text as stored and looked up: NUL and lone surrogates (which PostgreSQL refuses) escaped,
    so the same text read twice is the same key (storable.clean_text)."""
    return clean_text(value)[:limit] if isinstance(value, str) else ""


def _scaled(value: Any, multiplier: Any) -> str:
    """The sampled value times 10^multiplier, as a decimal string ('' when unusable)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return ""
    if isinstance(value, int) and multiplier in (None, 0):
        return str(value)  # the common case (a register in Wh), without a Decimal round trip
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)[:100]
    if not number.is_finite():
        return str(value)[:100]
    exponent = _int(multiplier, -9, 9) or 0
    return format(number.scaleb(exponent).normalize(), "f")


def read_meter_values(
    items: Any,
    received: datetime,
    quirks: q.Quirks = q.NONE,
    deviations: list[tuple[str, str]] | None = None,
) -> list[MeterReading]:
    """2.0.1 MeterValueType list -> readings in the 1.6 shape the stores use (value with the
    multiplier applied, unit as text; Wh when none is given: 2.0.1 UnitOfMeasureType default),
    the energy register's unit as the charger's quirk profile says it is (docs/quirks.md).
    Deviations met that the profile does not name go in `deviations`."""
    readings: list[MeterReading] = []
    if not isinstance(items, list):
        return readings
    for item in items:
        if not isinstance(item, dict):
            continue
        timestamp, _ = _timestamp(item.get("timestamp"), received, quirks, deviations)
        samples = []
        for sampled in item.get("sampledValue") or []:
            if not isinstance(sampled, dict):
                continue
            unit_of_measure = _dict(sampled.get("unitOfMeasure"))
            measurand = _text(sampled.get("measurand"), 50) or ENERGY_REGISTER
            unit = _text(unit_of_measure.get("unit"), 10) or "Wh"
            if measurand.endswith(".Register"):  # only an energy register has a unit rule
                if deviations is not None and q.unknown_energy_unit(measurand, unit):
                    q.met(
                        deviations,
                        quirks,
                        q.UNKNOWN_ENERGY_UNIT,
                        f"{measurand} in {unit!r}: read as Wh",
                    )
                unit = q.energy_unit(measurand, unit, quirks)
            samples.append(
                Sample(
                    value=_scaled(sampled.get("value"), unit_of_measure.get("multiplier")),
                    measurand=measurand,
                    phase=_text(sampled.get("phase"), 10),
                    unit=unit,
                    context=_text(sampled.get("context"), 20),
                    location=_text(sampled.get("location"), 10),
                )
            )
        if samples:
            readings.append(MeterReading(timestamp=timestamp, samples=samples))
    return readings


def _timestamp(
    value: Any,
    received: datetime,
    quirks: q.Quirks = q.NONE,
    deviations: list[tuple[str, str]] | None = None,
) -> tuple[datetime, str]:
    """The time to use for a timestamp field, and why the receive time replaced a time that
    was sent ("" if none was replaced: chargers.ocpp.clock)."""
    if isinstance(value, str):
        try:
            when, problem = clock.checked(parse_datetime(value), received)
        except (ValueError, OverflowError):
            return received, ""
        if problem and deviations is not None:
            q.met(deviations, quirks, q.CLOCK_WRONG, f"{value[:40]!r} {problem}")
        return when, (f"timestamp {value[:40]!r} {problem}: receive time used" if problem else "")
    return received, ""


def read_event(
    payload: dict,
    validator: Callable[[dict], Any],
    received: datetime,
    quirks: q.Quirks = q.NONE,
) -> TxEvent:
    """Return the usable values of a TransactionEvent payload.

    Raises OcppError only when the payload names no transaction (transactionInfo.transactionId):
    without it the event cannot belong to anything.
    """
    violations: list[str] = []
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        violations.append(exc.message)
    info = payload.get("transactionInfo")
    transaction_id = info.get("transactionId") if isinstance(info, dict) else None
    if not isinstance(transaction_id, str) or not transaction_id.strip():
        raise OcppError(
            OCCURRENCE_CONSTRAINT_VIOLATION, "transactionInfo.transactionId is required"
        )
    info = info if isinstance(info, dict) else {}
    event_type = payload.get("eventType")
    if event_type not in ("Started", "Updated", "Ended"):
        event_type = "Updated"
    deviations: list[tuple[str, str]] = []
    timestamp, replaced = _timestamp(payload.get("timestamp"), received, quirks, deviations)
    if replaced:
        violations.append(replaced)
    evse = _dict(payload.get("evse"))
    token = _dict(payload.get("idToken"))
    return TxEvent(
        transaction_id=_text(transaction_id, TRANSACTION_ID_MAX),
        event_type=event_type,
        timestamp=timestamp,
        seq_no=_int(payload.get("seqNo")),
        trigger_reason=_text(payload.get("triggerReason"), 30),
        offline=payload.get("offline") is True,
        charging_state=_text(info.get("chargingState"), 20),
        stopped_reason=_text(info.get("stoppedReason"), STOP_REASON_MAX),
        remote_start_id=_int(info.get("remoteStartId"), -INT32_MAX - 1),
        evse_id=_int(evse.get("id")),
        connector_id=_int(evse.get("connectorId")),
        id_token=_text(token.get("idToken"), ID_TOKEN_MAX),
        id_token_type=_text(token.get("type"), 20),
        reservation_id=_int(payload.get("reservationId"), -INT32_MAX - 1),
        phases_used=_int(payload.get("numberOfPhasesUsed"), 1, 3),
        meter_values=read_meter_values(payload.get("meterValue"), received, quirks, deviations),
        violations=violations,
        deviations=deviations,
    )


def last_energy_reading_at(event: TxEvent) -> datetime | None:
    """The time of the event's last energy register reading (stored as the session's
    `Energy.Active.Import.Register` rows, phase-less), if it carries one."""
    times = [
        reading.timestamp
        for reading in event.meter_values
        if any(
            sample.measurand == ENERGY_REGISTER and not sample.phase for sample in reading.samples
        )
    ]
    return max(times) if times else None


def register_wh(reading: MeterReading) -> Decimal | None:
    """The energy import register of a reading in Wh (phase-less sample), if it has one: exact,
    decimals and kWh included (chargers.ocpp.energy)."""
    for sample in reading.samples:
        if sample.measurand != ENERGY_REGISTER or sample.phase:
            continue
        wh = _register(sample.value, sample.unit)
        if wh is not None:
            return wh
    return None


def transaction_end_wh(event: TxEvent) -> Decimal | None:
    """The energy register (Wh) of the event's `Transaction.End` reading, if it has one: where an
    Ended says the transaction stopped (E06), whatever other readings say."""
    for reading in event.meter_values:
        if any(sample.context == "Transaction.End" for sample in reading.samples):
            wh = register_wh(reading)
            if wh is not None:
                return wh
    return None


def end_register_wh(event: TxEvent) -> Decimal | None:
    """The energy register (Wh) where an Ended says its transaction stopped: its
    `Transaction.End` reading, else its latest reading that has one, as `fold` orders readings
    (by the charger's time; of equal times, the later in the message). For an Ended whose
    readings are all newer than any stored one this is where the transaction ended."""
    end = transaction_end_wh(event)
    if end is not None:
        return end
    registers = [
        (reading.timestamp, wh)
        for reading in event.meter_values
        if (wh := register_wh(reading)) is not None
    ]
    if not registers:
        return None
    registers.sort(key=lambda item: item[0])  # stable, as fold's sort
    return registers[-1][1]


@dataclass(frozen=True)
class TxState:
    """A transaction as all its events so far describe it."""

    started_at: datetime
    # None: no event carried an energy register reading (yet); at the end, "no reading
    # reported", never 0 kWh.
    meter_start_wh: Decimal | None
    ended: bool
    stopped_at: datetime | None
    meter_stop_wh: Decimal | None
    stop_reason: str
    id_token: str
    id_token_type: str
    stop_id_token: str
    evse_id: int | None
    remote_start_id: int | None
    reservation_id: int | None
    charging_state: str
    has_started_event: bool
    # Events numbered after the Ended (by seqNo, not by arrival): stored and logged, never
    # counted (a closed session stays as its Ended left it).
    late_events: int = 0


def _order(event: TxEvent) -> tuple[int, datetime]:
    # seqNo first (E.FR: "incremental sequence number"); events without one by their time.
    return (event.seq_no if event.seq_no is not None else INT32_MAX, event.timestamp)


def _counted(ordered: list[TxEvent]) -> tuple[list[TxEvent], int]:
    """The events that belong to the transaction, and how many came numbered after its Ended.
    "After" is by seqNo: a queued Updated numbered below the Ended still counts when it arrives
    after it (conformance case E_31); one numbered above never changes the closed session."""
    ended = next((e for e in ordered if e.event_type == "Ended"), None)
    if ended is None or ended.seq_no is None:
        return ordered, 0
    counted = [e for e in ordered if e.seq_no is None or e.seq_no <= ended.seq_no]
    return counted, len(ordered) - len(counted)


def fold(events: Iterable[TxEvent]) -> TxState:
    """Return the transaction described by `events`, whatever order they arrived in."""
    ordered = sorted(events, key=_order)
    if not ordered:
        raise ValueError("a transaction has at least one event")
    ordered, late = _counted(ordered)
    started = next((e for e in ordered if e.event_type == "Started"), None)
    ended = next((e for e in ordered if e.event_type == "Ended"), None)
    # Every register reading, by the charger's time (then seqNo): the first is where the
    # transaction started, the last where it ended, whichever message carried them.
    registers: list[tuple[datetime, int, Decimal]] = []
    for event in ordered:
        for reading in event.meter_values:
            wh = register_wh(reading)
            if wh is not None:
                registers.append((reading.timestamp, event.seq_no or 0, wh))
    registers.sort(key=lambda item: (item[0], item[1]))
    start_register = None
    if started is not None:
        start_register = next(
            (register_wh(r) for r in started.meter_values if register_wh(r) is not None), None
        )
    meter_start = (
        start_register if start_register is not None else (registers[0][2] if registers else None)
    )
    started_at = started.timestamp if started is not None else min(e.timestamp for e in ordered)
    id_token = next((e.id_token for e in ordered if e.id_token), "")
    id_token_type = next((e.id_token_type for e in ordered if e.id_token), "")
    meter_stop = None
    stopped_at = None
    stop_reason = ""
    stop_id_token = ""
    if ended is not None:
        stopped_at = ended.timestamp
        # The Ended's Transaction.End reading when it has one, else the last reading; never below
        # its start; none when no event carried a reading (chargers.sessions.rules). The Ended's
        # own latest reading counts even when an earlier event's reading sorts after it: a clock
        # too far ahead at the Ended (its times replaced by ours) must not bill an Updated's
        # lower register. An import register only grows within a transaction: the higher wins.
        end = transaction_end_wh(ended)
        if end is None:
            candidates = [wh for wh in (end_register_wh(ended),) if wh is not None]
            candidates += [registers[-1][2]] if registers else []
            end = max(candidates, default=None)
        meter_stop = meter_stop_floor(end, meter_start)
        # E06: stoppedReason is left out when it is "Local".
        stop_reason = (
            next((e.stopped_reason for e in reversed(ordered) if e.stopped_reason), "") or "Local"
        )
        stop_id_token = ended.id_token
    return TxState(
        started_at=started_at,
        meter_start_wh=meter_start,
        ended=ended is not None,
        stopped_at=stopped_at,
        meter_stop_wh=meter_stop,
        stop_reason=stop_reason[:STOP_REASON_MAX],
        id_token=id_token,
        id_token_type=id_token_type,
        stop_id_token=stop_id_token,
        evse_id=next((e.evse_id for e in ordered if e.evse_id is not None), None),
        remote_start_id=next(
            (e.remote_start_id for e in ordered if e.remote_start_id is not None), None
        ),
        reservation_id=next(
            (e.reservation_id for e in ordered if e.reservation_id is not None), None
        ),
        charging_state=next((e.charging_state for e in reversed(ordered) if e.charging_state), ""),
        has_started_event=started is not None,
        late_events=late,
    )
