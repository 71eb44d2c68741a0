"""Pure reconciliation rules: reading the report and explaining differences. No database."""

from datetime import date
from decimal import Decimal as D

from billing.reconciliation import ExpectedPayout, explain_difference, parse_report, reconcile

PAYOUT = ExpectedPayout(
    reference="PO-1-EUR-20260301",
    net=D("90.00"),
    status="pending",
    period_end=date(2026, 3, 1),
    gross=D("110.00"),
    processing_fees=D("3.00"),
    platform_fees=D("5.00"),
    refunds=D("12.00"),
    carried_over=D("0"),
    minimum_payout=D("50"),
)


def test_header_names_vary_and_bad_rows_are_reported():
    rows = parse_report(
        '\ufeffPayout ID,Arrival_Date,Net,State\nPO-1,02/03/2026,"1,090.00",paid\n,2026-03-02,x,paid\n'
    )
    assert (rows[0].payout_id, rows[0].day, rows[0].amount, rows[0].status) == (
        "PO-1",
        date(2026, 3, 2),
        D("1090.00"),
        "paid",
    )
    assert "no payout id" in rows[1].error and "unreadable amount" in rows[1].error


def test_differences_are_explained_by_their_cause():
    assert "processing fees" in explain_difference(PAYOUT, D("87.00"))
    assert "platform fee" in explain_difference(PAYOUT, D("85.00"))
    assert "refunds" in explain_difference(PAYOUT, D("78.00"))
    assert "gross instead of the net" in explain_difference(PAYOUT, D("110.00"))
    assert "threshold" in explain_difference(PAYOUT, D("40.00"))
    assert "in transit" in explain_difference(PAYOUT, D("89.99"))
    assert "merged" in explain_difference(PAYOUT, D("91.00"))
    carried = ExpectedPayout(**{**PAYOUT.__dict__, "carried_over": D("25.00")})
    assert "carried over" in explain_difference(carried, D("65.00"))


def test_failed_payouts_are_not_reported_missing_and_old_ones_are_out_of_window():
    old = ExpectedPayout(reference="PO-OLD", net=D("5"), status="paid", period_end=date(2025, 1, 1))
    failed = ExpectedPayout(
        reference="PO-F", net=D("5"), status="failed", period_end=date(2026, 3, 1)
    )
    findings = reconcile(
        [],
        {"PO-OLD": old, "PO-F": failed, PAYOUT.reference: PAYOUT},
        window=(date(2026, 2, 1), date(2026, 3, 5)),
    )
    assert [(f.kind, f.payout_reference) for f in findings] == [
        ("missing_in_report", PAYOUT.reference)
    ]
