"""Reads of signed metering: what a session's signed readings say, for every surface (session
API, host page, guest receipt, driver history, admin, assistant, OCPI CDR, billing)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chargers.models import ChargingSession

from .models import MeterKey, SignedReading

# SignedSummary.status: the four per-value results, and `incomplete` (a signed start or end is
# missing: the charger's meter has a registered key, or it signed some value, but not both).
SUMMARY_STATUSES = ("verified", "invalid_signature", "unknown_key", "malformed", "incomplete")


@dataclass(frozen=True)
class SignedValue:
    nature: str  # start | end | intermediate
    status: str  # verified | invalid_signature | unknown_key | malformed
    reason: str
    value_wh: Decimal | None
    time: datetime | None  # the meter's clock
    meter_serial: str
    pagination: str
    ocmf: str  # the whole OCMF text, as the S.A.F.E. transparency software reads it
    encoding: str  # OCMF
    signing_method: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "nature": self.nature,
            "status": self.status,
            "reason": self.reason,
            "value_wh": str(self.value_wh) if self.value_wh is not None else None,
            "time": self.time.isoformat() if self.time else None,
            "meter_serial": self.meter_serial,
            "pagination": self.pagination,
            "ocmf": self.ocmf,
            "encoding": self.encoding,
            "signing_method": self.signing_method,
        }


@dataclass(frozen=True)
class SignedSummary:
    status: str  # one of SUMMARY_STATUSES
    reason: str  # why it is not verified ('' when it is)
    start: SignedValue | None
    end: SignedValue | None
    public_key: str  # hex DER of the meter's registered key ('' when none)
    signing_method: str
    values: tuple[SignedValue, ...]  # all of them, start, intermediate, end, in time order
    energy_wh: Decimal | None  # signed end - signed start, only when both are verified

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def as_dict(self) -> dict[str, Any]:
        """The session API's `signed_meter_values`."""
        return {
            "status": self.status,
            "reason": self.reason,
            "start": self.start.as_dict() if self.start else None,
            "end": self.end.as_dict() if self.end else None,
            "public_key": self.public_key,
            "signing_method": self.signing_method,
            "encoding_method": "OCMF",
            "values": [value.as_dict() for value in self.values],
            "energy_wh": str(self.energy_wh) if self.energy_wh is not None else None,
        }


def _value(row: SignedReading) -> SignedValue:
    return SignedValue(
        nature=row.nature,
        status=row.status,
        reason=row.reason,
        value_wh=row.value_wh,
        time=row.time,
        meter_serial=row.meter_serial,
        pagination=row.pagination,
        ocmf=row.raw,
        encoding=row.encoding,
        signing_method=row.signing_method,
    )


def signature_expected(session: ChargingSession) -> bool:
    """Whether the session's charger has a registered meter key (its meter signs)."""
    return MeterKey.objects.filter(charger_id=session.charger_id).exists()


def key_for_reading(
    keys: list[MeterKey], *, meter_serial: str, port: int | None
) -> MeterKey | None:
    """The key registered for a reading's meter (confirmed or not): by the serial the reading
    names, or, when it names none, by the session's connector (1.6) or EVSE (2.0.1)."""
    if meter_serial:
        return next((k for k in keys if k.meter_serial == meter_serial), None)
    if port is None:
        return None
    return next((k for k in keys if not k.meter_serial and k.port == port), None)


def summarize(
    rows: list[SignedReading], keys: list[MeterKey], *, expected: bool, port: int | None = None
) -> SignedSummary | None:
    """The summary of a session's signed readings (rows in time order) and its charger's keys."""
    if not rows and not expected:
        return None
    starts = [row for row in rows if row.nature == SignedReading.Nature.START]
    ends = [row for row in rows if row.nature == SignedReading.Nature.END]
    start = _value(starts[0]) if starts else None
    end = _value(ends[-1]) if ends else None
    either = end or start
    serial = either.meter_serial if either is not None else ""
    key = key_for_reading(keys, meter_serial=serial, port=port) or (keys[0] if keys else None)
    energy = None
    if start is None or end is None:
        missing = "start" if start is None else "end"
        status, reason = "incomplete", f"no signed {missing} reading was received"
    elif start.status != "verified":
        status, reason = start.status, f"start: {start.reason}"
    elif end.status != "verified":
        status, reason = end.status, f"end: {end.reason}"
    else:
        status, reason = "verified", ""
        if start.value_wh is not None and end.value_wh is not None:
            energy = end.value_wh - start.value_wh
    return SignedSummary(
        status=status,
        reason=reason,
        start=start,
        end=end,
        public_key=key.public_key_hex if key else "",
        signing_method=key.signing_method
        if key
        else (either.signing_method if either is not None else ""),
        values=tuple(_value(row) for row in rows),
        energy_wh=energy,
    )


def session_signature(session: ChargingSession) -> SignedSummary | None:
    """Return what the session's signed readings say, or None when nothing was signed and its
    charger has no registered meter key (a charger without a calibrated signing meter)."""
    return session_signatures([session])[session.pk]


def session_signatures(
    sessions: Sequence[ChargingSession],
) -> dict[int, SignedSummary | None]:
    """`session_signature` of each session (by pk), in two queries whatever their number."""
    rows: dict[int, list[SignedReading]] = defaultdict(list)
    for row in SignedReading.objects.filter(session_id__in=[s.pk for s in sessions]).order_by(
        "session_id", "time", "id"
    ):
        rows[row.session_id].append(row)
    keys: dict[int, list[MeterKey]] = defaultdict(list)
    for key in MeterKey.objects.filter(charger_id__in={s.charger_id for s in sessions}).order_by(
        "id"
    ):
        keys[key.charger_id].append(key)
    return {
        s.pk: summarize(
            rows[s.pk],
            keys[s.charger_id],
            expected=bool(keys[s.charger_id]),
            port=s.connector_id,
        )
        for s in sessions
    }


def meter_keys_for_charger(charger_id: int) -> list[MeterKey]:
    return list(
        MeterKey.objects.filter(charger_id=charger_id).order_by(
            "meter_serial", "connector_id", "evse_id"
        )
    )
