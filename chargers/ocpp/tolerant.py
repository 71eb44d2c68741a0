"""Lenient reading of OCPP 1.6 transaction messages. Pure: no I/O, no Django.

A CALLERROR on StartTransaction, StopTransaction or MeterValues is data loss: the charger
retries a few times and then discards the message (OCPP 1.6 §3.7). So a payload that breaks
the schema in a way we can still understand (a vendor stop reason, an extra field, a
21-character idTag, a number out of range, a timestamp we cannot parse) is accepted: this
module returns the values to use and the list of violations to record on the message.
Only a payload naming no connector (StartTransaction, MeterValues) or no transaction
(StopTransaction) is refused. Every number is brought inside the database column's range
here, so nothing out of range reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import fastjsonschema

from chargers.ocpp import clock
from chargers.ocpp import quirks as q
from chargers.ocpp.energy import exact_wh, number
from chargers.ocpp.protocol import (
    OCCURENCE_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    OcppError,
    parse_datetime,
)
from chargers.ocpp.storable import clean_text

INT32_MAX = 2**31 - 1
ID_TAG_MAX = 36  # column size; the schema says 20, longer tags are kept up to 36 and flagged
STOP_REASON_MAX = 20
SAMPLE_FIELDS = {"measurand": 50, "phase": 10, "unit": 10, "context": 20, "location": 10}
VALUE_MAX = 100
VIOLATION_MAX = 500


@dataclass
class Sample:
    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str = ""
    unit: str = ""
    context: str = ""
    location: str = ""


@dataclass
class MeterReading:
    timestamp: datetime
    samples: list[Sample]


@dataclass
class Reading:
    """The usable values of a transaction message and what was wrong with it."""

    violations: list[str] = field(default_factory=list)
    connector_id: int = 0
    transaction_id: int | None = None
    id_tag: str = ""
    meter: Decimal | None = None  # meterStart / meterStop in Wh, exact
    timestamp: datetime | None = None
    reason: str = ""
    reservation_id: int | None = None
    meter_values: list[MeterReading] = field(default_factory=list)
    # Deviations met that the charger's quirk profile does not name: (code, what was seen),
    # recorded on the charger by the handler (chargers.state.quirks.observed).
    deviations: list[tuple[str, str]] = field(default_factory=list)
    # The message's own timestamp was no time the charger can have meant (chargers.ocpp.clock):
    # `timestamp` is the receive time, so a resend of it is not known by its time.
    clock_wrong: bool = False

    @property
    def violation(self) -> str:
        return "; ".join(self.violations)[:VIOLATION_MAX]


def _as_int(value: Any) -> int | None:
    """An integer, or a number/string that is one (1.0, "7"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _int_field(
    reading: Reading, payload: dict, name: str, lo: int, hi: int, *, required: bool
) -> int | None:
    if name not in payload:
        if required:
            raise OcppError(OCCURENCE_CONSTRAINT_VIOLATION, f"{name} is required", {"field": name})
        return None
    number = _as_int(payload[name])
    if number is None:
        if required:
            raise OcppError(
                OCCURENCE_CONSTRAINT_VIOLATION, f"{name} is not an integer", {"field": name}
            )
        reading.violations.append(f"{name} {str(payload[name])[:40]!r} is not an integer: ignored")
        return None
    if not isinstance(payload[name], int):
        reading.violations.append(f"{name} sent as {type(payload[name]).__name__}")
    if not lo <= number <= hi:
        reading.violations.append(f"{name} {number} out of range {lo}..{hi}")
        return None
    return number


def _meter_field(
    reading: Reading, payload: dict, name: str, quirks: q.Quirks = q.NONE
) -> Decimal | None:
    """meterStart / meterStop in Wh. The schema says integer; a charger that sends its register
    with decimals (1234.5, "1234.5") is taken exactly and flagged, never cut to an integer. A
    charger whose register is kWh labelled Wh sends them in kWh: scaled exactly (quirks)."""
    if name not in payload:
        return None
    raw = payload[name]
    value = number(raw)
    if value is None or not value.is_finite():
        reading.violations.append(f"{name} {str(raw)[:40]!r} is not a number: ignored")
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        reading.violations.append(f"{name} sent as {type(raw).__name__}")
    if q.register_kwh(quirks):
        value = value.scaleb(3)  # kWh → Wh: a shift of the decimal point, exact
    wh = exact_wh(value)
    if wh is None:
        reading.violations.append(f"{name} {str(raw)[:40]} out of range")
    elif wh != value:
        reading.violations.append(f"{name} {str(raw)[:40]} has more decimals than kept")
    return wh


def _text(reading: Reading, payload: dict, name: str, limit: int) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        reading.violations.append(f"{name} sent as {type(value).__name__}")
        value = str(value)
    value = clean_text(value)  # NUL / lone surrogates would make the database refuse the row
    if len(value) > limit:
        reading.violations.append(f"{name} longer than {limit} characters: cut")
        value = value[:limit]
    return value


def _timestamp(
    reading: Reading, value: Any, name: str, received: datetime, quirks: q.Quirks
) -> datetime:
    if isinstance(value, str):
        try:
            when, problem = clock.checked(parse_datetime(value), received)
        except (ValueError, OverflowError):
            pass
        else:
            if problem:
                reading.violations.append(f"{name} {value[:40]!r} {problem}: receive time used")
                q.met(reading.deviations, quirks, q.CLOCK_WRONG, f"{value[:40]!r} {problem}")
                reading.clock_wrong = True
            return when
    reading.violations.append(f"{name} {str(value)[:40]!r} is not a date-time: receive time used")
    return received


def _schema_violation(validator: Callable[[Any], Any], payload: dict) -> str | None:
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        return f"schema: {exc.message}"
    return None


def _meter_values(
    reading: Reading, entries: Any, received: datetime, quirks: q.Quirks = q.NONE
) -> list[MeterReading]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        reading.violations.append("meter values are not a list: ignored")
        return []
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            reading.violations.append("a meter value is not an object: ignored")
            continue
        when = _timestamp(reading, entry.get("timestamp"), "timestamp", received, quirks)
        samples = []
        raw_samples = entry.get("sampledValue")
        for sample in raw_samples if isinstance(raw_samples, list) else []:
            if not isinstance(sample, dict) or "value" not in sample:
                reading.violations.append("a sampled value without value: ignored")
                continue
            values = {
                name: _text(reading, sample, name, limit) for name, limit in SAMPLE_FIELDS.items()
            }
            signed = str(sample.get("format", "")).lower() == "signeddata"
            measurand = values["measurand"] or "Energy.Active.Import.Register"
            unit = values["unit"]
            if measurand.endswith(".Register"):  # only an energy register has a unit rule
                if q.unknown_energy_unit(measurand, unit):
                    q.met(
                        reading.deviations,
                        quirks,
                        q.UNKNOWN_ENERGY_UNIT,
                        f"{measurand} in {unit!r}: read as Wh",
                    )
                # The charger's profile may say its register's "Wh" is kWh (docs/quirks.md).
                unit = q.energy_unit(measurand, unit, quirks)
            samples.append(
                Sample(
                    # A signed value is kept whole elsewhere (chargers.models.SignedSample,
                    # the session's transaction_data): cutting its copy here is no violation.
                    value=clean_text(str(sample["value"]))[:VALUE_MAX]
                    if signed
                    else _text(reading, sample, "value", VALUE_MAX),
                    measurand=measurand,
                    phase=values["phase"],
                    unit=unit,
                    context=values["context"],
                    location=values["location"],
                )
            )
        out.append(MeterReading(when, samples))
    return out


def _required_int(payload: dict, name: str) -> None:
    """Raise the OCPP-J error that says what is wrong with a field the message cannot do without:
    missing (OccurenceConstraintViolation) or not an integer (TypeConstraintViolation)."""
    if name not in payload:
        raise OcppError(OCCURENCE_CONSTRAINT_VIOLATION, f"{name} is required", {"field": name})
    if _as_int(payload[name]) is None:
        raise OcppError(
            TYPE_CONSTRAINT_VIOLATION,
            f"{name} {str(payload[name])[:40]!r} is not an integer",
            {"field": name},
        )


def _connector(reading: Reading, payload: dict) -> int:
    _required_int(payload, "connectorId")
    connector = _int_field(reading, payload, "connectorId", 0, INT32_MAX, required=True)
    # Out of range: recorded as connector 0 (the charger as a whole) and flagged.
    return connector if connector is not None else 0


def read_start(
    payload: dict, validator: Callable[[Any], Any], received: datetime, quirks: q.Quirks = q.NONE
) -> Reading:
    reading = Reading()
    if (violation := _schema_violation(validator, payload)) is not None:
        reading.violations.append(violation)
    reading.connector_id = _connector(reading, payload)
    if "idTag" not in payload:
        reading.violations.append("idTag missing")
    reading.id_tag = _text(reading, payload, "idTag", ID_TAG_MAX)
    meter = _meter_field(reading, payload, "meterStart", quirks)
    if meter is None:
        reading.violations.append("meterStart unusable: 0 used")
        q.met(reading.deviations, quirks, q.METER_START_MISSING, "meterStart unusable: 0 used")
    reading.meter = meter if meter is not None else Decimal(0)
    reading.timestamp = _timestamp(reading, payload.get("timestamp"), "timestamp", received, quirks)
    reading.reservation_id = _int_field(
        reading, payload, "reservationId", -(2**31), INT32_MAX, required=False
    )
    return reading


def read_stop(
    payload: dict, validator: Callable[[Any], Any], received: datetime, quirks: q.Quirks = q.NONE
) -> Reading:
    reading = Reading()
    if (violation := _schema_violation(validator, payload)) is not None:
        reading.violations.append(violation)
    _required_int(payload, "transactionId")
    # We issue 1..INT32_MAX: anything else cannot be ours and becomes an orphan stop (id 0).
    transaction_id = _int_field(reading, payload, "transactionId", 1, INT32_MAX, required=True)
    reading.transaction_id = transaction_id if transaction_id is not None else 0
    reading.meter = _meter_field(reading, payload, "meterStop", quirks)
    if reading.meter is None:
        reading.violations.append("meterStop unusable: the last meter reading is used")
        q.met(
            reading.deviations,
            quirks,
            q.METER_STOP_MISSING,
            "meterStop missing or unusable: the last meter reading is used",
        )
    reading.timestamp = _timestamp(reading, payload.get("timestamp"), "timestamp", received, quirks)
    reading.id_tag = _text(reading, payload, "idTag", ID_TAG_MAX)
    reading.reason = _text(reading, payload, "reason", STOP_REASON_MAX)
    reading.meter_values = _meter_values(reading, payload.get("transactionData"), received, quirks)
    return reading


def read_meter_values(
    payload: dict, validator: Callable[[Any], Any], received: datetime, quirks: q.Quirks = q.NONE
) -> Reading:
    reading = Reading()
    if (violation := _schema_violation(validator, payload)) is not None:
        reading.violations.append(violation)
    reading.connector_id = _connector(reading, payload)
    reading.transaction_id = _int_field(
        reading, payload, "transactionId", 1, INT32_MAX, required=False
    )
    if "meterValue" not in payload:
        reading.violations.append("meterValue missing")
    reading.meter_values = _meter_values(reading, payload.get("meterValue"), received, quirks)
    return reading
