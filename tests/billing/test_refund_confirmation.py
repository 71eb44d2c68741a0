"""A refund asked from a support ticket whose answer from Stripe was lost is booked later by the
periodic settle (billing.refunds_unanswered_settle): the customer's confirmation and the ticket's
note are sent then, once, not only when an agent asks the same refund again.

Only the HTTP layer of the official client is replaced (tests/billing/test_stripe_gateway.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
from django.core import mail
from django.utils import timezone

from billing.gateways import StripeGateway
from billing.models import LedgerTransaction, Payment, Refund, RefundHold
from billing.services.refunds import RefundUnanswered, refund_issue
from billing.tasks import refunds_unanswered_settle_task
from chargers.models import ChargingSession
from support import toolkit
from support.models import Ticket, TicketMessage
from tests.billing.test_stripe_gateway import RecordedHTTP
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NO_ANSWER = [("api_error", 500)] * 3  # the first request and the client's two retries


@pytest.fixture
def stripe_http(monkeypatch):
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    http = RecordedHTTP([])
    gateway = StripeGateway("sk_test_recorded", http_client=http)
    monkeypatch.setattr("billing.services.refunds.get_gateway", lambda: gateway)
    return http


@pytest.fixture
def ticket_payment(prop, charger):
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=8811,
        id_tag="G4",
        started_at=timezone.now() - timedelta(hours=1),
        stopped_at=timezone.now(),
        meter_start_wh=0,
        meter_stop_wh=1500,
        status="completed",
    )
    payment = Payment.objects.create(
        organization=prop.organization,
        session=session,
        email="card@example.com",
        currency="EUR",
        amount_held=Decimal("30.00"),
        amount_captured=Decimal("5.45"),
        reference="pi_3QxTestHold0001",
        status="captured",
        gateway="stripe",
    )
    ticket = Ticket.objects.create(
        email="card@example.com",
        message="refund please",
        topic="billing",
        session=session,
        organization=prop.organization,
    )
    return ticket, payment


def _unanswered_ticket_refund(stripe_http, ticket, payment, agent):
    stripe_http.replies = [("pi_captured", 200), *NO_ANSWER]
    with pytest.raises(RefundUnanswered):
        toolkit.ticket_refund(
            ticket=ticket, payment=payment, amount=Decimal("2.00"), reason="Failed", user=agent
        )
    assert not Refund.objects.exists() and not mail.outbox
    assert RefundHold.objects.get().unanswered_since is not None


def _confirmations(ticket):
    return list(TicketMessage.objects.filter(ticket=ticket, direction="out"))


def test_the_periodic_settle_confirms_a_ticket_refund_once(
    stripe_http, ticket_payment, django_capture_on_commit_callbacks
):
    ticket, payment = ticket_payment
    agent = UserFactory(is_staff=True, username="agent-ann")
    mail.outbox.clear()
    _unanswered_ticket_refund(stripe_http, ticket, payment, agent)

    # Stripe answers late: the periodic run books the refund and confirms it at once.
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded", 200)]
    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_unanswered_settle_task.delay().result == 1
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason, refund.created_by) == (Decimal("2.00"), "Failed", agent)
    assert [m.to for m in mail.outbox] == [["card@example.com"]]
    assert "2.00" in mail.outbox[0].body and "Failed" in mail.outbox[0].body
    assert mail.outbox[0].subject == f"Your refund for request #{ticket.reference}"
    [message] = _confirmations(ticket)
    assert message.delivered and message.author == agent
    assert mail.outbox[0].extra_headers["Message-ID"] == message.message_id
    ticket.refresh_from_db()
    assert ticket.agent_notes.count("Refunded 2.00 EUR of payment pi_3QxTestHold0001") == 1
    assert "agent-ann" in ticket.agent_notes

    # The settle again (nothing left to ask), and the agent asking the same refund again: the
    # same refund comes back, and nothing more is sent or noted.
    asked = len(stripe_http.requests)
    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_unanswered_settle_task.delay().result == 0
        assert len(stripe_http.requests) == asked
        again = toolkit.ticket_refund(
            ticket=ticket, payment=payment, amount=Decimal("2.00"), reason="Failed", user=agent
        )
    assert again == refund and len(stripe_http.requests) == asked
    assert len(mail.outbox) == 1 and len(_confirmations(ticket)) == 1
    ticket.refresh_from_db()
    assert ticket.agent_notes.count("Refunded 2.00") == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("2.00")
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1


def test_a_ticket_refund_booked_by_another_refund_of_the_payment_is_confirmed_once(
    stripe_http, ticket_payment, django_capture_on_commit_callbacks
):
    """Another refund of the same payment settles the lost one first (refund_issue): the
    ticket's confirmation goes out then too, and the other refund's payer email separately."""
    ticket, payment = ticket_payment
    agent = UserFactory(is_staff=True)
    mail.outbox.clear()
    _unanswered_ticket_refund(stripe_http, ticket, payment, agent)

    stripe_http.replies = [
        ("pi_captured", 200),
        ("refund_succeeded", 200),  # the ticket's refund, asked again with its key
        ("pi_captured", 200),
        ("refund_succeeded", 200),  # the admin's own refund
    ]
    with django_capture_on_commit_callbacks(execute=True):
        refund_issue(
            payment=payment,
            amount=Decimal("1.00"),
            reason="Goodwill",
            source=Refund.Source.SUPPORT,
            idempotency_key="admin:other",
        )
    assert Refund.objects.count() == 2
    ticket_mail = [m for m in mail.outbox if "request #" in m.subject]
    assert len(ticket_mail) == 1 and len(_confirmations(ticket)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_unanswered_settle_task.delay().result == 0
    assert len([m for m in mail.outbox if "request #" in m.subject]) == 1
    assert len([m for m in mail.outbox if "Your refund of 1.00" in m.subject]) == 1


def test_a_refund_answered_at_once_is_confirmed_once(
    stripe_http, ticket_payment, django_capture_on_commit_callbacks
):
    """The agent's own request books it: one confirmation, one note (the receiver of the
    booked refund and the toolkit's own confirmation are one)."""
    ticket, payment = ticket_payment
    agent = UserFactory(is_staff=True)
    mail.outbox.clear()
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded", 200)]
    with django_capture_on_commit_callbacks(execute=True):
        toolkit.ticket_refund(
            ticket=ticket, payment=payment, amount=Decimal("2.00"), reason="Failed", user=agent
        )
    assert len(mail.outbox) == 1 and len(_confirmations(ticket)) == 1
    ticket.refresh_from_db()
    assert ticket.agent_notes.count("Refunded 2.00") == 1


