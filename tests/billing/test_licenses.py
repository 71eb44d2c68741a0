"""Issue 51 item 1: a host activates a charger's license within the plan (docs/billing.md,
"Charger licenses") or asks support with one click, support's activation comes back as an email
with the ticket resolved, the price is on the host's ledger and payout, and the dashboard flags
a charger that cannot charge for want of a license until then."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from authorization.decisions import Context
from authorization.services import decide_sync
from billing.license_plan import LicensePlan, add_months, license_offer
from billing.licenses import LicenseRefused, license_activate
from billing.models import LedgerEntry, LedgerTransaction, Payout
from billing.services import payout_create
from chargers.models import Charger
from chargers.sessions.services import charger_facts
from support.models import Ticket
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    PropertyFactory,
    TokenFactory,
    UserFactory,
)

PLAN = LicensePlan(prices={"EUR": Decimal("60.00")}, term_months=12, renew_within_days=30)
TODAY = date(2026, 11, 25)


# The plan rule (pure).


def test_a_charger_without_license_gets_one_term_from_today():
    offer = license_offer(PLAN, valid_until=None, today=TODAY, currency="eur")
    assert offer.allowed
    assert (offer.valid_from, offer.valid_until) == (TODAY, date(2027, 11, 24))
    assert (offer.price, offer.currency) == (Decimal("60.00"), "EUR")


def test_an_expired_license_starts_again_today():
    offer = license_offer(PLAN, valid_until=date(2026, 1, 31), today=TODAY, currency="EUR")
    assert (offer.valid_from, offer.valid_until) == (TODAY, date(2027, 11, 24))


def test_renewal_follows_on_inside_the_window_and_is_refused_before_it():
    ends = TODAY + timedelta(days=30)
    renew = license_offer(PLAN, valid_until=ends, today=TODAY, currency="EUR")
    assert renew.allowed and renew.valid_from == ends + timedelta(days=1)
    early = license_offer(PLAN, valid_until=ends + timedelta(days=1), today=TODAY, currency="EUR")
    assert not early.allowed
    assert "can be renewed from 26 Nov 2026" in early.reason


def test_a_currency_without_a_price_goes_to_support():
    offer = license_offer(PLAN, valid_until=None, today=TODAY, currency="JPY")
    assert not offer.allowed and "activated by support" in offer.reason


def test_months_keep_the_day_or_the_months_last():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2026, 11, 25), 14) == date(2028, 1, 25)


# The service: the term on the charger, the price on the host's ledger.


@pytest.fixture
def site(db):
    prop = PropertyFactory(name="Harbour Garage", currency="EUR")
    charger = ChargerFactory(property=prop, station_id="HB-7", license_valid_until=None)
    roles = {
        role: MembershipFactory(
            organization=prop.organization, role=role, user=UserFactory(email=f"{role}@hb.test")
        ).user
        for role in ("owner", "manager", "viewer")
    }
    return prop, charger, roles


def _host_balance(org_id: int) -> Decimal:
    entries = LedgerEntry.objects.filter(account=f"host:{org_id}:EUR")
    return -sum((e.amount for e in entries), Decimal(0))


def _accepted(charger: Charger) -> bool:
    charger.refresh_from_db()
    token = TokenFactory(
        uid=f"LIC{Charger.objects.count()}{timezone.now():%f}",
        organization=charger.property.organization,
    )
    decision = decide_sync(
        uid=token.uid, charger=charger_facts(charger), context=Context.START_TRANSACTION
    )
    return decision.status == "Accepted"


def test_activation_lets_the_charger_charge_and_books_the_price_once(site):
    prop, charger, _ = site
    assert not _accepted(charger)  # license_inactive
    offer = license_activate(charger_id=charger.pk)
    charger.refresh_from_db()
    assert charger.license_valid_until == offer.valid_until
    assert _accepted(charger)
    fee = LedgerTransaction.objects.get(kind=LedgerTransaction.Kind.LICENSE_FEE)
    assert (fee.amount, fee.currency, fee.organization_id) == (
        Decimal("60.00"),
        "EUR",
        prop.organization_id,
    )
    assert "HB-7" in fee.memo
    assert _host_balance(prop.organization_id) == Decimal("-60.00")
    # Activating again now is outside the plan: refused, nothing changes.
    with pytest.raises(LicenseRefused):
        license_activate(charger_id=charger.pk)
    charger.refresh_from_db()
    assert charger.license_valid_until == offer.valid_until
    assert LedgerTransaction.objects.filter(kind="license_fee").count() == 1


def test_the_payout_deducts_the_license(site):
    prop, charger, _ = site
    from billing import ledger

    now = timezone.now()
    ledger.post(
        key="charge-1",
        kind=LedgerTransaction.Kind.GUEST_CHARGE,
        organization_id=prop.organization_id,
        currency="EUR",
        amount=Decimal("100.00"),
        occurred_at=now,
    )
    license_activate(charger_id=charger.pk)
    payout = payout_create(
        organization_id=prop.organization_id, currency="EUR", period_end=now + timedelta(hours=1)
    )
    assert isinstance(payout, Payout)
    assert (payout.gross, payout.license_fees, payout.net) == (
        Decimal("100.00"),
        Decimal("60.00"),
        Decimal("40.00"),
    )


# The portal: owners activate, managers ask support, viewers read, strangers get 404.


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_activates_from_the_license_page(site):
    _, charger, roles = site
    owner = _client(roles["owner"])
    page = owner.get("/support/licenses/HB-7/").content.decode()
    assert "Not active" in page and "60.00 EUR for 12 months" in page
    assert 'id="license-activate"' in page
    response = owner.post("/support/licenses/HB-7/", {"action": "activate"}, follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "HB-7 can charge now" in body
    charger.refresh_from_db()
    assert charger.license_active()
    assert 'id="license-activate"' not in body  # renewal opens 30 days before the end


@pytest.mark.parametrize("role, status", [("manager", 403), ("viewer", 403)])
def test_only_owners_activate(site, role, status):
    _, charger, roles = site
    response = _client(roles[role]).post("/support/licenses/HB-7/", {"action": "activate"})
    assert response.status_code == status
    charger.refresh_from_db()
    assert charger.license_valid_until is None
    assert not LedgerTransaction.objects.exists()


def test_another_organization_sees_no_such_charger(site):
    _, charger, _ = site
    stranger = MembershipFactory(role="owner").user
    client = _client(stranger)
    assert client.get("/support/licenses/HB-7/").status_code == 404
    assert client.post("/support/licenses/HB-7/", {"action": "activate"}).status_code == 404
    assert client.post("/support/licenses/HB-7/", {"action": "request"}).status_code == 404
    charger.refresh_from_db()
    assert charger.license_valid_until is None
    assert not Ticket.objects.exists()


def test_a_manager_asks_support_once_and_support_answers(site, django_capture_on_commit_callbacks):
    _, charger, roles = site
    manager = _client(roles["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        manager.post("/support/licenses/HB-7/", {"action": "request"})
        manager.post("/support/licenses/HB-7/", {"action": "request"})  # a second click
    ticket = Ticket.objects.get()
    assert (ticket.topic, ticket.charger_id, ticket.organization_id, ticket.email) == (
        Ticket.Topic.LICENSE,
        charger.pk,
        charger.property.organization_id,
        "manager@hb.test",
    )
    assert f"#{ticket.reference}" in manager.get("/support/licenses/HB-7/").content.decode()
    dashboard = manager.get("/").content.decode()
    assert f"Support asked (#{ticket.reference})" in dashboard
    # Support activates from the ticket's toolkit; the host is answered and the ticket resolved.
    agent = UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)
    mail.outbox.clear()
    response = _client(agent).post(
        f"/admin/support/ticket/{ticket.pk}/toolkit/",
        {"action": "license", "license-action": "license"},
        follow=True,
    )
    assert response.status_code == 200
    charger.refresh_from_db()
    assert charger.license_active()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert [m.to for m in mail.outbox] == [["manager@hb.test"]]
    assert "it can charge now" in mail.outbox[0].body
    assert "60.00 EUR is deducted" in mail.outbox[0].body
    assert LedgerTransaction.objects.filter(kind="license_fee").count() == 1
    # The host reads the answer on the ticket; the dashboard no longer flags the charger.
    assert (
        "it can charge now" in manager.get(f"/support/tickets/{ticket.reference}/").content.decode()
    )
    assert 'data-cannot-charge="license"' not in manager.get("/").content.decode()


def test_the_dashboard_flags_a_connected_charger_that_cannot_charge(site):
    _, charger, roles = site
    Charger.objects.filter(pk=charger.pk).update(last_seen_at=timezone.now())
    ChargerFactory(property=charger.property, station_id="HB-OK")  # licensed
    page = _client(roles["viewer"]).get("/").content.decode()
    assert page.count('data-cannot-charge="license"') == 1
    assert "Connected, cannot charge" in page and "No license yet." in page
    assert "/support/licenses/HB-7/" in page


def test_the_setup_card_offers_activation_and_a_copy_button(site):
    prop, _, roles = site
    owner = _client(roles["owner"])
    response = owner.post(
        f"/locations/{prop.pk}/chargers/add/",
        {"station_id": "HB-NEW", "name": "", "security_profile": "1"},
    )
    body = response.content.decode()
    assert 'id="copy-password"' in body, body[:2000]
    assert "/support/licenses/HB-NEW/" in body
