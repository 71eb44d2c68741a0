"""The same billing write twice at once: two threads released together by a barrier, each with
its own database connection, call the real service or view. Money is never moved twice, a
second delivery or run finds the first's result, and nothing answers 500 (PostgreSQL only:
row locks across connections)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.gateways import GatewayError
from billing.models import (
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Payout,
    Refund,
    RefundHold,
    SandboxIntent,
    SandboxRequest,
)
from tests.billing.helpers import paid_session, unit_rate
from tests.concurrency import at_once, errors

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]

LATER = timezone.now() + timedelta(
    days=40
)  # every test's sessions are before its payout period's end


def ledger_balances() -> bool:
    """Every transaction's entries sum to zero."""
    from django.db.models import Sum

    return all(
        (row["total"] or 0) == 0
        for row in LedgerEntry.objects.values("transaction").annotate(total=Sum("amount"))
    )


def _refund(payment: Payment, key: str, amount: str = "10.00"):
    from billing.services import refund_issue

    return lambda: refund_issue(
        payment=Payment.objects.get(pk=payment.pk),
        amount=Decimal(amount),
        reason="Charged for a session that did not charge",
        source="support",
        idempotency_key=key,
    )


def test_two_agents_refunding_the_whole_payment_at_once_refund_it_once(prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)  # 10.00 captured
    results = at_once(_refund(payment, "agent-a"), _refund(payment, "agent-b"))
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("10.00")
    assert Refund.objects.filter(payment=payment).count() == 1
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert len(errors(results)) == 1, results
    # Our own hold refused the second, in words a person reads; the processor was asked once
    # (not left to refuse more than it charged: a processor need not).
    (refused,) = errors(results)
    assert isinstance(refused, ValidationError) and "At most 0.00 EUR" in str(refused), refused
    assert SandboxRequest.objects.filter(key__startswith="refund-").count() == 1
    assert not RefundHold.objects.exists()


