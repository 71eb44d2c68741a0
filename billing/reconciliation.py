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
    license_fees: Decimal = Decimal(0)
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
        rows.append(
            ReportRow(
                number,
                payout_id,
                day,
                amount,
                status,
                _pick(raw, REASON_COLUMNS),
                "; ".join(errors),
            )
        )
    return rows


def explain_difference(expected: ExpectedPayout, reported: Decimal) -> str:
    """Return the likely cause of reported != expected.net, in words a host understands."""
    diff = expected.net - reported
    parts = [f"Expected {expected.net}, the bank reports {reported} (difference {diff:+})."]
    # (size, the bank paid less?, reason)
    candidates = [
        (
            expected.processing_fees,
            True,
            "the payment processing fees were deducted a second time by the processor",
        ),
        (expected.platform_fees, True, "the platform fee was deducted a second time"),
        (expected.refunds, True, "refunds were deducted again (or a refund was reversed)"),
        (expected.license_fees, True, "the charger license fees were deducted a second time"),
        (
            expected.carried_over,
            True,
            "the balance carried over from an earlier failed payout was not included (timing)",
        ),
        (
            expected.gross - expected.net,
            False,
            "the bank paid the gross instead of the net (fees and refunds not deducted)",
        ),
        (
            expected.carried_over,
            False,
            "an earlier failed payout was paid again separately (timing)",
        ),
    ]
    for value, paid_less, reason in candidates:
        if value and abs(diff) == abs(value) and (diff > 0) == paid_less:
            parts.append(f"The difference equals {value}: {reason}.")
            return " ".join(parts)
    if diff > 0 and expected.minimum_payout and reported < expected.minimum_payout:
        parts.append(
            f"The amount is below the payout threshold of {expected.minimum_payout}; the rest follows."
        )
    elif diff > 0:
        parts.append(
            "The bank paid less: part of the payout may still be in transit (timing) or a bank fee was charged."
        )
    else:
        parts.append(
            "The bank paid more: a previous payout may have been merged into this one (timing)."
        )
    return " ".join(parts)


def reconcile(
    rows: list[ReportRow],
    expected: dict[str, ExpectedPayout],
    window: tuple[date, date] | None = None,
) -> list[Finding]:
    """Compare the report with our payouts; one finding per row plus one per missing payout.

    `window` limits "missing" findings to payouts whose period ended inside the report's
    date range (older payouts were reconciled by earlier reports).
    """
    findings: list[Finding] = []
    seen: set[str] = set()
    for row in rows:
        if row.error:
            findings.append(
                Finding(
                    "bad_row", row.payout_id, f"Line {row.line}: {row.error}.", report_line=row.line
                )
            )
            continue
        ours = expected.get(row.payout_id)
        if ours is None:
            findings.append(
                Finding(
                    "unknown_payout",
                    row.payout_id,
                    f"Line {row.line}: the report has payout {row.payout_id} ({row.amount}) that we never created; "
                    "it may belong to another account or be a manual transfer.",
                    reported_amount=row.amount,
                    report_line=row.line,
                )
            )
            continue
        seen.add(row.payout_id)
        if row.status in FAILED:
            reason = row.reason or "no reason given"
            findings.append(
                Finding(
                    "failed",
                    ours.reference,
                    f"The bank reports payout {ours.reference} of {row.amount} failed ({reason}). "
                    "Its net returns to the balance and rolls into the next payout.",
                    ours.net,
                    row.amount,
                    row.line,
                )
            )
            continue
        if row.amount != ours.net:
            assert row.amount is not None  # a row without an amount is a bad_row above
            findings.append(
                Finding(
                    "amount_differs",
                    ours.reference,
                    explain_difference(ours, row.amount),
                    ours.net,
                    row.amount,
                    row.line,
                )
            )
            continue
        if row.day and row.day > ours.period_end + timedelta(days=EXPECTED_DELAY_DAYS):
            findings.append(
                Finding(
                    "date_differs",
                    ours.reference,
                    f"Paid on {row.day}, {(row.day - ours.period_end).days} days after the period closed on "
                    f"{ours.period_end} (usually within {EXPECTED_DELAY_DAYS}): bank timing, the amount matches.",
                    ours.net,
                    row.amount,
                    row.line,
                )
            )
            continue
        findings.append(
            Finding(
                "matched",
                ours.reference,
                "Amount and status match.",
                ours.net,
                row.amount,
                row.line,
            )
        )
    for reference, ours in expected.items():
        if reference in seen or ours.status == "failed":
            continue
        if window is not None and not (
            window[0] - timedelta(days=EXPECTED_DELAY_DAYS) <= ours.period_end <= window[1]
        ):
            continue
        findings.append(
            Finding(
                "missing_in_report",
                reference,
                f"Payout {reference} of {ours.net} (period ending {ours.period_end}) is not in the report: "
                "it may still be in transit (payouts take 1-3 business days) or the bank has not sent it.",
                ours.net,
                None,
            )
        )
    return findings


