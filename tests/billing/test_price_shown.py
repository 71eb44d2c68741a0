"""Issue 56 item 5: the price shown before a start is the price stored with the session and the
price billed; a start nobody was shown a price for gets the price in force on our clock, never
the charger's (docs/billing.md, "Which price a session is billed with")."""

import re
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.utils import timezone

from backoffice.templatetags.when import when
from billing.models import Payment, PriceShown, Rate, SessionCharge
from billing.price_shown import price_at_start
from billing.services import session_cost, session_price
from chargers.models import ChargingSession
from guest import services as guest_services
from guest.models import GuestSession
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    PropertyFactory,
    TokenFactory,
    UserFactory,
)
from tests.guest.conftest import make_online
from tests.guest.test_start_flow import APPROVE, FakeCharger
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


def _iso(when) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def site(db):
    return PropertyFactory(name="Quay", currency="EUR", timezone="Europe/Amsterdam")


@pytest.fixture
def prices(site):
    """0.30 / kWh until half an hour ago, 0.50 / kWh since: a charger whose clock is an hour
    behind starts "in" the old price."""
    now = timezone.now()
    old = Rate.objects.create(
        property=site,
        valid_from=now - timedelta(days=2),
        valid_until=now - timedelta(minutes=30),
        energy_price_per_kwh=Decimal("0.30"),
        tax_percent=Decimal("21"),
        prices_include_tax=True,
    )
    new = Rate.objects.create(
        property=site,
        valid_from=now - timedelta(minutes=30),
        energy_price_per_kwh=Decimal("0.50"),
        tax_percent=Decimal("21"),
        prices_include_tax=True,
    )
    return old, new


async def test_a_card_start_from_a_charger_an_hour_behind_is_billed_at_our_clocks_price(
    site, prices
):
    _old, new = prices
    charger = await sync_to_async(ChargerFactory)(property=site, station_id="PV-CLOCK-1")
    await sync_to_async(TokenFactory)(uid="PVCARD01", organization=site.organization)
    client = OcppTestClient(charger.station_id)
    ok, _ = await client.connect()
    assert ok
    behind = timezone.now() - timedelta(hours=1)
    try:
        await client.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        started = await client.result(
            "StartTransaction",
            {"connectorId": 1, "idTag": "PVCARD01", "meterStart": 0, "timestamp": _iso(behind)},
        )
        await client.result(
            "StopTransaction",
            {
                "transactionId": started["transactionId"],
                "meterStop": 10_000,
                "timestamp": _iso(behind + timedelta(minutes=40)),
            },
        )
    finally:
        await client.close()

    session = await ChargingSession.objects.select_related("charger__property").aget(
        charger=charger
    )
    version = await PriceShown.objects.aget(session=session)
    assert version.source == PriceShown.Source.START
    assert version.rate_id == new.pk and version.terms["energy_price_per_kwh"] == "0.5000"
    charge = await sync_to_async(session_price)(session_id=session.pk)
    # 10 kWh x 0.50, tax included: the price in force when the start reached us, not 3.00.
    assert charge.total == Decimal("5.00") and charge.rate_id == new.pk
    assert (await sync_to_async(session_cost)(session)).total == Decimal("5.00")


@pytest.fixture
def guest_charger(site):
    return make_online(ChargerFactory(property=site, station_id="PV-GUEST-1"))


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(guest_services, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return fake


def _shown_version(client, charger) -> str:
    page = client.get(f"/s/{charger.station_id}").content.decode()
    assert "0.50 / kWh" in page  # the price the guest sees
    return re.search(r'name="price_version" value="([0-9a-f]+)"', page).group(1)


def _guest_start(charger, version: str) -> GuestSession:
    return guest_services.guest_start(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        payment_method=APPROVE,
        site_url="https://charge.example",
        price_version=version,
    )


def _charger_starts(gs: GuestSession, *, clock_off: timedelta) -> ChargingSession:
    """The charger's StartTransaction for the guest's idTag, stamped by a clock `clock_off` out."""
    return ChargingSession.objects.create(
        charger=gs.charger,
        connector_id=gs.connector_id,
        transaction_id=5151,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=timezone.now() + clock_off,
        meter_start_wh=0,
    )


@pytest.mark.parametrize("start_arrives_first", [False, True])
def test_the_price_shown_to_a_guest_is_stored_and_billed_whatever_happens_after(
    client, guest_charger, prices, fake_charger, start_arrives_first
):
    _old, new = prices
    gs = _guest_start(guest_charger, _shown_version(client, guest_charger))
    shown = PriceShown.objects.get(reference=f"guest:{gs.pk}")
    assert shown.source == PriceShown.Source.GUEST and shown.session_id is None
    assert shown.terms["energy_price_per_kwh"] == "0.5000"

    session = _charger_starts(gs, clock_off=-timedelta(hours=1))
    if start_arrives_first:  # billing's receiver ran before guest's: the shown price replaces it
        price_at_start(session_id=session.pk)
    guest_services.guest_session_link(session_id=session.pk)
    price_at_start(session_id=session.pk)  # and after it: nothing changes
    assert list(PriceShown.objects.filter(session=session).values_list("pk", flat=True)) == [
        shown.pk
    ]
    # The host edits the price in force during the session: the guest keeps what they agreed to.
    Rate.objects.filter(pk=new.pk).update(energy_price_per_kwh=Decimal("0.90"))

    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED,
        stopped_at=session.started_at + timedelta(minutes=50),
        meter_stop_wh=10_000,
    )
    guest_services.guest_session_finish(session_id=session.pk)
    charge = SessionCharge.objects.get(session=session)
    assert charge.total == Decimal("5.00")  # shown == stored == billed: 10 kWh x 0.50
    assert Payment.objects.get(pk=gs.payment_id).amount_captured == Decimal("5.00")

    receipt = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert 'data-price-source="guest"' in receipt
    assert "Energy EUR 0.50 / kWh" in receipt and "Tax 21 %, included in prices" in receipt
    # When the guest agreed, in the location's zone as every other time on these pages (a guest
    # page has no viewer zone: the bare date filter would print UTC).
    agreed = when(shown.shown_at, "Europe/Amsterdam")
    assert agreed.endswith(("CET", "CEST")) and f"agreed to at {agreed}" in receipt
    live = client.get(f"/s/session/{gs.key}/").content.decode()
    assert "Energy EUR 0.50 / kWh" in live and f"agreed to at {agreed}" in live
    assert f"Price billed: the price shown to you at {agreed}" in mail.outbox[-1].body
    # The host's cost page says the same: the price shown to the guest, kept with the session.
    host = UserFactory()
    MembershipFactory(user=host, organization=guest_charger.property.organization, role="owner")
    client.force_login(host)
    cost_page = client.get(f"/billing/sessions/{session.pk}/cost/").content.decode()
    assert 'data-price-source="guest"' in cost_page
    assert "The price shown on the guest page" in cost_page


