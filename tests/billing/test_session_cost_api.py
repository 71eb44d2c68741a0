"""The sessions API shows cost lines computed from stored facts; the rates API; late stops,
rate changes and retries priced by the charger's own times."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate, SessionCharge, Subscription, SubscriptionPlan
from billing.services import session_cost, session_price, sessions_price_missing
from chargers.models import ChargingSession, MeterValue, StatusEvent
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=2)


def demo_rate(prop, **kw):
    values = dict(
        property=prop,
        valid_from=T0 - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        idle_fee_cap=Decimal("10.00"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    values.update(kw)
    return Rate.objects.create(**values)


def test_session_api_shows_exact_lines(api_client, host, charger, prop):
    demo_rate(prop)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=77,
        id_tag="04A1B2C3",
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=150),
        meter_start_wh=12000,
        meter_stop_wh=24345,
        status="completed",
    )
    StatusEvent.objects.create(charger=charger, connector_id=1, status="Charging", timestamp=T0)
    StatusEvent.objects.create(
        charger=charger, connector_id=1, status="SuspendedEV", timestamp=T0 + timedelta(minutes=90)
    )
    api_client.force_authenticate(host)
    body = api_client.get(f"/api/v1/sessions/{session.pk}/").json()
    # 12.345 kWh x 0.35 = 4.32075 -> 4.32; idle 60 - 15 = 45 min x 0.10 = 4.50;
    # subtotal 1.00 + 4.32 + 4.50 = 9.82; tax 21% = 2.0622 -> 2.06; total 11.88.
    assert body["cost"] == {
        "currency": "EUR",
        "lines": [
            {
                "kind": "connection_fee",
                "description": "Connection fee (once per session)",
                "quantity": "1",
                "unit": "session",
                "unit_price": "1.00",
                "amount": "1.00",
            },
            {
                "kind": "energy",
                "description": "Energy 12.345 kWh × 0.35 EUR/kWh",
                "quantity": "12.345",
                "unit": "kWh",
                "unit_price": "0.35",
                "amount": "4.32",
            },
            {
                "kind": "idle_fee",
                "description": "Idle fee: plugged in 60 min after charging finished, first 15 min free",
                "quantity": "45",
                "unit": "min",
                "unit_price": "0.10",
                "amount": "4.50",
            },
        ],
        "subtotal": "9.82",
        "tax": "2.06",
        "total": "11.88",
        "tax_percent": "21",
        "prices_include_tax": False,
    }
    listing = api_client.get("/api/v1/sessions/").json()
    assert listing["results"][0]["cost"]["total"] == "11.88"


def test_session_is_priced_with_the_rate_in_force_when_it_started(charger, prop):
    demo_rate(prop, valid_until=T0 + timedelta(minutes=30))
    demo_rate(prop, valid_from=T0 + timedelta(minutes=30), energy_price_per_kwh=Decimal("0.50"))
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=78,
        id_tag="X",
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=60),
        meter_start_wh=0,
        meter_stop_wh=10000,
        status="completed",
    )
    assert session_cost(session).lines[1]["amount"] == Decimal("3.50")


def test_late_stop_is_billed_by_the_chargers_times(charger, prop):
    demo_rate(prop)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=79,
        id_tag="X",
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=60),
        meter_start_wh=0,
        meter_stop_wh=10000,
        status="completed",
        received_stop_at=timezone.now(),  # arrived two days later
    )
    StatusEvent.objects.create(
        charger=charger, connector_id=1, status="Finishing", timestamp=T0 + timedelta(minutes=40)
    )
    cost = session_cost(session)
    # Idle 20 min (not two days): 20 - 15 = 5 min = 0.50.
    assert cost.lines[-1]["amount"] == Decimal("0.50")
    assert sessions_price_missing() == 1
    assert SessionCharge.objects.get(session=session).total == cost.total
    assert sessions_price_missing() == 0


def test_the_sweep_prices_the_others_when_one_session_fails(charger, prop, monkeypatch, caplog):
    """One session whose pricing raises (bad data, a bug) must not leave every later session of
    the sweep unpriced: it is logged and left for the next sweep."""
    from billing.services import sessions as services

    demo_rate(prop)
    broken, fine = [
        ChargingSession.objects.create(
            charger=charger,
            connector_id=1 + i,
            transaction_id=95 + i,
            id_tag="X",
            started_at=T0,
            stopped_at=T0 + timedelta(minutes=60),
            meter_start_wh=0,
            meter_stop_wh=10000,
            status="completed",
            received_stop_at=timezone.now(),
        )
        for i in range(2)
    ]
    cost_and_context = services._cost_and_context

    def failing(session):
        if session.pk == broken.pk:
            raise ValueError("a session the pricing cannot read")
        return cost_and_context(session)

    monkeypatch.setattr(services, "_cost_and_context", failing)
    assert sessions_price_missing() == 1
    assert SessionCharge.objects.filter(session=fine).exists()
    assert not SessionCharge.objects.filter(session=broken).exists()
    assert f"Pricing session {broken.pk} failed" in caplog.text
    monkeypatch.setattr(services, "_cost_and_context", cost_and_context)
    assert sessions_price_missing() == 1  # the next sweep prices it
    assert SessionCharge.objects.filter(session=broken).exists()


def test_failed_attempts_pay_the_connection_fee_once(charger, prop):
    demo_rate(prop, connection_fee_for_zero_energy=True)
    attempts = [
        ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=80 + i,
            id_tag="CARD",
            started_at=T0 + timedelta(minutes=i),
            stopped_at=T0 + timedelta(minutes=i, seconds=30),
            meter_start_wh=500,
            meter_stop_wh=500,
            status="completed",
        )
        for i in range(3)
    ]
    fees = [
        sum(1 for line in session_cost(s).lines if line["kind"] == "connection_fee")
        for s in attempts
    ]
    assert fees == [1, 0, 0]
    # When an attempt then delivers energy, it pays the fee and the failed attempts pay nothing.
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=90,
        id_tag="CARD",
        started_at=T0 + timedelta(minutes=5),
        stopped_at=T0 + timedelta(minutes=50),
        meter_start_wh=500,
        meter_stop_wh=8500,
        status="completed",
    )
    assert (
        sum(1 for line in session_cost(attempts[0]).lines if line["kind"] == "connection_fee") == 0
    )


def test_meter_values_in_kwh_fill_a_missing_stop_reading(charger, prop):
    demo_rate(prop, idle_fee_per_minute=Decimal("0"))
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=91,
        id_tag="X",
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=60),
        meter_start_wh=2000,
        meter_stop_wh=0,
        status="completed",
    )
    for minutes, value in ((20, "4.0"), (40, "0.5"), (60, "1.5")):  # reset after 4.0 kWh
        MeterValue.objects.create(
            charger=charger,
            session=session,
            connector_id=1,
            timestamp=T0 + timedelta(minutes=minutes),
            measurand="Energy.Active.Import.Register",
            unit="kWh",
            value=Decimal(value),
        )
    # 2000 -> 4000 (+2000), reset -> 500 (+500), -> 1500 (+1000), stop 0 (reset, +0) = 3.5 kWh
    assert session_cost(session).energy_wh == 3500


def test_subscription_discount_uses_included_kwh_across_the_month(charger, prop, token):
    demo_rate(prop, idle_fee_per_minute=Decimal("0"))
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Resident", monthly_fee=Decimal("25"), included_kwh=Decimal("15")
    )
    Subscription.objects.create(
        plan=plan, token=token, email="r@example.com", started_at=T0 - timedelta(days=1)
    )
    sessions = [
        ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=92 + i,
            id_tag=token.uid,
            token=token,
            started_at=T0 + timedelta(hours=i),
            stopped_at=T0 + timedelta(hours=i, minutes=50),
            meter_start_wh=0,
            meter_stop_wh=10000,
            status="completed",
        )
        for i in range(2)
    ]
    if sessions[0].started_at.month != sessions[1].started_at.month:
        pytest.skip("sessions straddle a month boundary")
    first = session_price(session_id=sessions[0].pk)
    second = session_price(session_id=sessions[1].pk)
    assert first.lines[-1]["amount"] == "-3.50"  # 10 of 15 kWh included
    assert second.lines[-1]["amount"] == "-1.75"  # the last 5 kWh
    assert session_price(session_id=sessions[1].pk).lines[-1]["amount"] == "-1.75"  # idempotent


def test_rates_api_create_list_patch_and_permissions(api_client, host, charger, prop):
    api_client.force_authenticate(host)
    payload = {
        "property": prop.pk,
        "charger": None,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": None,
        "connection_fee": "1.00",
        "energy_price_per_kwh": "0.35",
        "time_price_per_hour": "0",
        "idle_fee_per_minute": "0.10",
        "idle_grace_minutes": 15,
        "idle_fee_cap": "10.00",
        "tax_percent": "21",
        "processing_fee_percent": "1.4",
        "processing_fee_fixed": "0.25",
    }
    response = api_client.post("/api/v1/rates/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (
        body["energy_price_per_kwh"] == "0.3500"
        and body["currency"] == "EUR"
        and body["charger"] is None
    )
    override = api_client.post(
        "/api/v1/rates/", {**payload, "charger": charger.station_id}, format="json"
    )
    assert override.status_code == 201
    patched = api_client.patch(
        f"/api/v1/rates/{body['id']}/", {"energy_price_per_kwh": "0.40"}, format="json"
    )
    assert patched.json()["energy_price_per_kwh"] == "0.4000"
    bad = api_client.patch(
        f"/api/v1/rates/{body['id']}/", {"valid_until": "2025-01-01T00:00:00Z"}, format="json"
    )
    assert bad.status_code == 400
    assert len(api_client.get(f"/api/v1/rates/?property={prop.pk}").json()["results"]) == 2
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    api_client.force_authenticate(viewer)
    assert (
        api_client.patch(
            f"/api/v1/rates/{body['id']}/", {"tax_percent": "0"}, format="json"
        ).status_code
        == 403
    )
    other = MembershipFactory(role="owner").user
    api_client.force_authenticate(other)
    assert api_client.get(f"/api/v1/rates/{body['id']}/").status_code == 404
    assert api_client.post("/api/v1/rates/", payload, format="json").status_code in (400, 403)


def test_charger_of_another_property_is_refused(api_client, host, prop):
    api_client.force_authenticate(host)
    elsewhere = ChargerFactory()
    response = api_client.post(
        "/api/v1/rates/",
        {
            "property": prop.pk,
            "charger": elsewhere.station_id,
            "valid_from": "2026-01-01T00:00:00Z",
            "energy_price_per_kwh": "0.35",
        },
        format="json",
    )
    assert response.status_code == 400
