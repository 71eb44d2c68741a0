"""Issue 46 item 4: a location's prices include tax or have it added on top, and every surface
says and computes the same, to the cent: the host's price pages, the guest page, the receipt,
the statement, the CDR and the OCPI tariffs (2.2.1 excl. VAT with `vat`, 2.3.0 `tax_included`)."""

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from django.utils import timezone

from billing import services, statements
from billing.models import Rate, StatementJob
from billing.pricing import RateTerms, SessionFacts, session_cost
from billing.taxes import split, split_money, split_unit_price
from chargers.models import ChargingSession
from guest.models import GuestSession
from roaming import sessions, versions
from roaming.ocpi import V221, V230
from roaming.selectors import our_party, rate_facts
from tests.factories import TokenFactory
from tests.guest.conftest import make_online

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# 1.00 start fee + 12.345 kWh x 0.35 (4.32075 -> 4.32) = 5.32 in the rate's own terms.
# Prices include 21 %: net 5.32 x 100/121 = 4.39669.. -> 4.40, tax 0.92, total 5.32.
# Tax on top: tax 5.32 x 0.21 = 1.1172 -> 1.12, total 6.44.
EXPECTED = {
    True: {"net": D("4.40"), "tax": D("0.92"), "gross": D("5.32")},
    False: {"net": D("5.32"), "tax": D("1.12"), "gross": D("6.44")},
}


# -- the one split ------------------------------------------------------------------------------


def test_included_split_keeps_the_gross_and_rounds_the_net_half_up_once():
    parts = split_money(D("1.01"), D("21"), "EUR", included=True)
    # 1.01 x 100 / 121 = 0.8347.. -> 0.83; the tax is the difference, so they sum exactly.
    assert (parts.net, parts.tax, parts.gross) == (D("0.83"), D("0.18"), D("1.01"))


def test_on_top_split_keeps_the_net_and_rounds_the_tax_half_up_once():
    parts = split_money(D("1.01"), D("21"), "EUR", included=False)
    assert (parts.net, parts.tax, parts.gross) == (D("1.01"), D("0.21"), D("1.22"))


def test_a_half_cent_rounds_up_and_net_plus_tax_is_always_the_gross():
    # 0.05 x 0.10 = 0.005 -> 0.01 (half up, not to even)
    assert split_money(D("0.05"), D("10"), "EUR", included=False).tax == D("0.01")
    for cents in range(0, 2000, 7):
        amount = D(cents) / 100
        for included in (True, False):
            parts = split_money(amount, D("19"), "EUR", included=included)
            assert parts.net + parts.tax == parts.gross
            assert parts.tax >= 0


def test_no_tax_and_zero_decimal_currencies():
    assert split_money(D("3.50"), D("0"), "EUR", included=True).tax == D("0.00")
    yen = split_money(D("1000"), D("10"), "JPY", included=True)
    assert (yen.net, yen.tax, yen.gross) == (D("909"), D("91"), D("1000"))


def test_unit_prices_split_to_four_decimals():
    parts = split_unit_price(D("0.35"), D("21"), included=True)
    assert (parts.net, parts.gross) == (D("0.2893"), D("0.3500"))
    assert split(D("0.35"), D("21"), included=False, places=D("0.0001")).net == D("0.3500")


@pytest.mark.parametrize("included", [True, False])
def test_pricing_gives_net_tax_and_gross_by_the_mode(included):
    terms = RateTerms(
        currency="EUR",
        connection_fee=D("1.00"),
        energy_price_per_kwh=D("0.35"),
        tax_percent=D("21"),
        prices_include_tax=included,
    )
    facts = SessionFacts(
        started_at=T0,
        stopped_at=T0 + timedelta(hours=1),
        meter_start_wh=D("1000"),
        meter_stop_wh=D("13345"),
    )
    cost = session_cost(terms, facts)
    assert [line["amount"] for line in cost.lines] == [D("1.00"), D("4.32")]
    expected = EXPECTED[included]
    assert (cost.subtotal, cost.tax, cost.total) == (
        expected["net"],
        expected["tax"],
        expected["gross"],
    )
    assert cost.prices_include_tax is included


# -- every surface, both modes --------------------------------------------------------------------


