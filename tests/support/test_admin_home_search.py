"""The admin opens on one search: an agent finds the customer by what they give (the card's last
four with the day or the amount, an email, a station id, a number) with their recent sessions,
payments, tickets and the charger's state."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import Payment, Refund
from chargers.models import ChargingSession, Connector
from support.find_query import parse
from support.models import Ticket
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client):
    client.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def customer(db):
    charger = ChargerFactory(property=PropertyFactory(name="Harbour"), station_id="HB-7")
    Connector.objects.create(
        charger=charger, connector_id=1, status="Faulted", error_code="GroundFailure"
    )
    now = timezone.now()
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=31337,
        id_tag="GUESTTAG",
        started_at=now - timedelta(hours=2),
        meter_start_wh=0,
        meter_stop_wh=7500,
        status="completed",
        stopped_at=now - timedelta(hours=1),
    )
    org = charger.property.organization
    mine = Payment.objects.create(
        organization=org,
        session=session,
        email="Anna@Example.com",
        currency="EUR",
        amount_held=Decimal("30"),
        amount_captured=Decimal("12.5"),
        reference="pi_anna",
        status="captured",
        card_last4="4242",
    )
    # Same last four, another day and amount: not the one the customer means.
    other = Payment.objects.create(
        organization=org,
        email="bob@example.com",
        currency="EUR",
        amount_held=Decimal("30"),
        amount_captured=Decimal("3"),
        reference="pi_bob",
        status="captured",
        card_last4="4242",
    )
    Payment.objects.filter(pk=other.pk).update(created_at=now - timedelta(days=10))
    Ticket.objects.create(email="anna@example.com", message="charged twice", station_id="HB-7")
    return charger, session, mine, other


def test_the_search_box_reads_each_word_for_what_it_can_be():
    query = parse("  4242   2026-11-20 12,50 anna@example.com #10233 HB-7 ")
    assert (query.last4, query.day, query.amount) == ("4242", date(2026, 11, 20), Decimal("12.50"))
    assert query.emails == ("anna@example.com",) and 10233 in query.numbers
    assert "HB-7" in query.words and not parse("   ").words
    assert parse("2026-02-30").day is None  # no such day: not a date
    assert len(parse("x" * 5000).text) == 200


def test_admin_opens_on_the_search_with_every_table_one_click_away(agent):
    page = agent.get("/admin/").content.decode()
    assert 'id="support-q"' in page and "Find a customer or a charger" in page
    assert "<details" in page and "All tables" in page and "/admin/chargers/charger/" in page
    # The admin shows UTC (the portal follows the viewer's zone): each page says so.
    assert "Times in UTC" in page
    assert "Times in UTC" in agent.get("/admin/chargers/chargingsession/").content.decode()


def test_the_cards_last_four_and_the_amount_find_the_one_payment(agent, customer):
    _, session, mine, other = customer
    page = agent.get("/admin/find/", {"q": "4242 12.50"}).content.decode()
    assert f"payment {mine.pk}<" in page and f"payment {other.pk}<" not in page
    assert "EUR 12.50" in page and "EUR 12.5000" not in page  # the currency's own decimals
    assert f"transaction {session.transaction_id}" in page  # the session it paid
    day = timezone.now().date().isoformat()
    page = agent.get("/admin/find/", {"q": f"4242 {day}"}).content.decode()
    assert f"payment {mine.pk}<" in page and f"payment {other.pk}<" not in page
    assert "UTC" in page  # times say their zone


def test_an_email_finds_payments_tickets_and_sessions_whatever_its_case(agent, customer):
    _, session, mine, _ = customer
    page = agent.get("/admin/find/", {"q": "ANNA@example.com"}).content.decode()
    assert f"payment {mine.pk}<" in page and "charged twice" not in page
    assert "Tickets" in page and f"session {session.pk}," in page


def test_a_station_id_shows_the_chargers_state_and_where_to_go_next(agent, customer):
    charger, session, _, _ = customer
    page = agent.get("/admin/find/", {"q": "hb-7"}).content.decode()
    assert "HB-7" in page and "port 1 Faulted (GroundFailure)" in page and "offline" in page
    assert f"/chargers/{charger.station_id}/logs/" in page
    assert f"session {session.pk}," in page


def test_nothing_found_says_what_to_try_and_the_search_is_for_staff_only(agent, client, customer):
    page = agent.get("/admin/find/", {"q": "NOPE-1"}).content.decode()
    assert "Nothing matches" in page
    client.logout()
    client.force_login(UserFactory(username="host@example.com"))
    assert client.get("/admin/find/", {"q": "4242"}).status_code == 302  # to the admin login


def test_the_chargers_admin_page_links_to_its_logs_sessions_and_portal_view(agent, customer):
    charger, _, _, _ = customer
    page = agent.get(f"/admin/chargers/charger/{charger.pk}/change/").content.decode()
    for path in ("logs/", "sessions/", ""):
        assert f'href="/chargers/{charger.station_id}/{path}"' in page


def test_results_are_named_as_the_customer_knows_them_not_by_internal_numbers(agent, customer):
    _, session, mine, _ = customer
    page = agent.get("/admin/find/", {"q": "anna@example.com"}).content.decode()
    titles = re.findall(r"<strong>(.*?)</strong>", page)
    assert "HB-7 · connector 1" in titles and "EUR 12.50 · card ending 4242" in titles
    assert not [t for t in titles if re.search(r"\b(Session|Payment|transaction) \d", t)]


def test_an_agent_sees_only_the_kinds_of_records_their_admin_role_may_view(client, customer):
    _, session, mine, _ = customer
    agent = UserFactory(username="tier1@example.com", is_staff=True)
    agent.user_permissions.add(
        Permission.objects.get(codename="view_chargingsession"),
        Permission.objects.get(codename="view_charger"),
    )
    client.force_login(agent)
    page = client.get("/admin/find/", {"q": "anna@example.com hb-7"}).content.decode()
    assert f"session {session.pk}," in page and "port 1 Faulted" in page
    assert f"payment {mine.pk}<" not in page and "card ending" not in page
    assert "<h2>Tickets</h2>" not in page and "<h2>People</h2>" not in page


def test_money_in_admin_has_the_currencys_own_decimals(agent, customer):
    _, _, mine, _ = customer
    refund = Refund.objects.create(
        payment=mine, amount=Decimal("1"), reason="twice", source="support", idempotency_key="r1"
    )
    yen = Payment.objects.create(
        organization=mine.organization,
        currency="JPY",
        amount_held=Decimal("500"),
        amount_captured=Decimal("500"),
        reference="pi_yen",
        status="captured",
    )
    listing = agent.get("/admin/billing/payment/").content.decode()
    assert "12.50 EUR" in listing and "500 JPY" in listing and "12.5000" not in listing
    change = agent.get(f"/admin/billing/payment/{yen.pk}/change/").content.decode()
    assert "500 JPY" in change and "500.0000" not in change
    refunds = agent.get("/admin/billing/refund/").content.decode()
    assert "1.00 EUR" in refunds and "1.0000" not in refunds
    assert str(refund) == "Refund 1.00 EUR of pi_anna"


def test_a_payments_admin_page_is_headed_by_what_the_customer_knows(agent, customer):
    _, _, mine, _ = customer
    page = agent.get(f"/admin/billing/payment/{mine.pk}/change/").content.decode()
    heading = page.split("<h2>", 1)[1].split("</h2>", 1)[0]
    assert heading.startswith("Payment of 12.50 EUR · card ending 4242 · ")
    assert heading.endswith("UTC (charged)") and "pi_anna" not in heading


def test_an_editable_admin_shows_its_read_only_amounts_in_the_currencys_decimals(agent, customer):
    from billing.models import Subscription, SubscriptionInvoice, SubscriptionPlan

    charger, _, _, _ = customer
    plan = SubscriptionPlan.objects.create(
        property=charger.property, name="Resident", monthly_fee=Decimal("25")
    )
    subscription = Subscription.objects.create(
        plan=plan, email="anna@example.com", started_at=timezone.now()
    )
    invoice = SubscriptionInvoice.objects.create(
        subscription=subscription,
        period_start=timezone.now(),
        period_end=timezone.now() + timedelta(days=30),
        amount=Decimal("25"),
        currency="EUR",
    )
    page = agent.get(f"/admin/billing/subscriptioninvoice/{invoice.pk}/change/").content.decode()
    assert "25.00 EUR" in page and "25.0000" not in page
    assert 'name="amount"' not in page  # still read-only: shown, never edited
