"""Statements: a sessions CSV for a date range and an annual statement per organization.

Rows are streamed from the database with .iterator(chunk_size=...) into a file, so a
statement of a million sessions never holds them all in memory; progress is written to
the StatementJob every chunk for the portal's progress bar.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from backoffice.csv_export import csv_writer
from backoffice.models import Organization

from . import schedule
from .models import LedgerTransaction, Payout, SessionCharge, StatementJob
from .money import exact_sum
from .selectors import organization_zone

CHUNK = 2000
ZERO = Decimal("0")
SESSION_COLUMNS = [
    "session_id",
    "transaction_id",
    "station_id",
    "property",
    "started_at",
    "stopped_at",
    "energy_kwh",
    "currency",
    "subtotal",
    "tax",
    "total",
    "tax_percent",
    "tax_mode",
    "charged",
    "processing_fee",
    "platform_fee",
    "refunded",
    "net",
]
ANNUAL_COLUMNS = [
    "month",
    "currency",
    "sessions",
    "energy_kwh",
    "gross",
    "processing_fees",
    "platform_fees",
    "refunds",
    "license_fees",
    "net",
    "payouts_paid",
]


def statement_root() -> Path:
    """Where statement files live: BILLING_STATEMENT_ROOT, else MEDIA_ROOT/statements, else
    <project>/media/statements (settings define no MEDIA_ROOT today)."""
    configured = getattr(settings, "BILLING_STATEMENT_ROOT", None)
    if configured:
        return Path(configured)
    media = getattr(settings, "MEDIA_ROOT", "") or Path(settings.BASE_DIR) / "media"
    return Path(media) / "statements"


def _bounds(date_from: date, date_to: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the days date_from to date_to (inclusive) in `zone`: from the first
    day's local midnight to the local midnight after the last (a day of a daylight-saving
    change has its 23 or 25 hours; adjacent ranges meet at the same instant)."""
    start = datetime.combine(date_from, time.min, tzinfo=zone)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def statement_request(
    *, organization_id: int, kind: str, date_from: date, date_to: date, user: Any = None
) -> tuple[StatementJob, bool]:
    """Queue a statement; the task runs on commit (in-process without a broker). Returns the job
    and whether it is new: the same statement still queued or being written (the form submitted
    twice, a double click) is that job, not a second one. The organization's row is locked while
    the job is found or made, so two requests at once make one."""
    from django.core.exceptions import ValidationError

    if date_to < date_from:
        raise ValidationError({"date_to": "The end date is before the start date."})
    with transaction.atomic():
        list(
            Organization.objects.select_for_update(no_key=True)
            .filter(pk=organization_id)
            .values_list("pk")
        )
        same = StatementJob.objects.filter(
            organization_id=organization_id,
            kind=kind,
            date_from=date_from,
            date_to=date_to,
            status__in=[StatementJob.Status.QUEUED, StatementJob.Status.RUNNING],
        ).first()
        if same is not None:
            return same, False
        job = StatementJob.objects.create(
            organization_id=organization_id,
            kind=kind,
            date_from=date_from,
            date_to=date_to,
            created_by=user,
        )
        schedule.on_commit(schedule.STATEMENT_GENERATE, job.pk)
    return job, True


