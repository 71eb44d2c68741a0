"""The same billing write twice at once: two threads released together by a barrier, each with
its own database connection, call the real service or view. Money is never moved twice, a
second delivery or run finds the first's result, and nothing answers 500 (PostgreSQL only:
row locks across connections)."""

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from billing.models import LedgerEntry, LedgerTransaction, Payment, Refund
from tests.billing.helpers import paid_session, unit_rate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL")


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = call()
        except BaseException as exc:  # returned to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def errors(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


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
