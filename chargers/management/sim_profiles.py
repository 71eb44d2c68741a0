"""What a simulated charger does with the charging profiles it is given (OCPP 1.6 §3.13 and
2.0.1 K01-K10): hold them, clear them, and say which limit is in force on a connector now.

No Django (the simulator runs without settings). Both versions are read into one shape,
`Held`; the limit in force on a connector in a transaction is the lower of the station maximum
and the transaction's own limit (its TxProfile, else a TxDefaultProfile), each the valid
profile with the highest stackLevel (1.6 §3.13.2, 2.0.1 K01/K08).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chargers.ocpp.protocol import parse_datetime

MAX = "max"  # ChargePointMaxProfile (1.6) / ChargingStationMaxProfile (2.0.1)
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"
_PURPOSES = {
    "ChargePointMaxProfile": MAX,
    "ChargingStationMaxProfile": MAX,
    TX_DEFAULT: TX_DEFAULT,
    TX: TX,
}
_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}


def _time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Held:
    """A profile the charger holds, in either version's words."""

    profile_id: int
    connector_id: int  # 0: the whole charger
    purpose: str  # MAX, TX_DEFAULT or TX
    stack_level: int
    kind: str
    unit: str
    periods: tuple[tuple[int, float, int | None], ...]  # (startPeriod, limit, numberPhases)
    transaction_id: str = ""
    start: datetime | None = None
    duration: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    recurrency: str = ""

    @classmethod
    def from_v16(cls, payload: dict) -> Held:
        profile = payload["csChargingProfiles"]
        return cls._read(
            payload["connectorId"],
            profile,
            profile["chargingProfileId"],
            profile["chargingSchedule"],
        )

    @classmethod
    def from_v201(cls, payload: dict) -> Held:
        profile = payload["chargingProfile"]
        return cls._read(payload["evseId"], profile, profile["id"], profile["chargingSchedule"][0])

    @classmethod
    def _read(cls, connector_id: int, profile: dict, profile_id: int, schedule: dict) -> Held:
        transaction_id = profile.get("transactionId")
        return cls(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=_PURPOSES[profile["chargingProfilePurpose"]],
            stack_level=profile["stackLevel"],
            kind=profile["chargingProfileKind"],
            unit=schedule["chargingRateUnit"],
            periods=tuple(
                (p["startPeriod"], float(p["limit"]), p.get("numberPhases"))
                for p in schedule["chargingSchedulePeriod"]
            ),
            transaction_id="" if transaction_id is None else str(transaction_id),
            start=_time(schedule.get("startSchedule")),
            duration=schedule.get("duration"),
            valid_from=_time(profile.get("validFrom")),
            valid_to=_time(profile.get("validTo")),
            recurrency=profile.get("recurrencyKind", ""),
        )

    def valid(self, now: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_to is None or now < self.valid_to
        )

    def limit_at(
        self, now: datetime, tx_start: datetime | None, volts: float, phases: int
    ) -> float | None:
        """The limit in amperes per phase at `now`; None when the schedule says nothing then."""
        start = tx_start if self.kind == "Relative" else self.start
        if start is None:
            return None
        elapsed = now - start
        if self.kind == "Recurring" and self.recurrency in _RECURRENCE and elapsed >= timedelta(0):
            elapsed = elapsed % _RECURRENCE[self.recurrency]
        seconds = elapsed.total_seconds()
        if seconds < 0 or (self.duration is not None and seconds >= self.duration):
            return None
        limit, number_phases = None, None
        for start_period, value, period_phases in self.periods:
            if start_period <= seconds:
                limit, number_phases = value, period_phases
        if limit is None:
            return None
        if self.unit == "W":  # watts over all phases in use -> amperes per phase
            return limit / (volts * (number_phases or phases))
        return limit


class Profiles:
    """The profiles one charger holds."""

    def __init__(self) -> None:
        self.held: dict[int, Held] = {}

    def install(self, profile: Held) -> None:
        # Same id replaces (1.6 §5.16.2, K01.FR.05); so does the same purpose, stack level and
        # connector (1.6 §3.13.2).
        self.held = {
            pid: p
            for pid, p in self.held.items()
            if pid != profile.profile_id
            and not (
                p.purpose == profile.purpose
                and p.stack_level == profile.stack_level
                and p.connector_id == profile.connector_id
                and p.transaction_id == profile.transaction_id
            )
        }
        self.held[profile.profile_id] = profile

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """Clear by id or by criteria; whether any profile was cleared."""
        if profile_id is not None:
            return self.held.pop(profile_id, None) is not None
        purpose = _PURPOSES.get(purpose, purpose) if purpose else None
        gone = [
            p.profile_id
            for p in self.held.values()
            if connector_id in (None, p.connector_id)
            and purpose in (None, p.purpose)
            and stack_level in (None, p.stack_level)
        ]
        for pid in gone:
            del self.held[pid]
        return bool(gone)

    def end_transaction(self, connector_id: int) -> None:
        """A TxProfile lives as long as its transaction (1.6 §3.13.1, 2.0.1 K01)."""
        self.held = {
            pid: p
            for pid, p in self.held.items()
            if not (p.purpose == TX and p.connector_id == connector_id)
        }

    def _top(
        self,
        candidates: list[Held],
        now: datetime,
        tx_start: datetime | None,
        volts: float,
        phases: int,
    ) -> float | None:
        # The valid profile with the highest stackLevel whose schedule says something now.
        ranked = sorted(
            (p for p in candidates if p.valid(now)),
            key=lambda p: (p.stack_level, p.connector_id),
            reverse=True,
        )
        for profile in ranked:
            limit = profile.limit_at(now, tx_start, volts, phases)
            if limit is not None:
                return limit
        return None

    def limit_a(
        self,
        connector_id: int,
        now: datetime,
        *,
        transaction_id: str | None,
        tx_start: datetime | None,
        volts: float = 230,
        phases: int = 1,
    ) -> float | None:
        """The limit in force on `connector_id` in amperes per phase; None: no limit."""
        held = list(self.held.values())
        station = self._top([p for p in held if p.purpose == MAX], now, tx_start, volts, phases)
        own = None
        if transaction_id is not None:
            own = self._top(
                [
                    p
                    for p in held
                    if p.purpose == TX
                    and p.connector_id == connector_id
                    and p.transaction_id in ("", transaction_id)
                ],
                now,
                tx_start,
                volts,
                phases,
            )
            if own is None:
                own = self._top(
                    [
                        p
                        for p in held
                        if p.purpose == TX_DEFAULT and p.connector_id in (0, connector_id)
                    ],
                    now,
                    tx_start,
                    volts,
                    phases,
                )
        limits = [v for v in (station, own) if v is not None]
        return min(limits) if limits else None

    def check(self, profile: Held, *, connector_ids: set[int], transactions: dict[int, str]) -> str:
        """Return "Accepted" or "Rejected" for a SetChargingProfile (1.6 §5.16, K01)."""
        if profile.connector_id and profile.connector_id not in connector_ids:
            return "Rejected"
        if profile.purpose == MAX and profile.connector_id != 0:
            return "Rejected"
        if profile.purpose == TX:
            # A TxProfile needs a running transaction on its connector (1.6 §5.16.3, K01.FR.09).
            running = transactions.get(profile.connector_id)
            if running is None or (profile.transaction_id not in ("", running)):
                return "Rejected"
        return "Accepted"