def _rate(prop, *, included: bool, valid_from: datetime) -> Rate:
    return Rate.objects.create(
        property=prop,
        valid_from=valid_from,
        connection_fee=D("1.00"),
        energy_price_per_kwh=D("0.35"),
        tax_percent=D("21"),
        prices_include_tax=included,
    )


def _session(charger, *, started_at: datetime, tx: int = 1) -> ChargingSession:
    token = TokenFactory(organization=charger.property.organization)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=tx,
        id_tag=token.uid,
        token=token,
        started_at=started_at,
        stopped_at=started_at + timedelta(hours=1),
        meter_start_wh=1000,
        meter_stop_wh=13345,
        status="completed",
    )


def _receipt(charger, session) -> str:
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=session,
    )
    response = Client().get(f"/s/receipt/{gs.key}/")
    assert response.status_code == 200
    return response.content.decode()


def _statement_row(prop, session) -> dict:
    job = StatementJob.objects.create(
        organization_id=prop.organization_id,
        kind="sessions",
        date_from=date(2000, 1, 1),
        date_to=date(2100, 1, 1),
    )
    job = statements.statement_generate(job_id=job.pk)
    path = statements.statement_path(job)
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["session_id"] == str(session.pk)]
    assert len(rows) == 1
    return rows[0]