def _ledger_sums(session_ids: list[int]) -> dict[tuple[int, str], Decimal]:
    """Return {(session id, kind): amount} for one chunk of sessions (one grouped query)."""
    rows = (
        LedgerTransaction.objects.filter(session_id__in=session_ids)
        .exclude(kind__in=["payout", "payout_failed"])
        .values("session_id", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {(row["session_id"], row["kind"]): exact_sum(row["total"]) for row in rows}


def _money(value: Decimal | None) -> str:
    return f"{Decimal(value or 0):.2f}" if value is not None else ""


def _write_sessions(job: StatementJob, handle: TextIO) -> None:
    zone = organization_zone(job.organization_id)
    start, end = _bounds(job.date_from, job.date_to, zone)
    queryset = SessionCharge.objects.filter(
        organization_id=job.organization_id, started_at__gte=start, started_at__lt=end
    )
    total = queryset.count()
    StatementJob.objects.filter(pk=job.pk).update(total=total)
    rows = queryset.order_by("started_at", "session_id").values_list(
        "session_id",
        "session__transaction_id",
        "session__charger__station_id",
        "session__charger__property__name",
        "started_at",
        "session__stopped_at",
        "energy_wh",
        "currency",
        "subtotal",
        "tax",
        "total",
        "tax_percent",
        "prices_include_tax",
    )
    writer = csv_writer(handle)
    writer.writerow(SESSION_COLUMNS)
    done = 0
    buffer: list[tuple] = []

    def flush() -> None:
        sums = _ledger_sums([row[0] for row in buffer])
        for row in buffer:
            sid, tx, station, prop, started, stopped, wh, currency, subtotal, tax, cost = row[:11]
            percent, included = row[11:]
            charged, proc, platform, refunded = (
                sums.get((sid, kind), ZERO)
                for kind in ("guest_charge", "processing_fee", "platform_fee", "refund")
            )
            writer.writerow(
                [
                    sid,
                    tx,
                    station,
                    prop,
                    # In the statement's zone, with the offset: the day a row shows is the
                    # day the statement counted it in.
                    started.astimezone(zone).isoformat(),
                    stopped.astimezone(zone).isoformat() if stopped else "",
                    f"{Decimal(wh) / 1000:.3f}",
                    currency,
                    _money(subtotal),
                    _money(tax),
                    _money(cost),
                    f"{Decimal(percent).normalize():f}",
                    # subtotal excludes tax, total includes it, in both modes; this says whether
                    # the session's prices included the tax or had it added on top.
                    "included" if included else "on_top",
                    _money(charged),
                    _money(proc),
                    _money(platform),
                    _money(refunded),
                    _money(charged - proc - platform - refunded),
                ]
            )
        buffer.clear()

    # A server-side cursor on PostgreSQL: only one chunk of rows is in memory at a time.
    for row in rows.iterator(chunk_size=CHUNK):
        buffer.append(row)
        if len(buffer) >= CHUNK:
            done += len(buffer)
            flush()
            StatementJob.objects.filter(pk=job.pk).update(processed=done)
    done += len(buffer)
    flush()
    StatementJob.objects.filter(pk=job.pk).update(processed=done)


def annual_rows(organization_id: int, date_from: date, date_to: date) -> list[dict]:
    """Return one row per month and currency, plus totals per currency (aggregated in SQL).
    Days and months are the organization's (`selectors.organization_zone`)."""
    zone = organization_zone(organization_id)
    start, end = _bounds(date_from, date_to, zone)
    months: dict = {}

    def row(month: date | datetime, currency: str) -> dict:
        key = (month.date() if isinstance(month, datetime) else month, currency)
        return months.setdefault(
            key,
            {
                "month": key[0].strftime("%Y-%m"),
                "currency": currency,
                "sessions": 0,
                "energy_kwh": ZERO,
                "gross": ZERO,
                "processing_fees": ZERO,
                "platform_fees": ZERO,
                "refunds": ZERO,
                "license_fees": ZERO,
                "net": ZERO,
                "payouts_paid": ZERO,
            },
        )

    charges = (
        SessionCharge.objects.filter(
            organization_id=organization_id, started_at__gte=start, started_at__lt=end
        )
        .annotate(month=TruncMonth("started_at", tzinfo=zone))
        .values("month", "currency")
        .annotate(sessions=Count("pk"), wh=Sum("energy_wh"))
        .order_by()
    )
    for item in charges:
        target = row(item["month"], item["currency"])
        target["sessions"] += item["sessions"]
        target["energy_kwh"] += Decimal(item["wh"] or 0) / 1000
    moves = (
        LedgerTransaction.objects.filter(
            organization_id=organization_id, occurred_at__gte=start, occurred_at__lt=end
        )
        .exclude(kind__in=["payout", "payout_failed"])
        .annotate(month=TruncMonth("occurred_at", tzinfo=zone))
        .values("month", "currency", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    names = {
        "guest_charge": "gross",
        "subscription_fee": "gross",  # the host's revenue like session charges (payout_totals)
        "processing_fee": "processing_fees",
        "platform_fee": "platform_fees",
        "refund": "refunds",
        "license_fee": "license_fees",
    }
    for item in moves:
        row(item["month"], item["currency"])[names[item["kind"]]] += exact_sum(item["total"])
    paid = (
        Payout.objects.filter(
            organization_id=organization_id,
            status=Payout.Status.PAID,
            paid_at__gte=start,
            paid_at__lt=end,
        )
        .annotate(month=TruncMonth("paid_at", tzinfo=zone))
        .values("month", "currency")
        .annotate(total=Sum("net"))
        .order_by()
    )
    for item in paid:
        row(item["month"], item["currency"])["payouts_paid"] += exact_sum(item["total"])
    result = [months[key] for key in sorted(months)]
    totals: dict = {}
    for item in result:
        item["net"] = (
            item["gross"]
            - item["processing_fees"]
            - item["platform_fees"]
            - item["refunds"]
            - item["license_fees"]
        )
        total = totals.setdefault(
            item["currency"],
            {
                "month": "TOTAL",
                "currency": item["currency"],
                "sessions": 0,
                "energy_kwh": ZERO,
                "gross": ZERO,
                "processing_fees": ZERO,
                "platform_fees": ZERO,
                "refunds": ZERO,
                "license_fees": ZERO,
                "net": ZERO,
                "payouts_paid": ZERO,
            },
        )
        for name in ANNUAL_COLUMNS[2:]:
            total[name] += item[name]
    return result + [totals[c] for c in sorted(totals)]


def annual_cells(item: dict) -> list:
    """One row of annual_rows as its CSV cells (ANNUAL_COLUMNS)."""
    return [
        item["month"],
        item["currency"],
        item["sessions"],
        f"{item['energy_kwh']:.3f}",
        *[_money(item[name]) for name in ANNUAL_COLUMNS[4:]],
    ]


def _write_annual(job: StatementJob, handle: TextIO) -> None:
    rows = annual_rows(job.organization_id, job.date_from, job.date_to)
    StatementJob.objects.filter(pk=job.pk).update(total=len(rows))
    writer = csv_writer(handle)
    writer.writerow(ANNUAL_COLUMNS)
    for index, item in enumerate(rows, start=1):
        writer.writerow(annual_cells(item))
        StatementJob.objects.filter(pk=job.pk).update(processed=index)


def statement_generate(*, job_id: int) -> StatementJob:
    """Write the statement file. Rerunning rewrites the same file (idempotent)."""
    job = StatementJob.objects.get(pk=job_id)
    StatementJob.objects.filter(pk=job.pk).update(
        status=StatementJob.Status.RUNNING, processed=0, error=""
    )
    root = statement_root()
    root.mkdir(parents=True, exist_ok=True)
    name = f"org{job.organization_id}-{job.kind}-{job.date_from}-{job.date_to}-{job.pk}.csv"
    # Each run writes its own partial file: a run redelivered while another still writes (two
    # workers) never truncates or moves the other's file; the last whole file replaces the name.
    handle_fd, partial_name = tempfile.mkstemp(dir=root, prefix=f"{name}.", suffix=".part")
    partial = Path(partial_name)
    try:
        with open(handle_fd, "w", newline="", encoding="utf-8") as handle:
            if job.kind == StatementJob.Kind.ANNUAL:
                _write_annual(job, handle)
            else:
                _write_sessions(job, handle)
        partial.replace(root / name)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        # A twin run that finished keeps its whole file and its "Ready".
        StatementJob.objects.filter(pk=job.pk).exclude(status=StatementJob.Status.DONE).update(
            status=StatementJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    StatementJob.objects.filter(pk=job.pk).update(
        status=StatementJob.Status.DONE, file_path=name, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def statement_path(job: StatementJob) -> Path | None:
    if job.status != StatementJob.Status.DONE or not job.file_path:
        return None
    path = statement_root() / job.file_path
    return path if path.is_file() else None
