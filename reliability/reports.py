"""The regulators' reports from the uptime of each port (docs/reliability.md, "Exports"):
NEVI's quarterly data (23 CFR 680.112) and CEC's semiannual summary with 15-minute records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Max
from django.utils import timezone

from chargers.models import Charger, ChargingSession, MeterValue

from . import kpi_selectors, kpis, outages
from .faults import FaultTable
from .services import timeline, uptime


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The first moment of each calendar month [start, end) touches (local time), from start."""
    tz = timezone.get_current_timezone()
    local = start.astimezone(tz)
    cursor = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    while cursor < end:
        starts.append(max(cursor, start))
        year, month = divmod(cursor.month, 12)
        cursor = cursor.replace(year=cursor.year + year, month=month + 1)
    return starts


@dataclass(frozen=True)
class SessionFacts:
    sessions: int
    unsuccessful: int
    error_codes: list[str]
    mrec_codes: list[str]
    energy_kwh: Decimal
    peak_kw: Decimal | None
    payment_methods: list[str]


def _payment_method(session: ChargingSession) -> str:
    if session.remote_start_id is not None:
        return "remote start (app or guest page)"
    if session.token_id:
        return "account (RFID or app)"
    return "card presented (id tag)"


def _peak_kw(charger: Charger, connector_id: int, start: datetime, end: datetime) -> Decimal | None:
    peaks = (
        MeterValue.objects.filter(
            charger=charger,
            connector_id=connector_id,
            measurand="Power.Active.Import",
            timestamp__gte=start,
            timestamp__lt=end,
        )
        .values("unit")
        .annotate(peak=Max("value"))
    )
    values = [
        (row["peak"] / 1000 if (row["unit"] or "W").lower() == "w" else row["peak"])
        for row in peaks
        if row["peak"] is not None
    ]
    return max(values) if values else None


def session_facts(
    charger: Charger,
    connector_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    table: FaultTable | None = None,
) -> SessionFacts:
    """The §680.112 session data of a port over a period: how many, which failed and with what
    error codes (the port's reported codes during them), energy, peak power, payment methods."""
    sessions = list(
        ChargingSession.objects.filter(
            charger=charger, connector_id=connector_id, started_at__gte=start, started_at__lt=end
        ).order_by("started_at")
    )
    facts = timeline.port_facts(charger, connector_id, start, end)
    after_s = timeline.failed_start_after_s()
    table = table or FaultTable()
    energy = Decimal(0)
    codes: list[tuple[str, str]] = []
    unsuccessful = 0
    for session, attempt in zip(
        sessions, facts.attempts[-len(sessions) :] if sessions else [], strict=False
    ):
        if session.meter_start_wh is not None and session.meter_stop_wh is not None:
            energy += max(session.meter_stop_wh - session.meter_start_wh, Decimal(0)) / 1000
        if outages.attempt_failed(attempt, now, after_s):
            unsuccessful += 1
            codes += [
                (r.error_code, r.vendor_code)
                for r in facts.port
                if r.error_code not in ("", "NoError")
                and r.at >= session.started_at
                and (session.stopped_at is None or r.at <= session.stopped_at)
            ]
    return SessionFacts(
        sessions=len(sessions),
        unsuccessful=unsuccessful,
        error_codes=sorted({error for error, _ in codes}),
        mrec_codes=sorted({m for e, v in codes for m in table.codes(e, v, charger.vendor)}),
        energy_kwh=energy.quantize(Decimal("0.001")),
        peak_kw=_peak_kw(charger, connector_id, start, end),
        payment_methods=sorted({_payment_method(s) for s in sessions}),
    )


NEVI_HEADER = [
    "station_id",
    "connector_id",
    "period_start",
    "period_end",
    "sessions",
    "unsuccessful_sessions",
    "unsuccessful_session_error_codes",
    "unsuccessful_session_mrec_codes",
    "energy_kwh",
    "peak_kw",
    "payment_methods",
    "uptime_percent",
    "outage_minutes",
    "excluded_minutes",
]

# ChargeX's success KPIs of the port over the period (docs/reliability.md, "Success KPIs"):
# neither NEVI's 680.112 fields nor CEC's summary define them; both exports carry them after
# their own columns, in ChargeX's words.
KPI_HEADER = [
    "charge_attempts",
    "completions",
    "session_success_percent",
    "charge_start_success_percent",
    "charge_end_success_percent",
    "start_time_p50_s",
    "start_time_p90_s",
    "start_time_p95_s",
    "first_attempt_success_percent",
    "orphan_authorizes",
    "orphan_remote_starts",
]


def kpi_cells(board: kpis.Board, charger: Charger, connector_id: int) -> list:
    figures = board.port(charger.pk, connector_id).as_json()
    return ["" if figures[name] is None else figures[name] for name in KPI_HEADER]


