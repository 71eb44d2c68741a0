"""Payouts (net = charges - processing fees - platform fee - refunds; failed ones roll into the
next) and reconciliation of a crafted bank report that flags every mismatch."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.models import BillingSettings, Payout, ReconciliationImport
from billing.selectors import host_balance, payout_breakdown
from billing.services import payout_create, payouts_run, refund_issue
from billing.services.payouts import payout_mark_failed
from billing.services.reconciliation import reconciliation_create
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    charger = ChargerFactory()
    org_id = charger.property.organization_id
    # 2% + 0.20 processing, 5% platform fee.
    unit_rate(
        charger.property, processing_fee_percent=Decimal("2"), processing_fee_fixed=Decimal("0.20")
    )
    BillingSettings.objects.create(
        organization_id=org_id, platform_fee_percent=Decimal("5"), payout_period="weekly"
    )
    return charger, org_id


def test_payout_net_and_breakdown(setup):
    charger, org_id = setup
    s1, p1 = paid_session(charger, wh=20000)  # 20.00: fee 0.40 + 0.20 = 0.60, platform 1.00
    s2, p2 = paid_session(charger, wh=10000)  # 10.00: fee 0.20 + 0.20 = 0.40, platform 0.50
    refund_issue(
        payment=p2,
        amount=Decimal("4.00"),
        reason="idle fee while still charging",
        source="host",
        idempotency_key="r1",
    )
    payout = payout_create(
        organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    assert (payout.gross, payout.processing_fees, payout.platform_fees, payout.refunds) == (
        Decimal("30.00"),
        Decimal("1.00"),
        Decimal("1.50"),
        Decimal("4.00"),
    )
    assert payout.net == Decimal("23.50")
    assert host_balance(org_id, "EUR") == 0
    rows = {row["session"].pk: row for row in payout_breakdown(payout)["sessions"]}
    assert rows[s1.pk]["net"] == Decimal("18.40")
    assert rows[s2.pk]["net"] == Decimal("5.10")  # 10.00 - 0.40 - 0.50 - 4.00
    # Idempotent: the same period again returns the same payout.
    assert (
        payout_create(organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10))
        == payout
    )


def test_failed_payout_rolls_into_the_next(setup):
    charger, org_id = setup
    paid_session(charger, wh=10000)
    first = payout_create(
        organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    payout_mark_failed(payout=first, reason="IBAN closed")
    assert host_balance(org_id, "EUR") == first.net
    paid_session(charger, wh=5000, start=T0 + timedelta(days=12))  # 5.00 - 0.30 - 0.25 = 4.45
    second = payout_create(
        organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=20)
    )
    assert second.carried_over == first.net == Decimal("9.10")
    assert second.net == Decimal("13.55")
    first.refresh_from_db()
    assert first.rolled_into == second


def test_refund_after_payout_is_deducted_from_the_next_payout(setup):
    charger, org_id = setup
    _s, payment = paid_session(charger, wh=10000)
    payout_create(organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10))
    paid_session(charger, wh=20000, start=T0 + timedelta(days=11))
    refund_issue(
        payment=payment,
        amount=Decimal("10.00"),
        reason="charger fault",
        source="support",
        idempotency_key="r-late",
    )
    second = payout_create(
        organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=20)
    )
    assert second.refunds == Decimal("10.00")
    assert second.net == Decimal("20.00") - Decimal("0.60") - Decimal("1.00") - Decimal("10.00")


def test_below_minimum_waits_for_the_next_period(setup):
    charger, org_id = setup
    BillingSettings.objects.filter(organization_id=org_id).update(minimum_payout=Decimal("50"))
    paid_session(charger, wh=10000)
    assert (
        payout_create(organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10))
        is None
    )
    assert host_balance(org_id, "EUR") == Decimal("9.10")


def test_payouts_run_uses_the_period_of_each_organization(setup):
    charger, org_id = setup
    paid_session(charger, wh=10000)
    created = payouts_run(now=T0 + timedelta(days=15))
    assert len(created) == 1 and created[0].period_end.weekday() == 0
    assert payouts_run(now=T0 + timedelta(days=15)) == []


def test_reconciliation_flags_every_crafted_mismatch(setup, django_capture_on_commit_callbacks):
    charger, org_id = setup
    payouts = []
    for day in (10, 20, 30, 40, 50):
        paid_session(charger, wh=10000, start=T0 + timedelta(days=day - 5))  # net 9.10 each
        payouts.append(
            payout_create(
                organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=day)
            )
        )
    ok, short, failed, late, missing = payouts
    d = lambda p, extra=1: (p.period_end + timedelta(days=extra)).date().isoformat()  # noqa: E731
    report = (
        "\n".join(
            [
                "payout_id,date,amount,status,reason",
                f"{ok.reference},{d(ok)},9.10,paid,",
                f"{short.reference},{d(short)},8.70,paid,",  # 0.40 less = the processing fees deducted again
                f"{failed.reference},{d(failed)},9.10,failed,account closed",
                f"{late.reference},{d(late, 12)},9.10,paid,",
                "PO-999-EUR-20200101,2026-01-01,12.00,paid,",
                f"{ok.reference[:-1]}X,not-a-date,abc,paid,",
            ]
        )
        + "\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        record = reconciliation_create(content=report, filename="bank.csv", organization_id=org_id)
    record.refresh_from_db()
    assert record.status == ReconciliationImport.Status.DONE
    issues = {(i.kind, i.reported_payout_id): i for i in record.issues.all()}
    kinds = sorted(kind for kind, _ in issues)
    assert kinds == [
        "amount_differs",
        "bad_row",
        "date_differs",
        "failed",
        "missing_in_report",
        "unknown_payout",
    ]
    assert "processing fees" in issues[("amount_differs", short.reference)].explanation
    assert issues[("amount_differs", short.reference)].expected_amount == Decimal("9.10")
    assert "rolls into the next payout" in issues[("failed", failed.reference)].explanation
    assert "timing" in issues[("date_differs", late.reference)].explanation
    assert "in transit" in issues[("missing_in_report", missing.reference)].explanation
    statuses = {p.pk: p.status for p in Payout.objects.all()}
    assert statuses[ok.pk] == statuses[late.pk] == "paid"
    assert statuses[failed.pk] == "failed"
    assert statuses[short.pk] == statuses[missing.pk] == "pending"
    # The failed payout's net is owed again.
    assert host_balance(org_id, "EUR") == Decimal("9.10")
    # Rerunning the same report changes no payout twice and gives the same findings.
    from billing.services.reconciliation import reconciliation_run

    reconciliation_run(reconciliation_id=record.pk)
    assert record.issues.count() == 6
    assert host_balance(org_id, "EUR") == Decimal("9.10")


@pytest.mark.parametrize(
    "action,status", [("mark_paid", Payout.Status.PAID), ("mark_failed", Payout.Status.FAILED)]
)
def test_support_marks_a_payout_paid_or_failed_in_the_admin(setup, action, status):
    """The admin's payout actions reach the payout outcome writes (billing/services/payouts.py;
    they once named a module that did not hold them and failed on every click)."""
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.test import Client

    from tests.factories import UserFactory

    charger, org_id = setup
    paid_session(charger, wh=10000)
    payout = payout_create(
        organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    assert payout is not None and payout.status == Payout.Status.PENDING
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    answer = client.post(
        "/admin/billing/payout/", {"action": action, ACTION_CHECKBOX_NAME: [payout.pk]}
    )
    assert answer.status_code == 302
    payout.refresh_from_db()
    assert payout.status == status
