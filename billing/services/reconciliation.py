"""Reconciliation writes: run an imported payout report against our payouts."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import schedule
from ..models import Payout, ReconciliationImport, ReconciliationIssue
from ..reconciliation import parse_report, reconcile
from .payouts import expected_payouts, payout_mark_failed, payout_mark_paid


def reconciliation_create(
    *, content: str, filename: str = "", organization_id: int | None = None, user: Any = None
) -> ReconciliationImport:
    """Store the report and queue its import (runs on commit)."""
    record = ReconciliationImport.objects.create(
        content=content, filename=filename[:200], organization_id=organization_id, created_by=user
    )
    schedule.on_commit(schedule.RECONCILIATION_IMPORT, record.pk)
    return record


def reconciliation_run(*, reconciliation_id: int) -> ReconciliationImport:
    """Match the report: mark matched payouts paid, failed ones failed (their net rolls into
    the next payout), and record an issue with an explanation for every mismatch. Rerunning
    replaces the issues and changes no payout twice."""

    record = ReconciliationImport.objects.get(pk=reconciliation_id)
    ReconciliationImport.objects.filter(pk=record.pk).update(
        status=ReconciliationImport.Status.RUNNING
    )
    try:
        rows = parse_report(record.content)
        payouts = Payout.objects.all()
        if record.organization_id:
            payouts = payouts.filter(organization_id=record.organization_id)
        by_reference = {p.reference: p for p in payouts}
        days = [row.day for row in rows if row.day]
        window = (min(days), max(days)) if days else None
        findings = reconcile(rows, expected_payouts(by_reference.values()), window)
        with transaction.atomic():
            # The import's row is locked while its findings are replaced: a second run at once
            # (the task redelivered) waits, then replaces the first's issues instead of adding
            # its own beside them.
            ReconciliationImport.objects.select_for_update().filter(pk=record.pk).first()
            record.issues.all().delete()
            matched = 0
            for finding in findings:
                payout = by_reference.get(finding.payout_reference)
                row = next((r for r in rows if r.line == finding.report_line), None)
                if finding.kind in ("matched", "date_differs") and payout is not None:
                    paid_on = timezone.now()
                    if row and row.day:
                        from datetime import datetime, time

                        paid_on = datetime.combine(row.day, time(12), tzinfo=UTC)
                    payout_mark_paid(payout=payout, paid_at=paid_on)
                    matched += 1
                if finding.kind == "failed" and payout is not None:
                    payout_mark_failed(
                        payout=payout,
                        reason=f"Bank: {row.reason if row and row.reason else 'failed'}",
                    )
                if finding.kind == "matched":
                    continue
                ReconciliationIssue.objects.create(
                    reconciliation=record,
                    payout=payout,
                    kind=finding.kind,
                    reported_payout_id=finding.payout_reference[:64],
                    expected_amount=finding.expected_amount,
                    reported_amount=finding.reported_amount,
                    explanation=finding.explanation,
                )
            record.rows = len(rows)
            record.matched = matched
            record.status = ReconciliationImport.Status.DONE
            record.finished_at = timezone.now()
            record.save()
    except Exception as exc:  # the import is a user upload: record what went wrong
        ReconciliationImport.objects.filter(pk=record.pk).update(
            status=ReconciliationImport.Status.FAILED,
            error=str(exc)[:2000],
            finished_at=timezone.now(),
        )
        raise
    return record