# -- processor payouts (Stripe): a payout and the balance transactions it paid out -----------------
#
# Stripe documents payout reconciliation as "list the balance transactions of a payout"
# (GET /v1/balance_transactions?payout=po_…, docs.stripe.com/payouts/reconciliation): each has
# `amount`, `fee`, `net` in minor units, `reporting_category` (charge, refund, dispute, fee, payout,
# …), `fee_details` (stripe_fee, application_fee, tax) and its `source` (the charge, expanded, names
# its `payment_intent`, our Payment.reference).


@dataclass(frozen=True)
class ProcessorTxn:
    id: str
    category: str
    amount: Decimal
    stripe_fee: Decimal
    application_fee: Decimal
    net: Decimal
    payment_reference: str  # the PaymentIntent of a charge or refund, "" otherwise


@dataclass(frozen=True)
class ProcessorPayout:
    id: str
    amount: Decimal
    currency: str
    status: str  # paid, pending, in_transit, failed, canceled
    arrival: date | None
    failure: str
    transactions: tuple[ProcessorTxn, ...]

    def total(self, category: str, field: str = "amount") -> Decimal:
        return sum(
            (getattr(t, field) for t in self.transactions if t.category == category), Decimal(0)
        )

    @property
    def payment_references(self) -> frozenset[str]:
        return frozenset(t.payment_reference for t in self.transactions if t.payment_reference)


def _payment_intent(source: object) -> str:
    if isinstance(source, dict):
        intent = source.get("payment_intent")
        if isinstance(intent, dict):
            return str(intent.get("id") or "")
        if intent:
            return str(intent)
        charge = source.get("charge")  # a refund's charge, when expanded
        if isinstance(charge, dict):
            return _payment_intent(charge)
    return ""


def processor_payout(payout: dict, transactions: list[dict]) -> ProcessorPayout:
    """Parse a Stripe Payout and its balance transactions (documented JSON, minor units)."""
    from .money import from_minor

    currency = str(payout.get("currency") or "").upper()

    def money(value: object) -> Decimal:
        return from_minor(int(str(value or 0)), currency)

    txns = []
    for t in transactions:
        if t.get("type") == "payout" or t.get("reporting_category") == "payout":
            continue  # the payout's own debit
        fees = t.get("fee_details") or []
        txns.append(
            ProcessorTxn(
                id=str(t.get("id") or ""),
                category=str(t.get("reporting_category") or t.get("type") or ""),
                amount=money(t.get("amount")),
                stripe_fee=sum(
                    (money(f.get("amount")) for f in fees if f.get("type") == "stripe_fee"),
                    Decimal(0),
                ),
                application_fee=sum(
                    (money(f.get("amount")) for f in fees if f.get("type") == "application_fee"),
                    Decimal(0),
                ),
                net=money(t.get("net")),
                payment_reference=_payment_intent(t.get("source")),
            )
        )
    arrival = payout.get("arrival_date")
    return ProcessorPayout(
        id=str(payout.get("id") or ""),
        amount=money(payout.get("amount")),
        currency=currency,
        status=str(payout.get("status") or ""),
        arrival=(date(1970, 1, 1) + timedelta(seconds=int(str(arrival)))) if arrival else None,
        failure=str(payout.get("failure_message") or payout.get("failure_code") or ""),
        transactions=tuple(txns),
    )


