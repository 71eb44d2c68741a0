"""Scheduled reports (docs/operations.md "Scheduled reports"): an organization's uptime, success
KPIs and revenue for the last full day, week or month, emailed as CSV attachments to the members
its owner chose. The files are the existing exports' rows (reliability.reports' CEC summary and
KPI rows, billing.statements' revenue rows), written through backoffice.csv_export; the beat
task `billing.reports_send` sends each period once."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from backoffice.csv_export import csv_writer
from chargers.models import Charger
from reliability import reports

from . import report_periods, statements
from .models import ReportSchedule
from .selectors import organization_zone

logger = logging.getLogger(__name__)


def _csv(rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    csv_writer(buffer).writerows(rows)
    return buffer.getvalue()


def _revenue_rows(organization_id: int, start: date, end: date) -> Iterable[list]:
    yield statements.ANNUAL_COLUMNS
    # annual_rows takes its last day inclusive; the period's end is exclusive.
    for item in statements.annual_rows(organization_id, start, end - timedelta(days=1)):
        yield statements.annual_cells(item)


def report_files(schedule: ReportSchedule, start: date, end: date) -> list[tuple[str, str]]:
    """The schedule's CSV files for [start, end): (file name, content), the organization's only."""
    zone = organization_zone(schedule.organization_id)
    begin = datetime.combine(start, time.min, tzinfo=zone)
    finish = datetime.combine(end, time.min, tzinfo=zone)
    chargers = list(
        Charger.objects.filter(property__organization_id=schedule.organization_id)
        .select_related("property")
        .order_by("station_id")
    )
    stamp = f"{start:%Y%m%d}-{end:%Y%m%d}"
    files = []
    if schedule.uptime:
        files.append((f"uptime-{stamp}.csv", _csv(reports.cec_rows(chargers, begin, finish))))
    if schedule.kpis:
        files.append((f"kpis-{stamp}.csv", _csv(reports.kpi_rows(chargers, begin, finish))))
    if schedule.revenue:
        files.append(
            (f"revenue-{stamp}.csv", _csv(_revenue_rows(schedule.organization_id, start, end)))
        )
    return files


def report_send(
    *, schedule_id: int, today: date | None = None, now: datetime | None = None
) -> bool:
    """Send the schedule's report for its last full period if not sent yet; True when sent.
    Days are the organization's (`selectors.organization_zone`): `today` is its date, by default
    the date there at `now`, so a period is sent once it has ended where the host is.
    The period is claimed first (in a transaction, the row locked), so two workers never send
    it twice; a mail server that refuses leaves it unclaimed for the next run."""
    with transaction.atomic():
        schedule = (
            ReportSchedule.objects.select_for_update(skip_locked=True)
            .select_related("organization")
            .filter(pk=schedule_id, enabled=True)
            .first()
        )
        if schedule is None:
            return False
        zone = organization_zone(schedule.organization_id)
        today = today or timezone.localtime(now or timezone.now(), zone).date()
        period = report_periods.due(schedule.frequency, today, schedule.last_period_end)
        emails = sorted({u.email for u in schedule.recipients.all() if u.email})
        if period is None or not emails:
            return False
        start, end = period
        message = EmailMessage(
            subject=f"{schedule.organization.name}: charging report {start} to {end}",
            body=(
                f"The {schedule.get_frequency_display().lower()} report of "
                f"{schedule.organization.name} for {start} up to {end} (exclusive; days in "
                f"{zone}) is "
                "attached as CSV files.\n"
            ),
            to=emails,
        )
        for name, content in report_files(schedule, start, end):
            message.attach(name, content, "text/csv")
        message.send()
        schedule.last_period_end = end
        schedule.last_sent_at = timezone.now()
        schedule.save(update_fields=["last_period_end", "last_sent_at"])
    return True


def reports_send(today: date | None = None, now: datetime | None = None) -> int:
    """Send every enabled schedule's due report (the beat task); returns how many were sent."""
    sent = 0
    for schedule_id in ReportSchedule.objects.filter(enabled=True).values_list("pk", flat=True):
        try:
            sent += report_send(schedule_id=schedule_id, today=today, now=now)
        except Exception:  # one organization's failure never stops the others
            logger.exception("The scheduled report %s could not be sent", schedule_id)
    return sent


@transaction.atomic
def schedule_save(
    *,
    organization_id: int,
    frequency: str,
    uptime: bool,
    kpis: bool,
    revenue: bool,
    enabled: bool,
    recipient_ids: list[int],
) -> ReportSchedule:
    """Create or change the organization's schedule (recipients: members, checked by the form)."""
    schedule, _ = ReportSchedule.objects.update_or_create(
        organization_id=organization_id,
        defaults={
            "frequency": frequency,
            "uptime": uptime,
            "kpis": kpis,
            "revenue": revenue,
            "enabled": enabled,
        },
    )
    schedule.recipients.set(recipient_ids)
    return schedule
