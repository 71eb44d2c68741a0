"""Support work done twice at once: a customer's mail delivered twice by the mail system while
the first delivery runs, an agent's "Send" or "Refund" pressed twice, two agents acting on one
ticket. One message on the ticket, one email to the customer, one refund, every note kept."""

from __future__ import annotations

from decimal import Decimal
from email.message import EmailMessage

import pytest
from django.core import mail

from authorization.models import TokenGroup
from billing.models import Refund
from support import toolkit
from support.inbound import receive_email
from support.models import Ticket, TicketMessage
from tests.billing.helpers import paid_session, unit_rate
from tests.concurrency import all_at_once
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


@pytest.fixture
def agent():
    return UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def ticket():
    return Ticket.objects.create(
        email="guest@example.com", message="HB-9 is dead.", topic="offline"
    )


def test_a_customers_mail_delivered_twice_at_once_is_one_message_on_the_ticket(ticket):
    reply = EmailMessage()
    reply["From"] = "Guest <guest@example.com>"
    reply["To"] = "replies@support.example.com"
    reply["Subject"] = f"Re: your request #{ticket.reference}"
    reply["Message-ID"] = "<reply-twice@mail.example.com>"
    reply.set_content("It happened at 10:42.")
    raw = bytes(reply)
    stored = all_at_once(*[lambda: receive_email(raw)] * 4)
    assert len([m for m in stored if m is not None]) == 1
    assert TicketMessage.objects.filter(ticket=ticket, direction="in").count() == 1


def test_an_agents_reply_sent_twice_at_once_emails_the_customer_once(agent, ticket):
    sent = all_at_once(
        *[lambda: toolkit.ticket_reply(ticket=ticket, user=agent, body="We reset it.")] * 2
    )
    assert sent[0].pk == sent[1].pk
    assert TicketMessage.objects.filter(ticket=ticket, direction="out").count() == 1
    assert len(mail.outbox) == 1
    # The same words later, after the customer wrote back, are a new reply.
    TicketMessage.objects.create(
        ticket=ticket, direction="in", body="Still dead.", message_id="<in-2@mail.example.com>"
    )
    toolkit.ticket_reply(ticket=ticket, user=agent, body="We reset it.")
    assert len(mail.outbox) == 2


def test_a_refund_pressed_twice_at_once_refunds_and_confirms_once(agent):
    prop = PropertyFactory()
    charger = ChargerFactory(property=prop)
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="payer@example.com")
    ticket = Ticket.objects.create(
        email="payer@example.com",
        message="I was overcharged",
        topic="billing",
        session=session,
        organization=prop.organization,
    )
    mail.outbox = []
    refunds = all_at_once(
        *[
            lambda: toolkit.ticket_refund(
                ticket=ticket,
                payment=payment,
                amount=Decimal("4.00"),
                reason="Idle fee",
                user=agent,
            )
        ]
        * 2
    )
    assert refunds[0].pk == refunds[1].pk
    assert Refund.objects.filter(payment=payment).count() == 1
    assert [m.to for m in mail.outbox] == [["payer@example.com"]]
    assert Ticket.objects.get(pk=ticket.pk).agent_notes.count("Refunded 4.00") == 1


def test_two_agents_acting_on_one_ticket_at_once_both_keep_their_note(agent, ticket):
    other = UserFactory(username="second@example.com", is_staff=True)
    prop = PropertyFactory()
    Ticket.objects.filter(pk=ticket.pk).update(organization=prop.organization)
    group = TokenGroup.objects.create(organization=prop.organization, name="Residents")
    # Each request reads the ticket itself (the admin's toolkit page does), before either saves.
    pages = [Ticket.objects.get(pk=ticket.pk) for _ in range(2)]
    all_at_once(
        *[
            lambda: toolkit.ticket_whitelist(ticket=pages[0], group=group, uid="04A1", user=agent),
            lambda: toolkit.ticket_whitelist(ticket=pages[1], group=group, uid="04B2", user=other),
        ]
    )
    notes = Ticket.objects.get(pk=ticket.pk).agent_notes
    assert "Whitelisted 04A1" in notes and "Whitelisted 04B2" in notes


def _finished(charger, transaction_id: int, *, wh: int | None):
    from datetime import timedelta

    from django.utils import timezone

    from chargers.models import ChargingSession

    start = timezone.now() - timedelta(hours=1)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=transaction_id,
        transaction_id=transaction_id,
        id_tag="GUEST",
        started_at=start,
        stopped_at=start + timedelta(minutes=30),
        meter_start_wh=0 if wh is not None else None,
        meter_stop_wh=wh,
        status="completed",
    )


def test_a_held_settlement_announced_twice_at_once_opens_one_ticket():
    from support.services import flag_settlement_held

    session = _finished(ChargerFactory(property=PropertyFactory()), 1, wh=1000)
    flagged = all_at_once(
        *[lambda: flag_settlement_held(session_id=session.pk, reason="signature invalid")] * 4
    )
    assert len({ticket.pk for ticket in flagged}) == 1
    assert Ticket.objects.filter(session=session).count() == 1


def test_two_sessions_of_a_charger_without_readings_ending_at_once_open_one_ticket():
    from support.services import flag_session_without_energy_reading

    charger = ChargerFactory(property=PropertyFactory())
    sessions = [_finished(charger, n, wh=None) for n in (1, 2)]
    all_at_once(
        *[lambda s=s: flag_session_without_energy_reading(session_id=s.pk) for s in sessions]
    )
    ticket = Ticket.objects.get(charger=charger)
    assert sorted(ticket.details["sessions"]) == sorted(s.pk for s in sessions)


def test_the_contact_form_sent_twice_at_once_is_one_ticket_and_one_confirmation():
    from django.test import Client

    form = {"topic": "offline", "message": "The charger is dark.", "email": "guest@example.com"}
    clients = [Client(REMOTE_ADDR=f"203.0.113.{n}") for n in (1, 2)]
    answers = all_at_once(*[lambda c=c: c.post("/support/contact/", form) for c in clients])
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]  # the one ticket's reference
    assert Ticket.objects.filter(email="guest@example.com").count() == 1
    assert len(mail.outbox) == 1