def compare_processor_payout(
    expected: ExpectedPayout, payments: dict[str, Decimal], theirs: ProcessorPayout
) -> Finding:
    """Compare our payout (its parts and its payments: PaymentIntent id → amount charged) with the
    processor's payout, and explain every difference in words."""
    money = f"{theirs.currency} {{:.2f}}"
    if theirs.status in ("failed", "canceled"):
        return Finding(
            "failed",
            expected.reference,
            f"Stripe payout {theirs.id} {theirs.status}: {theirs.failure or 'no reason given'}. "
            f"Its {money.format(theirs.amount)} returns to the balance and rolls into the next payout.",
            expected.net,
            theirs.amount,
        )
    if theirs.amount == expected.net:
        return Finding(
            "matched",
            expected.reference,
            f"Matches Stripe payout {theirs.id}.",
            expected.net,
            theirs.amount,
        )
    parts = [
        f"Stripe paid {money.format(theirs.amount)} in {theirs.id}; we expected {money.format(expected.net)} "
        f"(difference {money.format(theirs.amount - expected.net)})."
    ]
    ours, paid = set(payments), theirs.payment_references
    if ours - paid:
        missing = sorted(ours - paid)
        total = sum((payments[m] for m in missing), Decimal(0))
        parts.append(
            f"{len(missing)} of our payments ({money.format(total)}: {', '.join(missing[:5])}) are not "
            "in this Stripe payout; they usually arrive in the next one."
        )
    if paid - ours:
        extra = sorted(paid - ours)
        parts.append(
            f"{len(extra)} payments in the Stripe payout are not in ours ({', '.join(extra[:5])}): "
            "from an earlier or later period."
        )
    checks = [
        ("guest charges", theirs.total("charge"), expected.gross),
        (
            "Stripe's processing fees",
            theirs.total("charge", "stripe_fee") + theirs.total("refund", "stripe_fee"),
            expected.processing_fees,
        ),
        ("platform fees", theirs.total("charge", "application_fee"), expected.platform_fees),
        ("refunds", -theirs.total("refund"), expected.refunds),
    ]
    for label, stripe_value, our_value in checks:
        if stripe_value != our_value:
            parts.append(
                f"{label.capitalize()}: Stripe {money.format(stripe_value)}, ours {money.format(our_value)}."
            )
    other = sum(
        (t.net for t in theirs.transactions if t.category not in ("charge", "refund")), Decimal(0)
    )
    if other:
        categories = sorted(
            {t.category for t in theirs.transactions if t.category not in ("charge", "refund")}
        )
        parts.append(
            f"Other movements in the Stripe payout ({', '.join(categories)}): {money.format(other)}."
        )
    return Finding(
        "amount_differs", expected.reference, " ".join(parts), expected.net, theirs.amount
    )


def match_processor_payouts(
    theirs: list[ProcessorPayout], payments_of: dict[str, dict[str, Decimal]]
) -> dict[str, str]:
    """Return processor payout id → our payout reference, by the most payments in common
    (automatic Stripe payouts carry no reference of ours)."""
    matches: dict[str, str] = {}
    taken: set[str] = set()
    for payout in sorted(theirs, key=lambda p: p.arrival or date.min):
        best = max(
            (
                (len(payout.payment_references & set(refs)), reference)
                for reference, refs in payments_of.items()
                if reference not in taken
            ),
            default=(0, ""),
        )
        if best[0]:
            matches[payout.id] = best[1]
            taken.add(best[1])
    return matches
