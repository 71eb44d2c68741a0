"""What an agent looks up in the admin: payments by card last 4 / station id, chargers by
connection, a session's cost as lines."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Payment, SessionCharge
from chargers.models import ChargingSession
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client):
    client.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def paid_session(db):
    charger = ChargerFactory(property=PropertyFactory(), station_id="HB-PAY")
    now = timezone.now()
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=777,
        id_tag="G",
        started_at=now - timedelta(hours=1),
        meter_start_wh=0,
        meter_stop_wh=8200,
        status="completed",
        stopped_at=now,
    )
    org = charger.property.organization
    Payment.objects.create(
        organization=org,
        session=session,
        email="guest@example.com",
        currency="EUR",
        amount_held=Decimal("50"),
        amount_captured=Decimal("3.87"),
        reference="pi_findme",
        status="captured",
        card_last4="4242",
    )
    Payment.objects.create(
        organization=org,
        email="other@example.com",
        currency="EUR",
        amount_held=Decimal("50"),
        reference="pi_other",
        card_last4="1111",
    )
    SessionCharge.objects.create(
        session=session,
        organization=org,
        currency="EUR",
        subtotal=Decimal("3.20"),
        tax=Decimal("0.67"),
        total=Decimal("3.87"),
        started_at=session.started_at,
        lines=[
            {
                "kind": "energy",
                "description": "Energy 8.200 kWh × 0.39 EUR/kWh",
                "quantity": "8.200",
                "unit": "kWh",
                "unit_price": "0.39",
                "amount": "3.20",
            }
        ],
    )
    return session


def test_payments_are_found_by_card_last4_and_by_station_id(agent_client, paid_session):
    for term in ("4242", "HB-PAY"):
        body = agent_client.get("/admin/billing/payment/", {"q": term}).content.decode()
        assert "pi_findme" in body and "pi_other" not in body


def test_charger_list_filters_online_and_shows_last_seen(agent_client, db):
    ChargerFactory(station_id="ON-1", connection_id="c", last_seen_at=timezone.now())
    ChargerFactory(station_id="OFF-1", last_seen_at=timezone.now() - timedelta(hours=2))
    online = agent_client.get("/admin/chargers/charger/", {"connection": "online"}).content.decode()
    offline = agent_client.get(
        "/admin/chargers/charger/", {"connection": "offline"}
    ).content.decode()
    assert "ON-1" in online and "OFF-1" not in online
    assert "OFF-1" in offline and "ON-1" not in offline
    assert "Last seen at" in online


def test_session_charge_shows_cost_lines_not_json(agent_client, paid_session):
    charge = SessionCharge.objects.get(session=paid_session)
    body = agent_client.get(f"/admin/billing/sessioncharge/{charge.pk}/change/").content.decode()
    assert "<td>Energy 8.200 kWh × 0.39 EUR/kWh</td>" in body and "3.8700 EUR" in body
    assert '"kind": "energy"' not in body
