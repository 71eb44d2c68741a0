"""Pure reconciliation: match a bank/processor payout report to our payouts and explain
every difference. No Django imports."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

ID_COLUMNS = ("payout_id", "payout id", "payout", "id", "reference")
DATE_COLUMNS = ("date", "paid_on", "arrival_date", "payout_date")
AMOUNT_COLUMNS = ("amount", "net", "payout_amount")
STATUS_COLUMNS = ("status", "state")
REASON_COLUMNS = ("failure_reason", "reason", "failure_message")
PAID = {"paid", "succeeded", "success", "completed", "settled", "in_transit"}
FAILED = {"failed", "returned", "rejected", "canceled", "cancelled", "reversed"}
# A bank credit arriving this many days after the period closed is normal timing.
EXPECTED_DELAY_DAYS = 5


@dataclass(frozen=True)
class ReportRow:
    line: int
    payout_id: str
    day: date | None
    amount: Decimal | None
    status: str
    reason: str = ""
    error: str = ""


@dataclass(frozen=True)
class ExpectedPayout:
    """Our side of a payout, with the parts of its net for explaining differences."""

    reference: str
    net: Decimal
    status: str
    period_end: date
    gross: Decimal = Decimal(0)
    processing_fees: Decimal = Decimal(0)
    platform_fees: Decimal = Decimal(0)
    refunds: Decimal = Decimal(0)
    carried_over: Decimal = Decimal(0)
    minimum_payout: Decimal = Decimal(0)


@dataclass(frozen=True)
class Finding:
    kind: str  # matched, missing_in_report, unknown_payout, amount_differs, failed, date_differs, bad_row
    payout_reference: str
    explanation: str
    expected_amount: Decimal | None = None
    reported_amount: Decimal | None = None
    report_line: int | None = None


def _pick(row: dict, names: tuple[str, ...]) -> str:
    for name in names:
        if name in row and row[name] is not None:
            return str(row[name]).strip()
    return ""


def _parse_day(text: str) -> date | None:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text[:10], fmt).date()  # noqa: DTZ007 (a calendar day, no time)
        except ValueError:
            continue
    return None


def parse_report(text: str) -> list[ReportRow]:
    """Read the CSV (header row with payout id, date, amount, status; optional reason)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames:
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    rows = []
    for number, raw in enumerate(reader, start=2):
        payout_id = _pick(raw, ID_COLUMNS)
        day_text, amount_text = _pick(raw, DATE_COLUMNS), _pick(raw, AMOUNT_COLUMNS)
        status = _pick(raw, STATUS_COLUMNS).lower()
        errors = []
        if not payout_id:
            errors.append("no payout id")
        day = _parse_day(day_text) if day_text else None
        if day_text and day is None:
            errors.append(f"unreadable date {day_text!r}")
        try:
            amount = Decimal(amount_text.replace(",", "")) if amount_text else None
        except InvalidOperation:
            amount = None
            errors.append(f"unreadable amount {amount_text!r}")
        if amount is None and not errors:
            errors.append("no amount")
        rows.append(ReportRow(number, payout_id, day, amount, status, _pick(raw, REASON_COLUMNS), "; ".join(errors)))
    return rows


def explain_difference(expected: ExpectedPayout, reported: Decimal) -> str:
    """Return the likely cause of reported != expected.net, in words a host understands."""
    diff = expected.net - reported
    parts = [f"Expected {expected.net}, the bank reports {reported} (difference {diff:+})."]
    # (size, the bank paid less?, reason)
    candidates = [
        (expected.processing_fees, True, "the payment processing fees were deducted a second time by the processor"),
        (expected.platform_fees, True, "the platform fee was deducted a second time"),
        (expected.refunds, True, "refunds were deducted again (or a refund was reversed)"),
        (expected.carried_over, True, "the balance carried over from an earlier failed payout was not included (timing)"),
        (expected.gross - expected.net, False, "the bank paid the gross instead of the net (fees and refunds not deducted)"),
        (expected.carried_over, False, "an earlier failed payout was paid again separately (timing)"),
    ]
    for value, paid_less, reason in candidates:
        if value and abs(diff) == abs(value) and (diff > 0) == paid_less:
            parts.append(f"The difference equals {value}: {reason}.")
            return " ".join(parts)
    if diff > 0 and expected.minimum_payout and reported < expected.minimum_payout:
        parts.append(f"The amount is below the payout threshold of {expected.minimum_payout}; the rest follows.")
    elif diff > 0:
        parts.append("The bank paid less: part of the payout may still be in transit (timing) or a bank fee was charged.")
    else:
        parts.append("The bank paid more: a previous payout may have been merged into this one (timing).")
    return " ".join(parts)


def reconcile(rows: list[ReportRow], expected: dict[str, ExpectedPayout],
              window: tuple[date, date] | None = None) -> list[Finding]:
    """Compare the report with our payouts; one finding per row plus one per missing payout.

    `window` limits "missing" findings to payouts whose period ended inside the report's
    date range (older payouts were reconciled by earlier reports).
    """
    findings: list[Finding] = []
    seen: set[str] = set()
    for row in rows:
        if row.error:
            findings.append(Finding("bad_row", row.payout_id, f"Line {row.line}: {row.error}.", report_line=row.line))
            continue
        ours = expected.get(row.payout_id)
        if ours is None:
            findings.append(Finding(
                "unknown_payout", row.payout_id,
                f"Line {row.line}: the report has payout {row.payout_id} ({row.amount}) that we never created; "
                "it may belong to another account or be a manual transfer.",
                reported_amount=row.amount, report_line=row.line,
            ))
            continue
        seen.add(row.payout_id)
        if row.status in FAILED:
            reason = row.reason or "no reason given"
            findings.append(Finding(
                "failed", ours.reference,
                f"The bank reports payout {ours.reference} of {row.amount} failed ({reason}). "
                "Its net returns to the balance and rolls into the next payout.",
                ours.net, row.amount, row.line,
            ))
            continue
        if row.amount != ours.net:
            assert row.amount is not None  # a row without an amount is a bad_row above
            findings.append(Finding("amount_differs", ours.reference, explain_difference(ours, row.amount),
                                    ours.net, row.amount, row.line))
            continue
        if row.day and row.day > ours.period_end + timedelta(days=EXPECTED_DELAY_DAYS):
            findings.append(Finding(
                "date_differs", ours.reference,
                f"Paid on {row.day}, {(row.day - ours.period_end).days} days after the period closed on "
                f"{ours.period_end} (usually within {EXPECTED_DELAY_DAYS}): bank timing, the amount matches.",
                ours.net, row.amount, row.line,
            ))
            continue
        findings.append(Finding("matched", ours.reference, "Amount and status match.", ours.net, row.amount, row.line))
    for reference, ours in expected.items():
        if reference in seen or ours.status == "failed":
            continue
        if window is not None and not (window[0] - timedelta(days=EXPECTED_DELAY_DAYS) <= ours.period_end <= window[1]):
            continue
        findings.append(Finding(
            "missing_in_report", reference,
            f"Payout {reference} of {ours.net} (period ending {ours.period_end}) is not in the report: "
            "it may still be in transit (payouts take 1-3 business days) or the bank has not sent it.",
            ours.net, None,
        ))
    return findings
