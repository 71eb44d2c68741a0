"""Issue 55: a driver account charges on a partner CPO's network. The driver page lists the
partner's chargers with our price, starts one with the driver's app token (START_SESSION to an
independent CPO over real HTTP), follows the session the CPO pushes, stops it (STOP_SESSION) and
pays the CDR at our price with the saved card; a CDR that disagrees with its tariff is not charged.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from billing.models import LedgerTransaction, Payment
from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import cdr_check, emsp_driving, emsp_rules
from roaming.models import PartnerCdr, PartnerCommand, PartnerLocation, PartnerTariff
from tests.drivers.conftest import save_card, sign_up
from tests.factories import OrganizationFactory
from tests.roaming.conftest import auth
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity

START = "2026-03-02T10:00:00Z"


def _tariff(price: float = 0.30) -> dict:
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "T1",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [
                    {"type": "FLAT", "price": 1.00, "step_size": 1},
                    {"type": "ENERGY", "price": price, "step_size": 1},
                ]
            }
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }


def _location(status: str = "AVAILABLE", **evse: object) -> dict:
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "LOC1",
        "publish": True,
        "name": "Grote Markt",
        "address": "Grote Markt 1",
        "city": "Brussel",
        "country": "BEL",
        "time_zone": "Europe/Brussels",
        "evses": [
            {
                "uid": "E1",
                "evse_id": "BE*CPX*E1",
                "status": status,
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 16,
                        "tariff_ids": ["T1"],
                    }
                ],
                **evse,
            }
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }


def partner_network(partner) -> PartnerLocation:
    """The CPO partner's location LOC1 (one Type 2 EVSE) and its tariff T1, as it pushed them."""
    for model, key, value, data in (
        (PartnerTariff, "tariff_id", "T1", _tariff()),
        (PartnerLocation, "location_id", "LOC1", _location()),
    ):
        made = model.objects.create(
            organization_id=partner.organization_id,
            partner=partner,
            country_code="BE",
            party_id="CPX",
            data=data,
            last_updated="2026-01-01T00:00:00Z",
            **{key: value},
        )
    return made