def test_a_refund_the_processor_refuses_gives_its_hold_back(prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    SandboxIntent.objects.filter(pk=payment.reference).update(status="canceled")
    with pytest.raises(GatewayError):
        _refund(payment, "agent-a", "4.00")()
    assert not RefundHold.objects.exists()
    SandboxIntent.objects.filter(pk=payment.reference).update(status="succeeded")
    assert _refund(payment, "agent-b", "10.00")().amount == Decimal("10.00")


def test_a_refund_submitted_twice_at_once_is_one_refund(prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    results = at_once(_refund(payment, "portal:k1", "4.00"), _refund(payment, "portal:k1", "4.00"))
    assert not errors(results), results
    assert results[0].pk == results[1].pk
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("4.00")
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1


def test_subscribing_twice_at_once_charges_the_first_month_once(client, prop):
    """A double click on Subscribe (two requests of one signed-in driver at once)."""
    from django.test import Client

    from billing.models import Subscription, SubscriptionInvoice, SubscriptionPlan
    from tests.drivers.conftest import save_card, sign_up

    plan = SubscriptionPlan.objects.create(
        property=prop, name="Resident", monthly_fee=Decimal("25.00"), included_kwh=Decimal("100")
    )
    sign_up(client, "twice@example.com")
    save_card(client)
    tabs = [Client(), Client()]
    for tab in tabs:
        tab.cookies = client.cookies
    url = f"/driver/plans/{plan.pk}/subscribe/"
    results = at_once(*(lambda t=t: t.post(url) for t in tabs))
    assert [r.status_code for r in results] == [302, 302], results
    assert Subscription.objects.count() == 1
    assert SubscriptionInvoice.objects.count() == 1
    assert Payment.objects.filter(amount_captured=Decimal("25.00")).count() == 1
    assert LedgerTransaction.objects.filter(kind="subscription_fee").count() == 1


def test_one_webhook_event_delivered_twice_at_once_is_applied_once(prop, monkeypatch, settings):
    """Stripe retries while the first delivery still runs: one stored event, the second is
    answered 200 as a duplicate (the unique event id, not an IntegrityError's 500)."""
    from django.test import Client

    from billing.models import WebhookEvent
    from billing.services import guest_payment_record
    from tests.billing.test_webhooks import SECRET, event, intent, signed

    settings.PAYMENT_GATEWAY = "stripe"
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    payment = guest_payment_record(
        session_id=None,
        organization_id=prop.organization_id,
        amount_held=Decimal("32.67"),
        currency="EUR",
        reference="pi_3QxTestHold0002",
        gateway="stripe",
        status=Payment.Status.AUTHORIZED,
    )
    payload, header = signed(
        event("payment_intent.succeeded", intent("succeeded", amount_received=545), "evt_twice")
    )

    def deliver():
        return Client().post(
            "/billing/webhooks/stripe/",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )

    results = at_once(deliver, deliver)
    assert not errors(results), results
    assert [r.status_code for r in results] == [200, 200]
    assert sorted(r.json()["duplicate"] for r in results) == [False, True]
    assert WebhookEvent.objects.filter(event_id="evt_twice").count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == ("captured", Decimal("5.45"))


def test_two_payout_runs_at_once_pay_out_once(prop, charger):
    """Two workers run the beat's payout task at once (or it is redelivered while running)."""
    from billing.services import payouts_run

    unit_rate(prop)
    for _ in range(3):
        paid_session(charger, wh=10000)
    run = lambda: payouts_run(now=LATER)  # noqa: E731
    results = at_once(run, run)
    assert not errors(results), results
    payout = Payout.objects.get()
    assert payout.net == Decimal("30.00")
    assert sorted(len(r) for r in results) == [0, 1]
    assert LedgerTransaction.objects.filter(kind="payout").count() == 1
    assert not LedgerTransaction.objects.filter(payout__isnull=True, kind="guest_charge").exists()
    assert ledger_balances()


def test_a_license_activated_twice_at_once_is_booked_once(prop):
    from billing.licenses import LicenseRefused, license_activate
    from tests.factories import ChargerFactory

    prop.currency = "EUR"
    prop.save(update_fields=["currency"])
    charger = ChargerFactory(property=prop, station_id="LIC-TWICE", license_valid_until=None)
    activate = lambda: license_activate(charger_id=charger.pk)  # noqa: E731
    results = at_once(activate, activate)
    assert [type(e) for e in errors(results)] == [LicenseRefused], results
    assert LedgerTransaction.objects.filter(kind="license_fee").count() == 1


def test_a_scheduled_report_sent_by_two_workers_at_once_is_sent_once(host, prop):
    from django.core import mail
    from django.utils import timezone

    from billing.models import ReportSchedule
    from billing.scheduled_reports import report_send

    schedule = ReportSchedule.objects.create(
        organization=prop.organization, frequency="daily", uptime=True, enabled=True
    )
    schedule.recipients.set([host])
    today = timezone.localdate()
    send = lambda: report_send(schedule_id=schedule.pk, today=today)  # noqa: E731
    mail.outbox.clear()
    results = at_once(send, send)
    assert not errors(results), results
    assert sorted(results) == [False, True]
    assert len(mail.outbox) == 1
    schedule.refresh_from_db()
    assert schedule.last_period_end == today


def test_a_statement_generated_by_two_workers_at_once_is_one_whole_file(prop, charger, settings):
    """The statement task redelivered while it runs (a worker lost, a second worker takes it)."""
    from billing.models import StatementJob
    from billing.statements import statement_generate, statement_path
    from tests.billing.helpers import T0

    unit_rate(prop)
    for _ in range(12):
        paid_session(charger, wh=10000)
    job = StatementJob.objects.create(
        organization=prop.organization,
        kind=StatementJob.Kind.SESSIONS,
        date_from=(T0 - timedelta(days=1)).date(),
        date_to=(T0 + timedelta(days=2)).date(),
    )
    generate = lambda: statement_generate(job_id=job.pk)  # noqa: E731
    results = at_once(generate, generate)
    assert not errors(results), results
    job.refresh_from_db()
    assert job.status == StatementJob.Status.DONE
    path = statement_path(job)
    assert path is not None
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 13 and "\x00" not in "".join(lines)
    assert not list(path.parent.glob("*.part"))


def test_a_payout_report_imported_twice_at_once_records_its_findings_once(prop, charger):
    """The import task redelivered while it runs: the payout page lists each mismatch once."""
    from billing.models import ReconciliationImport, ReconciliationIssue
    from billing.services import payouts_run, reconciliation_run

    unit_rate(prop)
    paid_session(charger, wh=10000)
    (payout,) = payouts_run(now=LATER)
    day = payout.period_end.date().isoformat()
    record = ReconciliationImport.objects.create(
        organization_id=prop.organization_id,
        content="payout_id,date,amount,status,reason\n"
        f"{payout.reference},{day},9.00,paid,\nPO-NOT-OURS,{day},5.00,paid,\n",
    )
    run = lambda: reconciliation_run(reconciliation_id=record.pk)  # noqa: E731
    results = at_once(run, run)
    assert not errors(results), results
    kinds = sorted(ReconciliationIssue.objects.values_list("kind", flat=True))
    assert kinds == ["amount_differs", "unknown_payout"], kinds
    record.refresh_from_db()
    assert (record.status, record.rows) == (ReconciliationImport.Status.DONE, 2)


def test_the_final_cost_sweep_on_two_workers_at_once_refunds_the_difference_once(prop, charger):
    """The session was priced again below what was charged (the charger's own stop came late)
    and two workers refund the difference at the same moment (the pricing task and the sweep)."""
    from billing.models import SessionCharge
    from billing.services.refunds import overcharges_refund

    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000)  # 10.00 captured
    SessionCharge.objects.filter(session=session).update(total=Decimal("7.00"))
    sweep = lambda: overcharges_refund([session.pk])  # noqa: E731
    results = at_once(sweep, sweep)
    assert not errors(results), results
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("3.00")
    assert list(Refund.objects.values_list("amount", "source")) == [(Decimal("3.00"), "final")]
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1


def test_the_statement_form_submitted_twice_at_once_queues_one_statement(host, prop, monkeypatch):
    """A double click on "Request statement": one job, one file to wait for, one task queued.
    The queue holds the task (as a busy worker would), so both requests find the job queued."""
    from django.test import Client

    from billing import schedule
    from billing.models import StatementJob

    queued: list[tuple] = []
    monkeypatch.setattr(schedule, "on_commit", lambda name, *args: queued.append((name, args)))
    tabs = [Client(), Client()]
    for tab in tabs:
        tab.force_login(host)
    form = {
        "organization": prop.organization_id,
        "kind": "sessions",
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
    }
    results = at_once(*(lambda t=t: t.post("/billing/statements/", form) for t in tabs))
    assert [r.status_code for r in results] == [302, 302], results
    job = StatementJob.objects.get()
    assert queued == [(schedule.STATEMENT_GENERATE, (job.pk,))]