def _cdr(session, rate, version: str) -> dict:
    facts = sessions.session_facts(session)
    return versions.of(version).cdr(
        facts,
        cdr_id="CDR1",
        location={},
        rate=rate_facts(rate),
        signed=None,
        party=our_party(),
        created=T0,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("included", [True, False])
def test_every_surface_says_and_computes_the_same(included, host, prop, charger):
    rate = _rate(prop, included=included, valid_from=T0 - timedelta(days=1))
    session = _session(charger, started_at=T0)
    expected = EXPECTED[included]
    net, tax, gross = expected["net"], expected["tax"], expected["gross"]
    mode = "included" if included else "on_top"

    # Host price pages: the location's list and the overview say the mode.
    client = Client()
    client.force_login(host)
    page = client.get(f"/billing/properties/{prop.pk}/rates/").content.decode()
    said = "21 % tax included" if included else "plus 21 % tax"
    assert f'data-tax-mode="{mode}">{said}</td>' in page
    assert "tax included;" not in page  # no blanket claim over every price
    overview = client.get("/billing/prices/").content.decode()
    assert f'data-tax-mode="{mode}">{said}</td>' in overview

    # Guest page: the same words about the same prices.
    make_online(charger)
    guest = Client().get(f"/s/{charger.station_id}/").content.decode()
    assert f'data-tax-mode="{mode}"' in guest
    assert ("Tax, included in prices" in guest) is included
    assert ("Tax, added on top" in guest) is not included

    # Priced snapshot (what statements and payouts read).
    charge = services.session_price(session_id=session.pk)
    assert charge is not None
    assert (charge.subtotal, charge.tax, charge.total) == (net, tax, gross)
    assert charge.prices_include_tax is included

    # The host's page of the session's cost says the same split and which mode applied.
    cost_page = client.get(f"/billing/sessions/{session.pk}/cost/").content.decode()
    assert f'<tr data-tax-mode="{mode}">' in cost_page
    assert f"{gross} EUR" in cost_page and f"{tax} EUR" in cost_page and f"{net} EUR" in cost_page

    # Receipt: the total the guest pays and the tax in it, and which mode applied.
    receipt = _receipt(charger, session)
    assert f'id="total">EUR {gross}</td>' in receipt
    assert f'id="tax">EUR {tax}</td>' in receipt
    assert f'id="net">EUR {net}</td>' in receipt
    assert f'data-tax-mode="{mode}"' in receipt

    # Statement: the same cents and the mode.
    row = _statement_row(prop, session)
    assert (row["subtotal"], row["tax"], row["total"]) == (str(net), str(tax), str(gross))
    assert (row["tax_percent"], row["tax_mode"]) == ("21", mode)

    # CDR 2.2.1: excl. VAT and incl. VAT equal the receipt's; the tariff is excl. VAT with vat.
    cdr = _cdr(session, rate, V221)
    assert cdr["total_cost"] == {"excl_vat": float(net), "incl_vat": float(gross)}
    component = cdr["tariffs"][0]["elements"][0]["price_components"][-1]
    assert component["type"] == "ENERGY" and component["vat"] == 21
    assert component["price"] == (0.2893 if included else 0.35)
    # The per-dimension costs are excl. VAT too.
    assert cdr["total_energy_cost"]["excl_vat"] == (3.57 if included else 4.32)

    # CDR 2.3.0: before_taxes + taxes = the receipt's total; the tariff says tax_included.
    cdr230 = _cdr(session, rate, V230)
    total = cdr230["total_cost"]
    assert D(str(total["before_taxes"])) == net
    assert D(str(total["taxes"][0]["amount"])) == tax
    assert D(str(total["before_taxes"])) + D(str(total["taxes"][0]["amount"])) == gross
    tariff230 = cdr230["tariffs"][0]
    assert tariff230["tax_included"] == ("YES" if included else "NO")
    energy230 = tariff230["elements"][0]["price_components"][-1]
    assert energy230["price"] == 0.35  # as the host states it in both modes


@pytest.mark.django_db
def test_tariff_alt_text_says_the_mode_in_both_versions(prop):
    rate = _rate(prop, included=True, valid_from=T0)
    v221 = versions.of(V221).tariff(rate_facts(rate), party=our_party())
    v230 = versions.of(V230).tariff(rate_facts(rate), party=our_party())
    assert "0.2893 EUR/kWh" in v221["tariff_alt_text"][0]["text"]
    assert "excl. 21% VAT" in v221["tariff_alt_text"][0]["text"]
    assert "0.35 EUR/kWh" in v230["tariff_alt_text"][0]["text"]
    assert "incl. 21% VAT" in v230["tariff_alt_text"][0]["text"]


# -- a change of mode applies to sessions that start after it ------------------------------------


@pytest.mark.django_db
def test_a_change_of_tax_mode_applies_to_sessions_that_start_after_it(prop, charger):
    change = T0
    old = _rate(prop, included=False, valid_from=change - timedelta(days=30))
    old.valid_until = change
    old.save()
    _rate(prop, included=True, valid_from=change)
    before = _session(charger, started_at=change - timedelta(minutes=30), tx=1)
    after = _session(charger, started_at=change + timedelta(minutes=5), tx=2)

    cost_before = services.session_cost(before)
    cost_after = services.session_cost(after)
    assert (cost_before.total, cost_before.prices_include_tax) == (D("6.44"), False)
    assert (cost_after.total, cost_after.prices_include_tax) == (D("5.32"), True)
    # The receipt says which applied.
    assert "tax was added on top of the prices" in _receipt(charger, before)
    assert "The prices of this charger included 21 % tax" in _receipt(charger, after)


# -- which mode a new price gets -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_location_includes_tax_and_an_existing_one_keeps_its_mode(host, prop, api_client):
    api_client.force_authenticate(host)
    body = {
        "property": prop.pk,
        "valid_from": "2026-01-01T00:00:00Z",
        "energy_price_per_kwh": "0.35",
        "tax_percent": "21",
    }
    first = api_client.post("/api/v1/rates/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["prices_include_tax"] is True  # a new location: EU consumer prices
    Rate.objects.filter(pk=first.json()["id"]).update(prices_include_tax=False)
    second = api_client.post(
        "/api/v1/rates/", {**body, "valid_from": "2026-02-01T00:00:00Z"}, format="json"
    )
    assert second.json()["prices_include_tax"] is False  # the location's mode is kept
    third = api_client.post(
        "/api/v1/rates/",
        {**body, "valid_from": "2026-03-01T00:00:00Z", "prices_include_tax": True},
        format="json",
    )
    assert third.json()["prices_include_tax"] is True  # the host changed it


@pytest.mark.django_db
def test_the_new_price_form_carries_the_mode_over(host, prop):
    _rate(prop, included=False, valid_from=timezone.now() - timedelta(days=1))
    client = Client()
    client.force_login(host)
    page = client.get(f"/billing/properties/{prop.pk}/rates/").content.decode()
    start = page.index('name="prices_include_tax"')
    field = page[page.rindex("<input", 0, start) : page.index(">", start)]
    assert "checked" not in field


# -- the card hold, and prices from before the choice ----------------------------------------------


@pytest.mark.parametrize(("included", "hold"), [(True, D("22.00")), (False, D("26.62"))])
def test_the_card_hold_adds_tax_only_when_it_goes_on_top(included, hold):
    from billing.holds import Ceiling, hold_amount

    terms = RateTerms(
        currency="EUR",
        connection_fee=D("1.00"),
        energy_price_per_kwh=D("0.35"),
        tax_percent=D("21"),
        prices_include_tax=included,
    )
    # 1.00 + 60 kWh x 0.35 = 22.00; on top: x 1.21 = 26.62
    assert hold_amount(terms, Ceiling(kwh=D("60"), hours=D("4"), idle_minutes=0)) == hold


@pytest.mark.django_db(transaction=True)
def test_prices_from_before_the_choice_keep_tax_on_top_and_new_ones_include_it(prop):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = ("billing", "0008_property_signature_policy"), ("billing", "0009_m46_tax_mode")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old_apps = executor.loader.project_state([before]).apps
    old_rate = old_apps.get_model("billing", "Rate").objects.create(
        property_id=prop.pk, valid_from=T0, energy_price_per_kwh=D("0.35"), tax_percent=D("21")
    )
    executor = MigrationExecutor(connection)
    executor.migrate([after])
    executor.loader.build_graph()
    try:
        assert Rate.objects.get(pk=old_rate.pk).prices_include_tax is False
        new_rate = Rate.objects.create(property=prop, valid_from=T0 + timedelta(days=1))
        assert new_rate.prices_include_tax is True
    finally:
        # Back to the latest schema: billing's later migrations are the next tests' tables.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_tax_mode_of_a_price_in_force_is_not_changed_in_place(host, prop, api_client):
    rate = _rate(prop, included=False, valid_from=timezone.now() - timedelta(days=1))
    api_client.force_authenticate(host)
    response = api_client.patch(
        f"/api/v1/rates/{rate.pk}/", {"prices_include_tax": True}, format="json"
    )
    assert response.status_code == 400
    assert "sessions that start after it" in str(response.json())
    rate.refresh_from_db()
    assert rate.prices_include_tax is False
    # Other fields of the price may still be corrected, and a future price may change its mode.
    assert (
        api_client.patch(
            f"/api/v1/rates/{rate.pk}/", {"connection_fee": "0.50"}, format="json"
        ).status_code
        == 200
    )
    future = _rate(prop, included=False, valid_from=timezone.now() + timedelta(days=1))
    assert (
        api_client.patch(
            f"/api/v1/rates/{future.pk}/", {"prices_include_tax": True}, format="json"
        ).status_code
        == 200
    )


@pytest.mark.django_db
def test_the_admin_keeps_the_same_rule_for_a_price_in_force(prop, admin_client):
    from billing.admin import RateAdminForm

    rate = _rate(prop, included=False, valid_from=timezone.now() - timedelta(days=1))
    data = {
        "property": prop.pk,
        "valid_from_0": rate.valid_from.strftime("%Y-%m-%d"),
        "valid_from_1": rate.valid_from.strftime("%H:%M:%S"),
        "valid_from": rate.valid_from.strftime("%Y-%m-%d %H:%M:%S"),
        "processing_fee_percent": "0",
        "processing_fee_fixed": "0",
        "connection_fee": "0",
        "energy_price_per_kwh": str(rate.energy_price_per_kwh),
        "time_price_per_hour": "0",
        "idle_fee_per_minute": "0",
        "idle_grace_minutes": "0",
        "tax_percent": str(rate.tax_percent),
        "prices_include_tax": "on",
    }
    response = admin_client.post(f"/admin/billing/rate/{rate.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the error
    assert "sessions that start after it" in response.content.decode()
    rate.refresh_from_db()
    assert rate.prices_include_tax is False
    # Everything else in the form was valid: only the tax mode was refused.
    form = RateAdminForm(data={**data, "prices_include_tax": ""}, instance=rate)
    assert form.is_valid(), form.errors
