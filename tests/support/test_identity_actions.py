"""Seed 003 §6/§7 from the admin: verify identity, then change the email (sign-in moves too) or erase."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import Payment
from chargers.models import ChargingSession
from support import toolkit
from support.models import Ticket
from tests.factories import ChargerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db):
    return UserFactory(username="agent@example.com", is_staff=True)


@pytest.fixture
def customer(db):
    charger = ChargerFactory(station_id="ID-1")
    started = timezone.now() - timedelta(days=2)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=901,
        id_tag="G",
        started_at=started,
        meter_start_wh=0,
    )
    Payment.objects.create(
        organization=charger.property.organization,
        session=session,
        email="old@example.com",
        currency="EUR",
        amount_held=Decimal("50"),
        amount_captured=Decimal("4"),
        reference="pi_id1",
        status="captured",
        card_last4="4242",
    )
    ticket = Ticket.objects.create(
        email="old@example.com",
        message="change my email",
        topic="email_change",
        name="Ann Guest",
        phone="+31 6 1234",
    )
    return ticket, started.date()


def test_email_change_needs_verified_identity(agent, customer):
    ticket, _day = customer
    with pytest.raises(ValidationError, match="Verify the customer's identity first"):
        toolkit.ticket_change_email(ticket=ticket, user=agent, new_email="new@example.com")
    assert not toolkit.ticket_verify_identity(ticket=ticket, user=agent, card_last4="9999")
    with pytest.raises(ValidationError):
        toolkit.ticket_change_email(ticket=ticket, user=agent, new_email="new@example.com")
    assert Payment.objects.get().email == "old@example.com"


def test_verified_email_change_moves_payments_and_the_hosts_sign_in(
    agent, customer, django_capture_on_commit_callbacks
):
    ticket, day = customer
    host = UserFactory(username="old@example.com")
    assert toolkit.ticket_verify_identity(ticket=ticket, user=agent, session_date=day)
    mail.outbox.clear()
    with pytest.raises(ValidationError):
        toolkit.ticket_change_email(ticket=ticket, user=agent, new_email=agent.email)  # taken
    with django_capture_on_commit_callbacks(execute=True):
        toolkit.ticket_change_email(ticket=ticket, user=agent, new_email="new@example.com")
    assert Payment.objects.get().email == "new@example.com"
    host.refresh_from_db()
    assert host.username == host.email == "new@example.com"
    assert (
        get_user_model().objects.get(username="new@example.com").check_password("secret-pass-123")
    )
    assert sorted(m.to[0] for m in mail.outbox) == ["new@example.com", "old@example.com"]


def test_verified_erasure_removes_contact_details_and_keeps_amounts(agent, customer):
    ticket, _day = customer
    assert toolkit.ticket_verify_identity(ticket=ticket, user=agent, card_last4="4242")
    mail.outbox.clear()
    toolkit.ticket_erase_customer(ticket=ticket, user=agent)
    payment = Payment.objects.get()
    assert payment.email == "" and payment.amount_captured == Decimal("4")
    ticket.refresh_from_db()
    assert (ticket.email, ticket.name, ticket.phone) == ("", "", "")
    assert mail.outbox[0].to == ["old@example.com"]