def test_a_refund_without_an_email_is_noted_once(
    stripe_http, ticket_payment, django_capture_on_commit_callbacks
):
    """No address to confirm to: the ticket's note is the only trace, written once."""
    ticket, payment = ticket_payment
    Payment.objects.filter(pk=payment.pk).update(email="")
    Ticket.objects.filter(pk=ticket.pk).update(email="")
    ticket.refresh_from_db()
    payment.refresh_from_db()
    agent = UserFactory(is_staff=True)
    _unanswered_ticket_refund(stripe_http, ticket, payment, agent)
    stripe_http.replies = [("pi_captured", 200), ("refund_succeeded", 200)]
    with django_capture_on_commit_callbacks(execute=True):
        assert refunds_unanswered_settle_task.delay().result == 1
        toolkit.ticket_refund(
            ticket=ticket, payment=payment, amount=Decimal("2.00"), reason="Failed", user=agent
        )
    ticket.refresh_from_db()
    assert ticket.agent_notes.count("Refunded 2.00") == 1
    assert not mail.outbox and not _confirmations(ticket)


def test_a_failing_receiver_of_a_booked_refund_leaves_the_refund_booked_and_logs(
    stripe_http, ticket_payment, django_capture_on_commit_callbacks, caplog
):
    """The announcement runs after the commit and robustly: a receiver that raises is logged
    with its traceback; the refund, its ledger entry and the agent's answer stand."""
    from billing.signals import refund_booked

    def broken(**kwargs):
        raise RuntimeError("receiver broke")

    ticket, payment = ticket_payment
    refund_booked.connect(broken, dispatch_uid="test-broken-receiver")
    try:
        stripe_http.replies = [("pi_captured", 200), ("refund_succeeded", 200)]
        with caplog.at_level("ERROR"), django_capture_on_commit_callbacks(execute=True):
            refund = refund_issue(
                payment=payment,
                amount=Decimal("1.00"),
                reason="Goodwill",
                source=Refund.Source.SUPPORT,
                idempotency_key="admin:broken-receiver",
            )
    finally:
        refund_booked.disconnect(dispatch_uid="test-broken-receiver")
    assert Refund.objects.get() == refund
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert any("receiver broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