def kpi_rows(chargers: list[Charger], start: datetime, end: datetime) -> Iterator[list]:
    """The success KPIs per port over [start, end) (the API's /uptime/kpis/ as CSV rows)."""
    board = kpi_selectors.board(chargers, start, end)
    by_id = {c.pk: c for c in chargers}
    yield ["station_id", "connector_id", *KPI_HEADER]
    for charger_id, connector_id in sorted(
        board.ports, key=lambda port: (by_id[port[0]].station_id, port[1])
    ):
        charger = by_id[charger_id]
        yield [charger.station_id, connector_id, *kpi_cells(board, charger, connector_id)]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.2f}"


def nevi_rows(chargers: list[Charger], start: datetime, end: datetime) -> Iterator[list]:
    """One row per port: the period's session data and uptime, each month's uptime with
    T_outage and T_excluded (three months for a quarter), and every outage's duration."""
    now = timezone.now()
    months = month_starts(start, end)
    board = kpi_selectors.board(chargers, start, end, now)
    yield [
        *NEVI_HEADER,
        *KPI_HEADER,
        *[
            f"month_{i}_{field}"
            for i in range(1, len(months) + 1)
            for field in ("start", "uptime_percent", "outage_minutes", "excluded_minutes")
        ],
        "outage_durations_minutes",
    ]
    table = FaultTable()
    for charger in chargers:
        for port in uptime.charger_uptime(charger, start, end, now):
            result = port.uptime
            facts = session_facts(charger, port.connector_id, start, end, now, table)
            row = [
                charger.station_id,
                port.connector_id,
                start.isoformat(),
                end.isoformat(),
                facts.sessions,
                facts.unsuccessful,
                ";".join(facts.error_codes),
                ";".join(facts.mrec_codes),
                facts.energy_kwh,
                "" if facts.peak_kw is None else facts.peak_kw,
                ";".join(facts.payment_methods),
                result.percent,
                _minutes(result.outage_seconds),
                _minutes(result.excluded_seconds),
                *kpi_cells(board, charger, port.connector_id),
            ]
            bounds = [*months[1:], end]
            for month_start, month_end in zip(months, bounds, strict=True):
                monthly = uptime.port_uptime(
                    charger, port.connector_id, month_start, month_end, now
                ).uptime
                row += [
                    month_start.isoformat(),
                    monthly.percent,
                    _minutes(monthly.outage_seconds),
                    _minutes(monthly.excluded_seconds),
                ]
            row.append(";".join(_minutes(o.seconds) for o in result.outages))
            yield row


CEC_HEADER = [
    "station_id",
    "connector_id",
    "period_start",
    "period_end",
    "uptime_percent",
    "outage_minutes",
    "excluded_minutes",
    "outages",
    "sessions",
    "unsuccessful_sessions",
    "energy_kwh",
    *KPI_HEADER,
]

CEC_INTERVAL_HEADER = [
    "station_id",
    "connector_id",
    "interval_start",
    "interval_end",
    "state",
    "down_seconds",
    "excluded_seconds",
    "cause",
]


def cec_rows(chargers: list[Charger], start: datetime, end: datetime) -> Iterator[list]:
    now = timezone.now()
    board = kpi_selectors.board(chargers, start, end, now)
    yield CEC_HEADER
    for charger in chargers:
        for port in uptime.charger_uptime(charger, start, end, now):
            facts = session_facts(charger, port.connector_id, start, end, now)
            result = port.uptime
            yield [
                charger.station_id,
                port.connector_id,
                start.isoformat(),
                end.isoformat(),
                result.percent,
                _minutes(result.outage_seconds),
                _minutes(result.excluded_seconds),
                len(result.outages),
                facts.sessions,
                facts.unsuccessful,
                facts.energy_kwh,
                *kpi_cells(board, charger, port.connector_id),
            ]


def cec_interval_rows(chargers: list[Charger], start: datetime, end: datetime) -> Iterator[list]:
    """CEC's 15-minute interval records: per port and interval, up, down or excluded."""
    now = timezone.now()
    yield CEC_INTERVAL_HEADER
    for charger in chargers:
        for port in uptime.charger_uptime(charger, start, end, now):
            for record in outages.intervals(port.uptime.outages, start, min(end, now)):
                counted = record.down_seconds - record.excluded_seconds
                state = "down" if counted > 0 else ("excluded" if record.down_seconds else "up")
                yield [
                    charger.station_id,
                    port.connector_id,
                    record.start.isoformat(),
                    record.end.isoformat(),
                    state,
                    round(record.down_seconds, 3),
                    round(record.excluded_seconds, 3),
                    record.cause,
                ]
