"""Sessions page and CSV: each session's cost, duration and payer (issue 51 item 3), read in a
constant number of queries whatever the number of rows."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from authorization.models import Token
from billing.models import Payment, Payout, Rate, SessionCharge
from billing.services import session_cost
from chargers.models import ChargingSession, MeterValue
from chargers.sessions.payer import Payer, PayerFacts, payer_of
from guest.models import GuestSession
from roaming.models import Partner, TerminalPayment
from tests.factories import OrganizationFactory, TokenFactory

pytestmark = pytest.mark.django_db

OLD_HEADER = [
    "transaction_id",
    "station_id",
    "location",
    "connector_id",
    "id_tag",
    "token_label",
    "status",
    "started_at",
    "stopped_at",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
    "stop_reason",
    "time_zone",
]


def _session(site, n: int, token, minutes: int = 30) -> ChargingSession:
    start = site.session.started_at - timedelta(hours=n + 1)
    return ChargingSession.objects.create(
        charger=site.charger,
        connector_id=1,
        transaction_id=700000 + n,
        id_tag=token.uid if token else f"OFFLINE{n}",
        token=token,
        started_at=start,
        stopped_at=start + timedelta(minutes=minutes),
        meter_start_wh=0,
        meter_stop_wh=1000 * n,
        status="completed",
    )


def _charge(session, total: str, currency: str = "EUR") -> None:
    SessionCharge.objects.create(
        session=session,
        organization=session.charger.property.organization,
        currency=currency,
        subtotal=Decimal(total),
        tax=Decimal(0),
        total=Decimal(total),
        started_at=session.started_at,
    )


def _guest(site, n: int, label: str) -> ChargingSession:
    token = TokenFactory(uid=f"GUEST{n}", organization=site.org, type=Token.Type.GUEST, label=label)
    session = _session(site, n, token)
    GuestSession.objects.create(
        charger=site.charger,
        connector_id=1,
        email=f"g{n}@example.com",
        state=GuestSession.State.FINISHED,
        token=token,
        id_tag=token.uid,
        charging_session=session,
        payment_id=n,
        currency="EUR",
    )
    return session


def _terminal(site, n: int) -> ChargingSession:
    partner = Partner.objects.create(
        organization=site.org, name="Terminals", token_a_hash=f"hash-{n}", msp=site.msp
    )
    card = TokenFactory(uid=f"TERM{n}", organization=None, msp=site.msp, type=Token.Type.OTHER)
    session = _session(site, n, card)
    TerminalPayment.objects.create(
        organization=site.org,
        partner=partner,
        authorization_reference=f"REF-{n}",
        token=card,
        token_data={"uid": "PTP-CARD"},
        charger=site.charger,
        connector_id=1,
        session=session,
    )
    return session


@pytest.fixture
def rows(site):
    """One session of each payer, by transaction id: (cost, currency, duration_s, payer)."""
    _charge(site.session, "3.8700")  # own card, 50 min
    guest = _guest(site, 1, Token.GUEST_SESSION_LABEL)
    _charge(guest, "4.5000")
    driver = _guest(site, 2, Token.DRIVER_SESSION_LABEL)
    _charge(driver, "12.0500")
    roaming = _session(site, 3, site.msp_token, minutes=90)
    _charge(roaming, "500.0000", "JPY")
    other_org = TokenFactory(uid="VISITOR", organization=OrganizationFactory())
    _session(site, 4, other_org)  # a card of another organization; not priced
    terminal = _terminal(site, 5)
    _charge(terminal, "7.2000")
    _session(site, 6, None, minutes=0)
    return {
        site.session.transaction_id: ("3.87", "EUR", "3000", "Your card"),
        guest.transaction_id: ("4.50", "EUR", "1800", "Guest card"),
        driver.transaction_id: ("12.05", "EUR", "1800", "Driver account"),
        roaming.transaction_id: ("500", "JPY", "5400", "Roaming partner"),
        700004: ("", "", "1800", "Roaming partner"),
        terminal.transaction_id: ("7.20", "EUR", "1800", "Payment terminal"),
        700006: ("", "", "0", "Unknown card"),
    }


def _csv(client) -> list[list[str]]:
    response = client.get(reverse("chargers:session-export"))
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_appends_cost_currency_duration_and_payer(client, site, rows):
    client.force_login(site.viewer)
    table = _csv(client)
    # The existing columns keep their order: readers of the old file keep working.
    assert table[0] == [*OLD_HEADER, "cost", "currency", "duration_s", "payer"]
    got = {int(r[0]): tuple(r[14:]) for r in table[1:]}
    assert got == rows


def test_list_shows_cost_duration_and_payer(client, site, rows):
    client.force_login(site.viewer)
    response = client.get(reverse("chargers:session-list"))
    shown = {s.transaction_id: s for s in response.context["page"].object_list}
    for tx, (cost, currency, _seconds, payer) in rows.items():
        assert shown[tx].payer_text == payer
        assert (str(shown[tx].cost) if shown[tx].cost is not None else "") == cost
        assert shown[tx].cost_currency == currency
    body = response.content.decode()
    assert "3.87 EUR" in body and "500 JPY" in body and "12.05 EUR" in body
    assert "Driver account" in body and "Payment terminal" in body and "Guest card" in body
    assert shown[site.session.transaction_id].duration_text == "50 min"
    assert shown[700004].duration_text == "30 min"


def _add_sessions(site, first: int, count: int) -> None:
    for n in range(first, first + count):
        guest = _guest(site, 100 + n, Token.GUEST_SESSION_LABEL)
        _charge(guest, "1.00")
        _charge(_session(site, 200 + n, site.msp_token), "2.00")


def _queries(client, path_fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        path_fn(client)
    return len(ctx.captured_queries)


def test_page_and_csv_query_counts_do_not_grow_with_rows(client, site):
    client.force_login(site.viewer)
    page = reverse("chargers:session-list")

    def list_page(c):
        assert c.get(page).status_code == 200

    _add_sessions(site, 0, 1)
    few = (_queries(client, list_page), _queries(client, _csv))
    _add_sessions(site, 1, 10)
    many = (_queries(client, list_page), _queries(client, _csv))
    assert many == few


@pytest.mark.parametrize(
    ("facts", "payer"),
    [
        (PayerFacts(has_token=True, terminal_payment=True, msp=True), Payer.TERMINAL),
        (PayerFacts(has_token=True, guest_token=True, driver_token=True), Payer.DRIVER),
        (PayerFacts(has_token=True, guest_session=True, guest_token=True), Payer.GUEST),
        (PayerFacts(has_token=False, guest_session=True), Payer.GUEST),
        (PayerFacts(has_token=True, guest_token=True, reservation=True), Payer.STAY),
        (PayerFacts(has_token=True, msp=True), Payer.ROAMING),
        (
            PayerFacts(has_token=True, token_organization_id=2, charger_organization_id=1),
            Payer.ROAMING,
        ),
        (PayerFacts(has_token=True, token_organization_id=1, charger_organization_id=1), Payer.OWN),
        (PayerFacts(has_token=False), Payer.UNKNOWN),
    ],
)
def test_payer_of(facts, payer):
    assert payer_of(facts) == payer


def _price(site) -> None:
    Rate.objects.create(
        property=site.prop,
        valid_from=site.session.started_at - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.50"),
        tax_percent=Decimal("0"),
    )


def _running(site, n: int) -> ChargingSession:
    """A session still charging: 2 kWh so far by its last meter reading."""
    session = ChargingSession.objects.create(
        charger=site.charger,
        connector_id=2,
        transaction_id=800000 + n,
        id_tag=site.token.uid,
        token=site.token,
        started_at=site.session.started_at - timedelta(minutes=n + 1),
        meter_start_wh=10000,
        status="active",
    )
    MeterValue.objects.create(
        charger=site.charger,
        session=session,
        connector_id=2,
        timestamp=session.started_at + timedelta(minutes=20),
        unit="Wh",
        value=Decimal(12000),
    )
    return session


def test_a_charging_session_shows_its_cost_so_far_on_the_page_csv_and_api(client, site):
    _price(site)
    running = _running(site, 0)
    # The receipt's function, priced now: 1.00 + 2 kWh x 0.50 = 2.00 EUR so far.
    assert session_cost(running).total == Decimal("2.00")
    client.force_login(site.viewer)
    response = client.get(reverse("chargers:session-list"))
    row = next(s for s in response.context["page"].object_list if s.pk == running.pk)
    assert (row.cost, row.cost_currency, row.cost_final) == (Decimal("2.00"), "EUR", False)
    assert "so far" in response.content.decode()
    table = {int(r[0]): r[14:] for r in _csv(client)[1:]}
    assert table[running.transaction_id][:2] == ["2.00", "EUR"]
    assert table[running.transaction_id][3] == "Your card"
    api = APIClient()
    api.force_authenticate(site.viewer)
    listed = {r["id"]: r for r in api.get("/api/v1/sessions/").json()["results"]}
    assert listed[running.pk]["cost"]["total"] == "2.00"
    assert listed[running.pk]["payer"] == "own" and listed[running.pk]["payer_text"] == "Your card"
    assert listed[running.pk]["duration_s"] >= 60 * 60
    assert listed[site.session.pk]["duration_s"] == 50 * 60


def test_page_csv_and_api_query_counts_do_not_grow_with_charging_rows(
    client, site, django_assert_max_num_queries
):
    """Sessions still charging are priced in one batch per page (one rate query), so the page,
    the CSV and the API cost the same number of queries for 1 or 20 of them."""
    _price(site)
    _running(site, 0)
    client.force_login(site.viewer)
    api = APIClient()
    api.force_authenticate(site.viewer)
    page = reverse("chargers:session-list")

    def run() -> list[int]:
        counts = []
        for fetch in (
            lambda: client.get(page),
            lambda: _csv(client),
            lambda: api.get("/api/v1/sessions/"),
        ):
            with CaptureQueriesContext(connection) as ctx:
                fetch()
            counts.append(len(ctx.captured_queries))
            rate_reads = [q for q in ctx.captured_queries if 'FROM "billing_rate"' in q["sql"]]
            assert len(rate_reads) <= 1, rate_reads
        return counts

    few = run()
    for n in range(1, 20):
        _running(site, n)
    for fetch, most in zip(
        (
            lambda: client.get(page),
            lambda: _csv(client),
            lambda: api.get("/api/v1/sessions/"),
        ),
        few,
        strict=True,
    ):
        with django_assert_max_num_queries(most):
            fetch()


def test_session_page_shows_who_paid_and_the_cost(client, site, rows):
    client.force_login(site.viewer)
    driver = ChargingSession.objects.get(transaction_id=700002)
    body = client.get(reverse("chargers:session-detail", args=[driver.pk])).content.decode()
    assert "<dt>Paid by</dt><dd>Driver account</dd>" in body
    assert "<strong>12.05 EUR</strong>" in body


def _payment(session, currency: str = "EUR", captured: str = "12.05") -> Payment:
    return Payment.objects.create(
        organization=session.charger.property.organization,
        session=session,
        currency=currency,
        amount_held=Decimal(captured),
        amount_captured=Decimal(captured),
        reference=f"pay-{session.pk}",
        status=Payment.Status.CAPTURED,
    )


def test_a_driver_payment_is_refunded_as_a_driver_payment_not_a_guests(client, site, rows):
    client.force_login(site.owner)
    driver = _payment(ChargingSession.objects.get(transaction_id=700002))
    guest = _payment(ChargingSession.objects.get(transaction_id=700001), captured="4.50")
    body = client.get(reverse("billing:payment-refund", args=[driver.pk])).content.decode()
    assert "<h1>Refund a driver payment</h1>" in body and "guest" not in body.lower()
    assert '<dd data-field="payer">Driver account</dd>' in body
    body = client.get(reverse("billing:payment-refund", args=[guest.pk])).content.decode()
    assert "<h1>Refund a guest payment</h1>" in body
    listed = client.get(reverse("billing:payout-list")).content.decode()
    assert f'data-payment="{driver.pk}"' in listed and "Driver account" in listed


def test_payout_pages_show_amounts_in_the_currencys_own_decimals(client, site):
    client.force_login(site.owner)
    payout = Payout.objects.create(
        organization=site.org,
        reference="PO-JPY-1",
        currency="JPY",
        period_start=site.session.started_at,
        period_end=site.session.started_at + timedelta(days=1),
        gross=Decimal("1000.0000"),
        processing_fees=Decimal("30.0000"),
        platform_fees=Decimal("20.0000"),
        refunds=Decimal("0.0000"),
        net=Decimal("950.0000"),
    )
    for path in (
        reverse("billing:payout-list"),
        reverse("billing:payout-detail", args=[payout.pk]),
    ):
        body = client.get(path).content.decode()
        assert "−30<" in body and "−20<" in body, path
        assert "30.00" not in body and "1000.0000" not in body, path


def test_the_cost_page_shows_a_refund_in_the_currencys_own_decimals(client, site, rows):
    from billing.models import Refund

    client.force_login(site.owner)
    roaming = ChargingSession.objects.get(transaction_id=700003)
    payment = _payment(roaming, currency="JPY", captured="500")
    Refund.objects.create(
        payment=payment,
        amount=Decimal("100"),
        reason="slow",
        source="host",
        idempotency_key="r-jpy",
    )
    body = client.get(reverse("billing:session-cost", args=[roaming.pk])).content.decode()
    assert "Refund 100 JPY on" in body and "100.00" not in body and "500.0000" not in body


def test_payouts_speak_of_what_guests_and_drivers_paid(client, site):
    client.force_login(site.owner)
    body = client.get(reverse("billing:payout-list")).content.decode()
    assert "what guests and drivers paid" in body and "guest charges" not in body
