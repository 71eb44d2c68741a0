"""The support contact form: prefilled from the guest page, stored as a Ticket for agents."""

import pytest
from django.core import mail
from django.test import Client

from support.models import Ticket
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def station(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="Europe/Amsterdam")
    return ChargerFactory(property=prop, station_id="HB-7")


def test_contact_form_is_prefilled_with_station_property_time_and_prompt(client, station):
    response = client.get(
        "/support/contact/",
        {"station_id": "HB-7", "prompt": "License inactive", "at": "2026-11-21T19:30:00+00:00"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="HB-7"' in body
    assert 'value="Harbour Hotel"' in body
    assert 'value="2026-11-21T20:30"' in body  # shown in the property's time zone
    assert "You saw: <strong>License inactive</strong>" in body
    assert 'value="guest_start" selected' in body


def test_contact_form_never_reveals_property_of_private_owner_chargers(client, station):
    ChargerFactory(property=station.property, station_id="HOME-7", ownership="private_owner")
    body = client.get("/support/contact/", {"station_id": "HOME-7"}).content.decode()
    assert "Harbour Hotel" not in body


def test_submitting_creates_a_ticket_linked_to_the_charger(client, station):
    response = client.post(
        "/support/contact/",
        {
            "topic": "offline",
            "station_id": " HB-7 ",
            "property_name": "Harbour Hotel",
            "occurred_at": "2026-11-21T20:30",
            "message": "The charger is dark.",
            "email": "guest@example.com",
            "prompt": "Charger is Out of Order",
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert response["Location"] == f"/support/contact/sent/?ref={ticket.reference}"
    assert ticket.charger == station and ticket.property == station.property
    assert ticket.station_id == "HB-7"
    assert ticket.source == Ticket.Source.GUEST_PAGE
    assert ticket.occurred_at.isoformat() == "2026-11-21T19:30:00+00:00"  # 20:30 Amsterdam
    assert ticket.status == Ticket.Status.NEW
    assert len(mail.outbox) == 1 and ticket.reference in mail.outbox[0].subject
    assert ticket.reference in client.get(response["Location"]).content.decode()


def test_invalid_station_id_is_kept_verbatim_for_support(client, db):
    client.post(
        "/support/contact/",
        {"topic": "guest_start", "station_id": "NOPE-1", "message": "x", "email": "a@b.co"},
    )
    ticket = Ticket.objects.get()
    assert ticket.station_id == "NOPE-1" and ticket.charger is None


def test_missing_email_is_a_form_error(client, db):
    response = client.post("/support/contact/", {"topic": "other", "message": "hi"})
    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_honeypot_stores_nothing(client, db):
    client.post(
        "/support/contact/",
        {"topic": "other", "message": "buy", "email": "a@b.co", "website": "spam"},
    )
    assert not Ticket.objects.exists()


def test_contact_is_rate_limited(client, db, monkeypatch):
    monkeypatch.setattr("support.views.pages._window", lambda: 42)  # no window boundary mid-test
    for n in range(5):  # five different requests (the same one twice is one ticket)
        client.post("/support/contact/", {"topic": "other", "message": f"m{n}", "email": "a@b.co"})
    response = client.post(
        "/support/contact/", {"topic": "other", "message": "m", "email": "a@b.co"}
    )
    assert response.status_code == 429
    assert Ticket.objects.count() == 5


def test_contact_requires_csrf(db):
    response = Client(enforce_csrf_checks=True).post(
        "/support/contact/", {"message": "m", "email": "a@b.co"}
    )
    assert response.status_code == 403


def test_agents_see_tickets_in_admin(client, station):
    Ticket.objects.create(
        email="guest@example.com", message="help", station_id="HB-7", charger=station
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    body = client.get("/admin/support/ticket/").content.decode()
    assert "HB-7" in body and "guest@example.com" in body
    ticket = Ticket.objects.get()
    assert client.get(f"/admin/support/ticket/{ticket.pk}/change/").status_code == 200


def test_admin_action_resolves_tickets(client, station):
    ticket = Ticket.objects.create(email="g@example.com", message="help")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.post(
        "/admin/support/ticket/", {"action": "mark_resolved", "_selected_action": [ticket.pk]}
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
