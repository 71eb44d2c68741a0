"""A page of sessions priced at once (billing.session_costs, issue 51 items 3 and 8): the same
Cost as the receipt's function (services.session_cost) for every kind of session, and a constant
number of queries however many sessions still charge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import Payment, PriceShown, Rate, SessionCharge, Subscription, SubscriptionPlan
from billing.price_shown import price_at_start, terms_of
from billing.selectors import rate_for_charger
from billing.services import session_cost, session_price
from billing.session_costs import rate_in_force, sessions_cost, sessions_price_so_far
from chargers.models import ChargingSession, MeterValue, StatusEvent
from power.models import WaitingPeriod
from tests.factories import ChargerFactory, PropertyFactory, TokenFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REG = "Energy.Active.Import.Register"
POW = "Power.Active.Import"


def _rate(prop, *, charger=None, days_before=1, **prices) -> Rate:
    values = {
        "connection_fee": Decimal("1.00"),
        "energy_price_per_kwh": Decimal("0.35"),
        "time_price_per_hour": Decimal("0.60"),
        "idle_fee_per_minute": Decimal("0.10"),
        "idle_grace_minutes": 5,
        "tax_percent": Decimal("21"),
    }
    values.update(prices)
    return Rate.objects.create(
        property=prop, charger=charger, valid_from=T0 - timedelta(days=days_before), **values
    )


def _session(charger, n: int, *, running: bool, token=None, energy: int | None = 7345):
    start = T0 + timedelta(hours=n)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1 + n % 2,
        transaction_id=5000 + n,
        id_tag=token.uid if token is not None else "04AAAA",
        token=token,
        started_at=start,
        stopped_at=None if running else start + timedelta(minutes=50),
        meter_start_wh=1000,
        meter_stop_wh=None if running or energy is None else 1000 + energy,
        status="active" if running else "completed",
    )
    for minute, wh, w in ((5, 1500, 7200), (20, 3300, 7100), (35, 5400, 300)):
        MeterValue.objects.create(
            session=session,
            charger=charger,
            connector_id=session.connector_id,
            timestamp=start + timedelta(minutes=minute),
            measurand=REG,
            value=Decimal(wh) / 1000,
            unit="kWh",
        )
        MeterValue.objects.create(
            session=session,
            charger=charger,
            connector_id=session.connector_id,
            timestamp=start + timedelta(minutes=minute),
            measurand=POW,
            value=Decimal(w),
            unit="W",
        )
    StatusEvent.objects.create(
        charger=charger,
        connector_id=session.connector_id,
        timestamp=start + timedelta(minutes=30),
        status="SuspendedEV",
    )
    return session


@pytest.fixture
def table(charger, prop):
    """Sessions of every kind the batch must price as the receipt does."""
    other = ChargerFactory(property=prop, station_id="CP-TEST-2")
    _rate(prop)
    _rate(prop, charger=other, energy_price_per_kwh=Decimal("0.49"), days_before=2)
    card = TokenFactory(uid="SUBCARD", organization=prop.organization)
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Resident", included_kwh=Decimal("10"), energy_discount_percent=5
    )
    sub = Subscription.objects.create(plan=plan, token=card, email="r@example.com", started_at=T0)
    made = [
        _session(charger, 0, running=True),
        _session(charger, 1, running=False),  # stopped, not priced yet
        _session(other, 2, running=True),  # the charger's own rate wins
        _session(charger, 3, running=True, token=card),  # a subscriber's card
        _session(charger, 4, running=False, energy=0),  # 0 kWh: its neighbours decide the fee
        _session(charger, 5, running=False, energy=0),  # a retry of the previous one
    ]
    # Another session of the subscriber this month used 4 of its 10 included kWh.
    done = _session(charger, 6, running=False, token=card)
    SessionCharge.objects.create(
        session=done,
        organization=prop.organization,
        subscription=sub,
        currency="EUR",
        subtotal=Decimal("1.00"),
        tax=Decimal(0),
        total=Decimal("1.00"),
        started_at=done.started_at,
        included_kwh_used=Decimal("4"),
        final=True,
    )
    # A guest paying by card whose email holds a plan.
    by_email = _session(charger, 7, running=True)
    Payment.objects.create(
        organization=prop.organization,
        session=by_email,
        currency="EUR",
        amount_held=Decimal("30"),
        reference="pay-sub-email",
        email="R@example.com",
    )
    made.append(by_email)
    waited = _session(charger, 8, running=True)
    WaitingPeriod.objects.create(
        session=waited,
        started_at=waited.started_at + timedelta(minutes=30),
        ended_at=waited.started_at + timedelta(minutes=40),
    )
    made.append(waited)
    # A price version stored at the start: it wins over a rate made since.
    versioned = _session(charger, 9, running=True)
    price_at_start(session_id=versioned.pk)
    made.append(versioned)
    unpriced_site = PropertyFactory(organization=prop.organization)
    made.append(_session(ChargerFactory(property=unpriced_site), 10, running=True))
    _rate(prop, days_before=-9.2 / 24, energy_price_per_kwh=Decimal("0.90"))
    return made


def _read(ids):
    return list(
        ChargingSession.objects.select_related("charger__property")
        .filter(pk__in=ids)
        .order_by("pk")
    )


def test_a_batch_prices_every_kind_of_session_as_the_receipt_does(table):
    batch = sessions_cost(_read([s.pk for s in table]))
    for session in _read([s.pk for s in table]):
        assert batch[session.pk] == session_cost(session), session.transaction_id
    by_tx = {s.transaction_id: batch[s.pk] for s in table}
    # The subscriber's plan applied (by card, and by the guest's payment email), the charger's
    # own rate won, and a location without a price charges nothing.
    assert any(line["kind"] == "subscription_discount" for line in by_tx[5003].lines)
    assert any(line["kind"] == "subscription_discount" for line in by_tx[5007].lines)
    assert "0.49" in str(by_tx[5002].lines)
    assert by_tx[5010].lines == [] and by_tx[5010].total == 0
    assert not by_tx[5000].final and by_tx[5001].final


def test_the_batch_costs_a_constant_number_of_queries(charger, prop, django_assert_max_num_queries):
    _rate(prop)
    first = [_session(charger, n, running=True) for n in range(2)]
    with django_assert_max_num_queries(10) as few:
        sessions_cost(_read([s.pk for s in first]))
    more = first + [_session(charger, n, running=True) for n in range(2, 12)]
    with django_assert_max_num_queries(len(few.captured_queries)):
        costs = sessions_cost(_read([s.pk for s in more]))
    assert all(cost.lines for cost in costs.values())
    # Exactly one rate read for the whole page, however many sessions it prices.
    rate_reads = [q for q in few.captured_queries if 'FROM "billing_rate"' in q["sql"]]
    assert len(rate_reads) == 1


def test_an_empty_page_costs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert sessions_cost([]) == {} and sessions_price_so_far([]) == {}


def test_a_final_stored_charge_is_read_not_priced_again(charger, prop):
    _rate(prop)
    session = _session(charger, 0, running=False)
    session_price(session_id=session.pk)
    SessionCharge.objects.filter(session=session).update(total=Decimal("99.0000"))
    row = ChargingSession.objects.select_related("charger__property", "charge").get(pk=session.pk)
    assert sessions_price_so_far([row])[session.pk] == {
        "total": Decimal("99.0000"),
        "currency": "EUR",
        "final": True,
    }


@pytest.mark.parametrize("hours", [-30, -1, 0, 5, 30, 60])
def test_rate_in_force_chooses_as_the_rate_query_does(charger, prop, hours):
    other = ChargerFactory(property=prop, station_id="CP-TEST-9")
    _rate(prop, days_before=2)
    _rate(prop, days_before=1)
    Rate.objects.create(
        property=prop,
        charger=charger,
        valid_from=T0,
        valid_until=T0 + timedelta(days=1),
        energy_price_per_kwh=Decimal("0.20"),
    )
    _rate(prop, charger=other, days_before=-2)
    rates = list(Rate.objects.filter(property=prop))
    for c in (charger, other):
        at = T0 + timedelta(hours=hours)
        assert rate_in_force(rates, charger_id=c.pk, at=at) == rate_for_charger(c, at)


def test_a_price_version_is_read_with_the_session_when_selected(charger, prop):
    _rate(prop)
    session = _session(charger, 0, running=True)
    price_at_start(session_id=session.pk)
    PriceShown.objects.filter(session=session).update(
        terms={**terms_of(Rate.objects.get()), "energy_price_per_kwh": "1.00"}
    )
    row = ChargingSession.objects.select_related("charger__property", "price_shown__rate").get(
        pk=session.pk
    )
    cost = sessions_cost([row])[session.pk]
    assert cost == session_cost(session) and "1.00" in str(cost.lines)


def test_a_long_list_is_priced_in_slices_with_the_same_result(table, monkeypatch):
    """A CSV chunk (2,000 rows) is read in slices of PRICE_BATCH: the same costs."""
    import billing.session_costs as session_costs

    whole = sessions_cost(_read([s.pk for s in table]))
    monkeypatch.setattr(session_costs, "PRICE_BATCH", 3)
    assert sessions_cost(_read([s.pk for s in table])) == whole
