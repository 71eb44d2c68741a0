"""Payouts reconciled against Stripe's payouts to the host's connected account: the payout and the
balance transactions it paid out (GET /v1/payouts, GET /v1/balance_transactions?payout=…), replayed
from recordings in Stripe's documented format; differences explained to the host and in admin."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.connect import payouts_reconcile_with_processor
from billing.gateways import StripeGateway
from billing.models import (
    BillingSettings,
    Payment,
    Payout,
    ReconciliationImport,
    ReconciliationIssue,
)
from billing.reconciliation import processor_payout
from billing.services import payout_create, refund_issue
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.billing.test_stripe_gateway import RecordedHTTP
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db
ACCOUNT = "acct_1QxHost0001"


@pytest.fixture
def payout():
    """Our payout: 20.00 + 10.00 charged, 1.00 processing fees, 1.50 platform fee, 4.00 refunded: 23.50."""
    charger = ChargerFactory()
    org_id = charger.property.organization_id
    unit_rate(
        charger.property, processing_fee_percent=Decimal("2"), processing_fee_fixed=Decimal("0.20")
    )
    BillingSettings.objects.create(
        organization_id=org_id,
        platform_fee_percent=Decimal("5"),
        payout_period="weekly",
        payout_account_id=ACCOUNT,
        payout_account_ready=True,
    )
    _, p1 = paid_session(charger, wh=20000)
    _, p2 = paid_session(charger, wh=10000)
    refund_issue(
        payment=p2, amount=Decimal("4.00"), reason="idle fee", source="host", idempotency_key="r1"
    )
    # The PaymentIntents Stripe's balance transactions name (the recordings).
    Payment.objects.filter(pk=p1.pk).update(reference="pi_3QxRecon0001")
    Payment.objects.filter(pk=p2.pk).update(reference="pi_3QxRecon0002")
    ours = payout_create(organization_id=org_id, currency="EUR", period_end=T0 + timedelta(days=10))
    assert ours.net == Decimal("23.50")
    return ours


def _run(ours, *replies):
    http = RecordedHTTP([(name, 200) for name in replies])
    record = payouts_reconcile_with_processor(
        organization_id=ours.organization_id,
        gateway=StripeGateway("sk_test_recorded", http_client=http),
    )
    return record, http


def test_a_matching_stripe_payout_marks_ours_paid_and_asks_stripe_as_documented(payout):
    record, http = _run(payout, "payouts_list_matched", "bt_payout_matched")
    assert (record.status, record.rows, record.matched, record.issues.count()) == ("done", 1, 1, 0)
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID
    listing, transactions = http.requests
    assert (
        listing["method"] == "get"
        and "/v1/payouts?" in listing["url"]
        and "arrival_date[gte]=" in listing["url"]
    )
    assert (
        "/v1/balance_transactions?" in transactions["url"]
        and "payout=po_1QxMatched0001" in transactions["url"]
    )
    assert "expand[0]=data.source" in transactions["url"]
    assert all(r["headers"]["Stripe-Account"] == ACCOUNT for r in http.requests)


def test_differences_are_explained_to_the_host_and_in_admin(payout, client, admin_client):
    record, _ = _run(payout, "payouts_list_differs", "bt_payout_differs", "bt_payout_unknown")
    assert record.status == "done" and record.matched == 0
    issue = ReconciliationIssue.objects.get(kind="amount_differs")
    assert issue.payout_id == payout.pk and issue.reported_payout_id == "po_1QxDiffers0001"
    text = issue.explanation
    assert (
        "Stripe paid EUR 18.35 in po_1QxDiffers0001; we expected EUR 23.50 (difference EUR -5.15)."
        in text
    )
    assert "1 of our payments (EUR 10.00: pi_3QxRecon0002) are not in this Stripe payout" in text
    assert "Stripe's processing fees: Stripe EUR 0.65, ours EUR 1.00." in text
    assert "Refunds: Stripe EUR 0.00, ours EUR 4.00." in text
    unknown = ReconciliationIssue.objects.get(kind="unknown_payout")
    assert unknown.reported_payout_id == "po_1QxUnknown0001" and unknown.payout is None
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PENDING  # not paid as expected

    owner = MembershipFactory(organization_id=payout.organization_id, role="owner").user
    client.force_login(owner)
    page = client.get(f"/billing/payouts/{payout.pk}/").content.decode()
    assert "Reconciliation findings" in page and "we expected EUR 23.50" in page
    admin_page = admin_client.get(
        f"/admin/billing/reconciliationimport/{record.pk}/change/"
    ).content.decode()
    assert "po_1QxDiffers0001" in admin_page and "Stripe&#x27;s processing fees" in admin_page
    # Run again (the daily beat): the host sees the latest run's findings once, not every run's.
    _run(payout, "payouts_list_differs", "bt_payout_differs", "bt_payout_unknown")
    assert (
        client.get(f"/billing/payouts/{payout.pk}/").content.decode().count("we expected EUR 23.50")
        == 1
    )


def test_a_failed_stripe_payout_fails_ours_and_says_why(payout):
    record, _ = _run(payout, "payouts_list_failed", "bt_payout_matched")
    issue = record.issues.get()
    assert issue.kind == "failed" and "The bank account has been closed." in issue.explanation
    ours = Payout.objects.get(pk=payout.pk)
    assert (
        ours.status == Payout.Status.FAILED
        and "The bank account has been closed." in ours.failure_reason
    )


def test_without_a_payout_account_or_stripe_the_run_fails_in_words(payout):
    BillingSettings.objects.filter(organization_id=payout.organization_id).update(
        payout_account_id=""
    )
    record, http = _run(payout)
    assert (
        record.status == "failed"
        and "no payout account at Stripe" in record.error
        and http.requests == []
    )
    BillingSettings.objects.filter(organization_id=payout.organization_id).update(
        payout_account_id=ACCOUNT
    )
    sandbox = payouts_reconcile_with_processor(organization_id=payout.organization_id)
    assert sandbox.status == "failed" and "PAYMENT_GATEWAY=stripe" in sandbox.error
    assert ReconciliationImport.objects.count() == 2


def test_the_payout_parser_reads_minor_units_fees_and_sources():
    import json
    from pathlib import Path

    folder = Path(__file__).parent / "stripe_recordings"
    po = json.loads((folder / "payouts_list_matched.json").read_text())["data"][0]
    txns = json.loads((folder / "bt_payout_matched.json").read_text())["data"]
    parsed = processor_payout(po, txns)
    assert (parsed.amount, parsed.currency, parsed.status) == (Decimal("23.50"), "EUR", "paid")
    assert len(parsed.transactions) == 3  # the payout's own debit is not a movement
    assert parsed.total("charge") == Decimal("30.00") and parsed.total("refund") == Decimal("-4.00")
    assert parsed.total("charge", "stripe_fee") == Decimal("1.00")
    assert parsed.total("charge", "application_fee") == Decimal("1.50")
    assert parsed.payment_references == {"pi_3QxRecon0001", "pi_3QxRecon0002"}