@pytest.fixture
def network(db, settings):
    """A CPO partner (the stub, over real HTTP) of the organization whose eMSP identity serves
    driver accounts, with one location and its tariff."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.OCPI_EMSP_MARGIN_PERCENT = 10
    settings.OCPI_EMSP_VAT_PERCENT = 21
    settings.OCPI_EMSP_ROAMING_FEE_CENTS = 0
    org = OrganizationFactory()
    identity = with_identity(org)
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    stub = CpoStub()
    stub.emsp_token = "our-token-at-cpo"  # what we call it with (cpo_partner's outgoing token)
    partner = cpo_partner(
        org,
        endpoints={"commands": {"RECEIVER": f"{stub.base}/2.2.1/commands"}},
    )
    location = partner_network(partner)
    yield {"org": org, "partner": partner, "location": location, "stub": stub}
    stub.close()


def _ocpi(client: Client, method: str, url: str, body: dict) -> dict:
    # The CPO is not the signed-in driver: its calls go without the driver's cookies.
    response = Client().generic(
        method,
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    return response.json()


def _session(uid: str, status: str = "ACTIVE", kwh: float = 0) -> dict:
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "S1",
        "start_date_time": START,
        "kwh": kwh,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "EVB",
            "uid": uid,
            "type": "APP_USER",
            "contract_id": "NLEVB000000001",
        },
        "auth_method": "COMMAND",
        "location_id": "LOC1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "total_cost": {"excl_vat": 1.0 + 0.3 * kwh},
        "status": status,
        "last_updated": START,
    }


def _cdr(cdr_id: str, uid: str, *, excl_vat: float) -> dict:
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": cdr_id,
        "start_date_time": START,
        "end_date_time": "2026-03-02T11:00:00Z",
        "session_id": "S1",
        "cdr_token": _session(uid)["cdr_token"],
        "auth_method": "COMMAND",
        "cdr_location": {"id": "LOC1", "evse_uid": "E1", "connector_id": "1"},
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": START,
                "dimensions": [{"type": "ENERGY", "volume": 10}],
                "tariff_id": "T1",
            }
        ],
        "total_cost": {"excl_vat": excl_vat},
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2026-03-02T11:01:00Z",
    }


def test_our_price_to_the_driver_from_the_partners_tariff():
    # 0.30/kWh + 10 % margin + 21 % VAT = 0.3993 -> 0.399; the flat 1.00 -> 1.331 -> 1.33.
    price = cdr_check.driver_tariff(
        _tariff(),
        margin_percent=Decimal(10),
        fee=Decimal(0),
        vat_percent=Decimal(21),
    )
    assert (price.per_kwh, price.per_session, price.per_hour, price.varies) == (
        Decimal("0.399"),
        Decimal("1.33"),
        None,
        False,
    )
    timed = {**_tariff(), "elements": [*_tariff()["elements"], {"price_components": []}]}
    assert cdr_check.driver_tariff(
        timed, margin_percent=Decimal(0), fee=Decimal("0.50"), vat_percent=Decimal(0)
    ).varies
    assert emsp_rules.start_refusal({"status": "CHARGING"}, commands_offered=True).endswith(
        "in use right now."
    )
    assert "use your card" in emsp_rules.start_refusal(
        {"status": "AVAILABLE", "capabilities": ["RFID_READER"]}, commands_offered=True
    )
    assert emsp_rules.start_refusal({"status": "AVAILABLE"}, commands_offered=True) == ""


def test_a_driver_finds_starts_follows_stops_and_pays_at_a_partner(
    client, network, django_capture_on_commit_callbacks
):
    stub = network["stub"]
    sign_up(client, "roam@example.com")
    page = client.get("/driver/networks/?q=brussel").content.decode()
    location = network["location"]
    assert f'href="/driver/networks/{location.pk}/"' in page
    assert 'href="/driver/networks/"' in page  # the header's link: offered
    detail = client.get(f"/driver/networks/{location.pk}/").content.decode()
    assert "EUR 0.399 per kWh" in detail and "EUR 1.33 per session" in detail
    assert "Type 2</strong> · AC · up to 11.0 kW" in detail and "Available" in detail

    # No saved card: nothing is sent.
    refused = client.post(
        f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"}
    )
    assert refused.status_code == 302 and not stub.commands
    save_card(client)
    started = client.post(
        f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"}
    )
    assert started["Location"] == "/driver/networks/activity/"
    body = stub.wait_for_command("START_SESSION", timeout=5)
    profile = DriverProfile.objects.get(user__email="roam@example.com")
    token = profile.roaming_token
    assert token is not None and token.organization_id == network["org"].pk
    assert (body["token"]["uid"], body["token"]["type"], body["token"]["valid"]) == (
        token.uid,
        "APP_USER",
        True,
    )
    assert (body["location_id"], body["evse_uid"], body["connector_id"]) == ("LOC1", "E1", "1")
    command = PartnerCommand.objects.get()
    assert body["response_url"].endswith(f"/ocpi/2.2.1/emsp/commands/START_SESSION/{command.uid}")
    assert command.response == "ACCEPTED" and command.timeout_s == 30
    activity = client.get("/driver/networks/activity/").content.decode()
    assert "Waiting for the charger to answer" in activity

    # A second start while this one is pending is refused before anything is sent.
    client.post(f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"})
    assert len(stub.commands) == 1

    # The CPO's CommandResult at the response URL, then its session.
    path = body["response_url"].split("testserver", 1)[-1]
    assert _ocpi(client, "POST", path, {"result": "ACCEPTED"})["status_code"] == 1000
    assert PartnerCommand.objects.get().result == "ACCEPTED"
    # Accepted by the charger, no session yet (the driver is plugging in): still no second start.
    client.post(f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"})
    assert len(stub.commands) == 1
    assert "plug in if you have not" in client.get("/driver/networks/activity/").content.decode()
    put = _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid, kwh=5))
    assert put["status_code"] == 1000
    activity = client.get("/driver/networks/activity/").content.decode()
    # 1.00 + 5 kWh x 0.30 = 2.50 before tax -> 2.75 with margin -> 3.33 with VAT.
    assert "Charging</strong> at Grote Markt" in activity and "about 3.33 EUR so far" in activity
    assert "plug in if you have not" not in activity  # the start's words are history now

    # Stop: STOP_SESSION with the CPO's session id.
    session = token and network["partner"].partner_sessions.get()
    client.post(f"/driver/networks/sessions/{session.pk}/stop/")
    assert stub.wait_for_command("STOP_SESSION", timeout=5)["session_id"] == "S1"

    # The CDR agrees with the tariff: 1.00 + 10 x 0.30 = 4.00 -> 4.40 + 0.92 VAT = 5.32, paid.
    _ocpi(
        client,
        "PATCH",
        "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1",
        {"status": "COMPLETED", "kwh": 10, "last_updated": "2026-03-02T11:00:00Z"},
    )
    assert (
        _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C1", token.uid, excl_vat=4.0))[
            "status_code"
        ]
        == 1000
    )
    cdr = PartnerCdr.objects.get(cdr_id="C1")
    assert cdr.payment_status == PartnerCdr.PaymentStatus.DUE
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        driver_roaming.roaming_charges_collect()
    (receipt,) = mail.outbox
    assert receipt.to == ["roam@example.com"]
    assert receipt.subject == "Receipt: charging at Grote Markt, Grote Markt 1, Brussel"
    assert "Total: 5.32 EUR" in receipt.body and "VAT: 0.92 EUR" in receipt.body
    cdr.refresh_from_db()
    assert (cdr.payment_status, cdr.price_total) == ("paid", Decimal("5.32"))
    payment = Payment.objects.get(session_ref=f"partner-cdr:{cdr.pk}")
    assert (payment.amount_captured, payment.organization_id) == (
        Decimal("5.32"),
        network["org"].pk,
    )
    assert LedgerTransaction.objects.filter(
        kind=LedgerTransaction.Kind.ROAMING_CHARGE, payment=payment
    ).exists()
    activity = client.get("/driver/networks/activity/").content.decode()
    assert "5.32 EUR (0.92 VAT) · paid" in activity

    # Charged once: the sweep again changes nothing.
    assert driver_roaming.roaming_charges_collect() == 0
    assert Payment.objects.filter(session_ref=f"partner-cdr:{cdr.pk}").count() == 1


def test_a_cdr_that_disagrees_with_its_tariff_is_not_charged(client, network):
    sign_up(client, "dispute@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="dispute@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C9", token.uid, excl_vat=6.0))
    cdr = PartnerCdr.objects.get(cdr_id="C9")
    assert (cdr.status, cdr.payment_status) == (PartnerCdr.Status.DISPUTE, "")
    assert driver_roaming.roaming_charges_collect() == 0
    assert not Payment.objects.exists()
    page = client.get("/driver/networks/activity/").content.decode()
    assert "you are not charged until it is" not in page  # no session line without a session


def test_another_driver_cannot_stop_a_session_and_strangers_see_no_network(client, network):
    sign_up(client, "one@example.com")
    one = DriverProfile.objects.get(user__email="one@example.com")
    token = driver_roaming.roaming_token(one, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    session = network["partner"].partner_sessions.get()
    other = Client()
    sign_up(other, "two@example.com")
    response = other.post(f"/driver/networks/sessions/{session.pk}/stop/")
    assert response.status_code == 302 and not network["stub"].commands
    assert not PartnerCommand.objects.exists()
    # Locations of another organization's CPO partner are not on the driver page.
    foreign = OrganizationFactory()
    stranger = cpo_partner(foreign, token="foreign-cpo-token", country_code="DE", party_id="XYZ")
    PartnerLocation.objects.create(
        organization=foreign,
        partner=stranger,
        country_code="DE",
        party_id="XYZ",
        location_id="FOREIGN",
        data={**_location(), "name": "Fremde Strasse"},
        last_updated="2026-01-01T00:00:00Z",
    )
    assert "Fremde Strasse" not in other.get("/driver/networks/").content.decode()
    foreign_row = PartnerLocation.objects.get(location_id="FOREIGN")
    assert other.get(f"/driver/networks/{foreign_row.pk}/").status_code == 404


def test_a_deleted_account_blocks_its_app_token(client, network):
    sign_up(client, "gone@example.com")
    profile = DriverProfile.objects.get(user__email="gone@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    from drivers.services import account_delete

    account_delete(user=profile.user)
    token.refresh_from_db()
    assert token.blocked


def test_a_command_result_is_taken_from_the_cpo_it_was_sent_to_only(client, network):
    sign_up(client, "result@example.com")
    save_card(client)
    location = network["location"]
    client.post(f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"})
    command = PartnerCommand.objects.get()
    path = f"/ocpi/2.2.1/emsp/commands/START_SESSION/{command.uid}"
    # Another organization's CPO partner with the same party: unknown command, nothing changes.
    cpo_partner(OrganizationFactory(), token="foreign-cpo-token")
    foreign = Client().post(
        path,
        data=json.dumps({"result": "REJECTED"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth("foreign-cpo-token"),
    )
    assert (foreign.status_code, foreign.json()["status_code"]) == (404, 2000)
    # Its own CPO, with a result that is not a CommandResultType: 2001, nothing changes.
    assert _ocpi(client, "POST", path, {"result": "MAYBE"})["status_code"] == 2001
    command.refresh_from_db()
    assert command.result == ""
    assert _ocpi(client, "POST", path, {"result": "EVSE_OCCUPIED"})["status_code"] == 1000
    page = client.get("/driver/networks/activity/").content.decode()
    assert "The charger is in use by someone else." in page


def test_a_blocked_app_token_is_not_sent_to_start(client, network):
    sign_up(client, "blocked@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="blocked@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    token.blocked = True
    token.save()
    location = network["location"]
    response = client.post(
        f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"}, follow=True
    )
    assert "may not charge on other networks right now" in response.content.decode()
    assert not network["stub"].commands and not PartnerCommand.objects.exists()


def test_a_refused_card_is_tried_again_then_the_driver_is_told(
    client, network, django_capture_on_commit_callbacks
):
    from billing.models import SandboxPaymentMethod

    sign_up(client, "broke@example.com")
    save_card(client)
    SandboxPaymentMethod.objects.update(test_method="pm_card_chargeDeclined")
    profile = DriverProfile.objects.get(user__email="broke@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C5", token.uid, excl_vat=4.0))
    mail.outbox.clear()
    for attempt in range(1, driver_roaming.ROAMING_CHARGE_ATTEMPTS + 1):
        with django_capture_on_commit_callbacks(execute=True):
            driver_roaming.roaming_charges_collect()
        cdr = PartnerCdr.objects.get(cdr_id="C5")
        assert cdr.payment_attempts == attempt
    assert (cdr.payment_status, cdr.payment_error) == ("failed", "Your card was declined.")
    (told,) = mail.outbox
    assert told.subject == "Your payment for charging on a partner network failed"
    assert not Payment.objects.filter(session_ref=f"partner-cdr:{cdr.pk}").exists()
    page = client.get("/driver/networks/activity/").content.decode()
    assert "your card was refused: Your card was declined." in page


def test_without_an_identity_for_driver_accounts_no_network_is_offered(client, db):
    sign_up(client, "home@example.com")
    assert 'href="/driver/networks/"' not in client.get("/driver/").content.decode()
    page = client.get("/driver/networks/").content.decode()
    assert "Charging on other networks is not available with this account." in page
    refused = client.post("/driver/networks/1/start/", {"evse": "E1"}, follow=True)
    assert "Charging on other networks is not offered." in refused.content.decode()


def test_a_cdr_in_another_currency_waits_for_its_days_rate_then_is_charged_converted(
    client, network, django_capture_on_commit_callbacks
):
    from datetime import date

    from billing.models import ExchangeRate
    from roaming.models import EmspIdentity

    EmspIdentity.objects.filter(organization=network["org"]).update(currency="SEK")
    sign_up(client, "kronor@example.com")
    save_card(client)
    location = network["location"]
    detail = client.get(f"/driver/networks/{location.pk}/").content.decode()
    assert "Charged in SEK at the reference exchange rate of the day your session ends." in detail
    profile = DriverProfile.objects.get(user__email="kronor@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C8", token.uid, excl_vat=4.0))
    # No rate for the session's day yet: not charged on a guess, and support can see why.
    assert driver_roaming.roaming_charges_collect() == 0
    cdr = PartnerCdr.objects.get(cdr_id="C8")
    assert (cdr.payment_status, cdr.payment_attempts) == ("due", 0)
    assert cdr.payment_error == "Waiting for the EUR to SEK reference rate of 2026-03-02."
    assert not Payment.objects.exists()
    # A later day's rate is not the session's; the session day's is.
    ExchangeRate.objects.create(day=date(2026, 3, 3), currency="SEK", per_euro=Decimal("12"))
    assert driver_roaming.roaming_charges_collect() == 0
    ExchangeRate.objects.create(day=date(2026, 3, 2), currency="SEK", per_euro=Decimal("11.4608"))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert driver_roaming.roaming_charges_collect() == 1
    cdr.refresh_from_db()
    # 5.32 EUR x 11.4608 = 60.971456 -> 60.97 SEK.
    assert (cdr.charged_amount, cdr.charged_currency, cdr.exchange_rate_day) == (
        Decimal("60.97"),
        "SEK",
        date(2026, 3, 2),
    )
    payment = Payment.objects.get(session_ref=f"partner-cdr:{cdr.pk}")
    assert (payment.currency, payment.amount_captured) == ("SEK", Decimal("60.97"))
    (receipt,) = mail.outbox
    assert "Charged: 60.97 SEK (1 EUR = 11.4608 SEK, reference rate of 2026-03-02)" in receipt.body
    page = client.get("/driver/networks/activity/").content.decode()
    assert "= 60.97 SEK at 11.4608 (reference rate of 2 Mar 2026)" in page


def test_a_credit_cdr_refunds_a_paid_session_or_cancels_a_due_one(
    client, network, django_capture_on_commit_callbacks
):
    from billing.models import Refund

    sign_up(client, "credit@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="credit@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C1", token.uid, excl_vat=4.0))
    driver_roaming.roaming_charges_collect()
    paid = PartnerCdr.objects.get(cdr_id="C1")
    assert paid.payment_status == "paid"

    # mod_cdrs "Credit CDRs": the same data, negative total_cost, naming the original.
    credit = {
        **_cdr("C1-C", token.uid, excl_vat=-4.0),
        "credit": True,
        "credit_reference_id": "C1",
    }
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", credit)["status_code"] == 1000
    paid.refresh_from_db()
    assert paid.payment_status == "refunded"
    refund = Refund.objects.get()
    assert (refund.amount, refund.source) == (Decimal("5.32"), "network")
    assert refund.payment.amount_refunded == Decimal("5.32")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["credit@example.com"]
    # The same credit again changes nothing (stored once, refunded once).
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", credit)
    assert Refund.objects.count() == 1

    # The corrected CDR follows and is charged; the page shows it, not the credited one.
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr("C1-2", token.uid, excl_vat=4.0))
    assert driver_roaming.roaming_charges_collect() == 1
    page = client.get("/driver/networks/activity/").content.decode()
    assert "5.32 EUR (0.92 VAT) · paid" in page and "refunded" not in page

    # A credit before the charge: the CDR it names is never charged.
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", {**_cdr("C7", token.uid, excl_vat=4.0)})
    late = {**_cdr("C7-C", token.uid, excl_vat=-4.0), "credit": True, "credit_reference_id": "C7"}
    _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", late)  # its task lost: the sweep sees it
    assert driver_roaming.roaming_charges_collect() == 0
    assert PartnerCdr.objects.get(cdr_id="C7").payment_status == "credited"
    assert Payment.objects.count() == 2


def test_a_cdr_listing_several_tariffs_is_checked_against_its_connectors(client, network):
    # The party's dearer tariff listed first, no tariff_id in the periods: the connector names T1.
    PartnerTariff.objects.create(
        organization=network["org"],
        partner=network["partner"],
        country_code="BE",
        party_id="CPX",
        tariff_id="T0",
        data={**_tariff(0.90), "id": "T0"},
        last_updated="2026-01-01T00:00:00Z",
    )
    cdr = _cdr("C3", "NOTOURS", excl_vat=4.0)
    for item in cdr["charging_periods"]:
        item.pop("tariff_id")
    cdr["tariffs"] = [{**_tariff(0.90), "id": "T0"}, _tariff()]
    assert _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)["status_code"] == 1000
    checked = PartnerCdr.objects.get(cdr_id="C3")
    assert (checked.status, checked.tariff.tariff_id) == ("agrees", "T1")


def test_a_session_and_cdr_whose_pushes_were_lost_are_pulled_and_billed(
    client, network, django_capture_on_commit_callbacks
):
    from datetime import datetime

    from roaming import emsp_cdrs

    stub = network["stub"]
    partner = network["partner"]
    partner.endpoints = {
        **partner.endpoints,
        "sessions": {"SENDER": f"{stub.base}/2.2.1/sessions"},
        "cdrs": {"SENDER": f"{stub.base}/2.2.1/cdrs"},
    }
    partner.save()
    sign_up(client, "lost@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="lost@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    # The CPO holds the session (completed) and its CDR; neither push reached us.
    stub.sessions = [
        {**_session(token.uid, "COMPLETED", kwh=10), "last_updated": "2026-03-02T11:00:00Z"}
    ]
    stub.cdrs = [_cdr("C4", token.uid, excl_vat=4.0)]
    since = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
    with django_capture_on_commit_callbacks(execute=True):
        assert emsp_cdrs.sessions_cdrs_pull(partner_id=partner.pk, since=since) == (1, 1)
    asked = [r for r in stub.received if r["path"].endswith("/sessions")]
    assert asked and asked[0]["query"] == "date_from=2026-03-02T09%3A00%3A00Z"
    assert network["partner"].partner_sessions.get().status == "COMPLETED"
    assert PartnerCdr.objects.get(cdr_id="C4").payment_status == "paid"
    # Pulled again: the CDR stored once; an older state never replaces a newer push.
    _ocpi(
        client,
        "PATCH",
        "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1",
        {"kwh": 12, "last_updated": "2026-03-02T12:00:00Z"},
    )
    assert emsp_cdrs.sessions_cdrs_pull(partner_id=partner.pk, since=None) == (1, 1)
    assert network["partner"].partner_sessions.get().data["kwh"] == 12
    assert PartnerCdr.objects.filter(cdr_id="C4").count() == 1
    assert Payment.objects.count() == 1


def test_a_late_update_of_an_earlier_session_does_not_open_a_second_start(client, network):
    stub = network["stub"]
    sign_up(client, "late@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="late@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(
        client,
        "PUT",
        "/ocpi/2.2.1/emsp/sessions/BE/CPX/S0",
        {**_session(token.uid, "COMPLETED"), "id": "S0"},
    )
    location = network["location"]
    client.post(f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"})
    command = PartnerCommand.objects.get()
    path = f"/ocpi/2.2.1/emsp/commands/START_SESSION/{command.uid}"
    assert _ocpi(client, "POST", path, {"result": "ACCEPTED"})["status_code"] == 1000
    # The CPO sends a late update of the earlier session: not the new start's session.
    late = {"total_cost": {"excl_vat": 1.5}, "last_updated": "2026-03-02T12:00:00Z"}
    assert (
        _ocpi(client, "PATCH", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S0", late)["status_code"] == 1000
    )
    client.post(f"/driver/networks/{location.pk}/start/", {"evse": "E1", "connector": "1"})
    assert len(stub.commands) == 1 and PartnerCommand.objects.count() == 1
    # The new start's session (its authorization_reference) arrives: running, nothing past yet.
    mine = {**_session(token.uid), "id": "S9", "authorization_reference": command.uid}
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S9", mine)
    page = client.get("/driver/networks/activity/").content.decode()
    assert "Stop charging" in page and page.count("<li>") == 1  # S9 running above; S0 past
    session = network["partner"].partner_sessions.get(session_id="S9")
    client.post(f"/driver/networks/sessions/{session.pk}/stop/")
    # Stopping: no second STOP_SESSION, and the button is gone while it stops.
    refused = client.post(f"/driver/networks/sessions/{session.pk}/stop/", follow=True)
    assert "Your session is already stopping." in refused.content.decode()
    assert [c for c, _ in stub.commands].count("STOP_SESSION") == 1
    assert "Stop charging" not in client.get("/driver/networks/activity/").content.decode()


def test_a_running_session_alone_leaves_no_past_sessions(client, network):
    sign_up(client, "first@example.com")
    profile = DriverProfile.objects.get(user__email="first@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    page = client.get("/driver/networks/activity/").content.decode()
    assert "Charging</strong> at Grote Markt" in page
    assert "No sessions on other networks yet." in page


def test_a_cdr_or_location_with_numbers_that_are_not_numbers_is_refused_and_pages_stay_up(
    client, network
):
    sign_up(client, "hostile@example.com")
    cdr = json.dumps(_cdr("C66", "X", excl_vat=4.0)).replace('"excl_vat": 4.0', '"excl_vat": NaN')
    answer = Client().post(
        "/ocpi/2.2.1/emsp/cdrs",
        data=cdr,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    assert (answer.status_code, answer.json()["status_code"]) == (400, 2000)
    huge = _cdr("C67", "X", excl_vat=4.0)
    huge["total_cost"] = {"excl_vat": 1e308}
    assert _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", huge)["status_code"] == 2001
    assert not PartnerCdr.objects.exists()
    # A connector PATCH with a voltage beyond any float: refused as not JSON, nothing changed.
    before = network["location"].data
    patch = '{"max_voltage": 1e400, "last_updated": "2026-03-02T12:00:00Z"}'
    answer = Client().patch(
        "/ocpi/2.2.1/emsp/locations/BE/CPX/LOC1/E1/1",
        data=patch,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    assert answer.status_code == 400
    assert PartnerLocation.objects.get(pk=network["location"].pk).data == before
    assert client.get(f"/driver/networks/{network['location'].pk}/").status_code == 200


def test_a_location_kept_before_its_shape_was_checked_still_shows(client, network):
    """Pushes are checked for their lists now; a row kept before may hold `"evses": 5` or an EVSE
    whose connectors are text. The driver's page of it shows what can be read, never a 500."""
    location = network["location"]
    sign_up(client, "odd@example.com")
    location.data = {**location.data, "evses": 5}
    location.save(update_fields=["data"])
    assert client.get(f"/driver/networks/{location.pk}/").status_code == 200
    evse = {"uid": "E9", "status": "AVAILABLE", "connectors": "x", "capabilities": 1}
    location.data = {
        **location.data,
        "evses": [evse, {"uid": "E8", "connectors": [{"tariff_ids": 3}]}],
    }
    location.save(update_fields=["data"])
    assert client.get(f"/driver/networks/{location.pk}/").status_code == 200