def test_a_start_whose_price_changed_since_the_page_is_refused_before_any_hold(
    client, guest_charger, prices, fake_charger
):
    _old, new = prices
    version = _shown_version(client, guest_charger)
    Rate.objects.filter(pk=new.pk).update(energy_price_per_kwh=Decimal("0.55"))
    with pytest.raises(guest_services.StartRefused) as refused:
        _guest_start(guest_charger, version)
    assert refused.value.code == "price_changed"
    assert not Payment.objects.exists() and not PriceShown.objects.exists()
    assert fake_charger.calls == []


def test_the_start_form_carries_the_version_and_a_stale_one_is_answered_409(
    client, guest_charger, prices, fake_charger
):
    _old, new = prices
    version = _shown_version(client, guest_charger)
    Rate.objects.filter(pk=new.pk).update(energy_price_per_kwh=Decimal("0.55"))
    response = client.post(
        f"/s/{guest_charger.station_id}/start/",
        {"connector": 1, "email": "g@example.com", "agree": "on", "price_version": version},
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "The price changed since this page was opened" in page and "0.55 / kWh" in page
    assert not Payment.objects.exists()


def test_a_deleted_rate_leaves_the_stored_price_billable(site, prices):
    _old, new = prices
    charger = ChargerFactory(property=site, station_id="PV-DEL-1")
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=777,
        id_tag="X",
        started_at=timezone.now() - timedelta(hours=1),
        stopped_at=timezone.now(),
        status=ChargingSession.Status.COMPLETED,
        meter_start_wh=0,
        meter_stop_wh=2_000,
    )
    price_at_start(session_id=session.pk)
    new.delete()
    charge = session_price(session_id=session.pk)
    assert charge.total == Decimal("1.00") and charge.rate_id is None  # 2 kWh x 0.50


def test_support_sees_each_sessions_price_version_in_admin(admin_client, site, prices):
    charger = ChargerFactory(property=site, station_id="PV-ADM-1")
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=778,
        id_tag="X",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    price_at_start(session_id=session.pk)
    page = admin_client.get("/admin/billing/priceshown/").content.decode()
    assert "PV-ADM-1" in page and "In force when we received the start" in page


def test_the_sessions_api_says_which_price_version_each_session_is_billed_with(
    site, prices, django_assert_max_num_queries
):
    from rest_framework.test import APIClient

    _old, new = prices
    charger = ChargerFactory(property=site, station_id="PV-API-1")
    host = UserFactory()
    MembershipFactory(user=host, organization=site.organization, role="viewer")
    outsider = UserFactory()
    MembershipFactory(user=outsider, organization=PropertyFactory().organization, role="owner")
    sessions = []
    for n in range(3):
        session = ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=900 + n,
            id_tag="X",
            started_at=timezone.now() - timedelta(hours=2),  # the old price's time, charger clock
            meter_start_wh=0,
        )
        price_at_start(session_id=session.pk)
        sessions.append(session)
    legacy = ChargingSession.objects.create(
        charger=charger, connector_id=2, transaction_id=999, id_tag="X", started_at=timezone.now()
    )
    api = APIClient()
    api.force_authenticate(host)
    one = api.get(f"/api/v1/sessions/{sessions[0].pk}/").json()
    assert one["price_version"]["source"] == "start" and one["price_version"]["rate"] == new.pk
    assert api.get(f"/api/v1/sessions/{legacy.pk}/").json()["price_version"] is None
    # A page of sessions reads the versions in its own query, not one more per session.
    with django_assert_max_num_queries(40) as few:
        api.get("/api/v1/sessions/?page_size=2")
    with django_assert_max_num_queries(80) as more:
        listed = api.get("/api/v1/sessions/").json()["results"]
    versions = [row["price_version"] and row["price_version"]["rate"] for row in listed]
    assert sorted(versions, key=str) == sorted([new.pk] * 3 + [None], key=str)
    billing_reads = [
        q for q in few.captured_queries + more.captured_queries if "billing_priceshown" in q["sql"]
    ]
    assert all('"chargers_chargingsession"' in q["sql"] for q in billing_reads), billing_reads
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/sessions/{sessions[0].pk}/").status_code == 404
