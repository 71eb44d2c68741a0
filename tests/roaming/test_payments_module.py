"""OCPI 2.3.0 Payments with a payment terminal provider (PTP): its terminals, the EVSEs the
operator assigns, the sessions its terminals start, the CDR's invoice reference, its financial
advice confirmations, our invoice, and a terminal-paid session never billed again."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from authorization.models import Token
from backoffice.templatetags.when import when
from billing.models import Rate
from chargers.models import ChargingSession
from guest.models import GuestSession
from guest.services import guest_session_link
from roaming import payments, sessions
from roaming.models import (
    Delivery,
    FinancialAdviceConfirmation,
    Terminal,
    TerminalPayment,
)
from tests.factories import ChargerFactory, MembershipFactory, OrganizationFactory, TokenFactory
from tests.roaming import spec
from tests.roaming.conftest import auth, connected_partner, located, online

V230 = "2.3.0"
PTP_TOKEN = "ptp-calls-us-token"


@pytest.fixture
def ptp(operator):
    partner = connected_partner(
        operator["org"],
        token=PTP_TOKEN,
        name="Terminals Inc",
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version=V230,
        base="https://ptp.example/ocpi/2.3.0",
    )
    partner.endpoints["payments"] = {"SENDER": "https://ptp.example/ocpi/2.3.0/payments"}
    partner.save(update_fields=["endpoints"])
    return partner


def _call(method, path, body=None, token=PTP_TOKEN):
    return Client().generic(
        method,
        f"/ocpi/2.3.0/{path}",
        json.dumps(body) if body is not None else "",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )


def _terminal(ptp, operator, terminal_id="T-1", **details):
    terminal, _ = payments.terminal_receive(
        partner=ptp, body={"terminal_id": terminal_id, "invoice_creator": "CPO", **details}
    )
    return terminal


def _ptp_token(uid="PTP-CARD-1", **fields):
    return {
        "country_code": "AT",
        "party_id": "PTP",
        "uid": uid,
        "type": "AD_HOC_USER",
        "contract_id": "AT-PTP-1",
        "issuer": "Terminals Inc",
        "valid": True,
        "whitelist": "NEVER",
        "last_updated": "2026-01-01T00:00:00Z",
        **fields,
    }


def _start(operator, reference="ref-1", **fields):
    body = {
        "response_url": "https://ptp.example/ocpi/2.3.0/commands/START_SESSION/1",
        "token": _ptp_token(),
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
        "authorization_reference": reference,
        **fields,
    }
    return _call("POST", "commands/START_SESSION", body).json()


# -- terminals ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_ptp_pushes_a_terminal_and_reads_back_what_we_assigned(operator, ptp, settings):
    settings.SITE_URL = "https://cpo.example"
    example = spec.example("payment_terminal_create.json", V230)

    created = _call("POST", "payments/terminals/", example)
    again = _call("POST", "payments/terminals", {**example, "city": "Graz"})

    assert (created.status_code, created.json()["status_code"]) == (201, 1000)
    assert (again.status_code, again.json()["data"]["city"]) == (200, "Graz")
    terminal = Terminal.objects.get(partner=ptp)
    assert terminal.terminal_id == example["terminal_id"] and terminal.details["city"] == "Graz"
    spec.check_object(
        created.json()["data"], "mod_payments.asciidoc", "mod_payments_terminal_object", V230
    )

    payments.terminal_assign(
        terminal=terminal, location_ids=[], evses=[(operator["cp_public"].pk, 2)]
    )

    read = _call("GET", f"payments/terminals/{terminal.terminal_id.upper()}").json()["data"]
    assert (read["location_ids"], read["evse_uids"]) == ([], ["PUB-1*2"])
    # The PTP is told, on its terminal (mod_payments "PATCH Terminal Method").
    push = Delivery.objects.get(partner=ptp, module="payments")
    assert (push.method, push.path) == ("PATCH", f"/terminals/{terminal.terminal_id}")
    assert push.body["evse_uids"] == ["PUB-1*2"] and push.body["location_ids"] == []
    assert push.body["invoice_base_url"] == (
        f"https://cpo.example/roaming/invoices/{terminal.invoice_key}/"
    )
    # Its EVSE now takes cards on the spot (mod_locations Capability), in both versions.
    location = _call("GET", f"locations/{operator['public'].pk}").json()["data"]
    capabilities = {e["uid"]: e["capabilities"] for e in location["evses"]}
    assert "CREDIT_CARD_PAYABLE" in capabilities["PUB-1*2"]
    assert "CREDIT_CARD_PAYABLE" not in capabilities["PUB-1*1"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "payment_terminal_create.json",
        "payment_terminal_create_minimal.json",
        "payment_terminal_example_newly_created.json",
        "payment_terminal_example_assigned_locations_assigned_evses.json",
    ],
)
def test_the_specs_terminal_examples_are_taken_and_their_assignment_stays_ours(operator, ptp, name):
    example = spec.example(name, V230)
    response = _call("POST", "payments/terminals", example)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    # The assignment is the CPO's: location ids the PTP sends are not taken.
    assert data["location_ids"] == [] and data["evse_uids"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, word",
    [
        ({"invoice_creator": "CPO"}, "terminal_id"),
        ({"terminal_id": "T-1", "invoice_creator": "BANK"}, "invoice_creator"),
        ({"terminal_id": "T-1", "coordinates": {"latitude": 48.2, "longitude": 16.3}}, "latitude"),
        ({"terminal_id": "x" * 37}, "terminal_id"),
    ],
)
def test_a_terminal_we_cannot_take_is_refused_with_2001_and_nothing_is_kept(
    operator, ptp, body, word
):
    answer = _call("POST", "payments/terminals", body).json()
    assert answer["status_code"] == 2001 and word in answer["status_message"]
    assert not Terminal.objects.exists()


@pytest.mark.django_db
def test_only_a_payment_terminal_provider_uses_the_payments_module(operator, partner):
    response = _call(
        "POST", "payments/terminals", {"terminal_id": "T-1"}, token="partner-token-c-0123456789"
    )
    assert response.status_code == 403 and response.json()["status_code"] == 2000
    assert not Terminal.objects.exists()
    assert _call("GET", "payments").status_code == 401  # unknown token


@pytest.mark.django_db
def test_a_terminal_serves_only_the_operators_public_roaming_chargers(operator, ptp):
    terminal = _terminal(ptp, operator)
    other = online(
        ChargerFactory(property=located_property(), station_id="OTHER-1"), {1: "Available"}
    )
    for evses, locations in (
        ([(operator["cp_private"].pk, 1)], []),  # a private charger
        ([(other.pk, 1)], []),  # another operator's
        ([], [operator["closed"].pk]),  # a location with roaming off
    ):
        with pytest.raises(payments.InvalidAssignment):
            payments.terminal_assign(terminal=terminal, location_ids=locations, evses=evses)
    assert not terminal.assignments.exists()
    assert not Delivery.objects.filter(module="payments").exists()


def located_property():
    from tests.factories import PropertyFactory

    prop = PropertyFactory(organization=OrganizationFactory(), roaming_enabled=True)
    located(prop)
    return prop


# -- a session started from a terminal -----------------------------------------------------------


def _start_body(operator, **fields):
    body = {
        "response_url": "https://ptp.example/ocpi/2.3.0/commands/START_SESSION/1",
        "token": _ptp_token(),
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
        "authorization_reference": "ref-1",
        **fields,
    }
    return {name: value for name, value in body.items() if value is not None}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, code, word",
    [
        ({"evse_uid": "PUB-1*2"}, 1000, "not assigned"),
        ({"authorization_reference": None}, 2001, "authorization_reference"),
        ({"authorization_reference": "r" * 37}, 2001, "authorization_reference"),
        ({"token": _ptp_token(party_id="EMS")}, 2001, "your own"),
        ({"evse_uid": None}, 2001, "evse_uid"),
    ],
)
def test_a_start_the_terminal_may_not_make_is_refused_and_leaves_no_card(
    operator, ptp, fields, code, word
):
    terminal = _terminal(ptp, operator)
    payments.terminal_assign(
        terminal=terminal, location_ids=[], evses=[(operator["cp_public"].pk, 1)]
    )
    answer = _call("POST", "commands/START_SESSION", _start_body(operator, **fields)).json()
    assert (answer["status_code"], answer["data"]["result"]) == (code, "REJECTED"), answer
    assert word in answer["data"]["message"][0]["text"]
    assert not TerminalPayment.objects.exists()
    assert not Token.objects.filter(msp=ptp.msp).exists()


@pytest.mark.django_db
def test_a_terminal_does_not_reserve(operator, ptp):
    answer = _call(
        "POST",
        "commands/RESERVE_NOW",
        {
            "response_url": "https://ptp.example/cb",
            "token": _ptp_token(),
            "location_id": str(operator["public"].pk),
            "evse_uid": "PUB-1*1",
            "reservation_id": "r1",
            "expiry_date": "2030-01-01T00:00:00Z",
        },
    ).json()
    assert answer["data"]["result"] == "NOT_SUPPORTED"


@pytest.mark.django_db(transaction=True)
def test_a_terminal_start_runs_on_a_one_off_card_of_its_own(operator, ptp, settings):
    # The operator's own card has the uid the PTP's token carries: never confused with it.
    own = TokenFactory(organization=operator["org"], uid="PTP-CARD-1")
    type(operator["cp_public"]).objects.filter(pk=operator["cp_public"].pk).update(
        connection_id="", last_seen_at=None
    )
    terminal = _terminal(ptp, operator)
    payments.terminal_assign(terminal=terminal, location_ids=[operator["public"].pk], evses=[])

    answer = _start(operator, reference="pp-100100-1948213567")

    assert answer["data"]["result"] == "ACCEPTED", answer
    payment = TerminalPayment.objects.get()
    assert (payment.authorization_reference, payment.terminal_id) == (
        "pp-100100-1948213567",
        terminal.pk,
    )
    card = payment.token
    assert card.uid != own.uid and card.uid.startswith("PT") and len(card.uid) == 20
    assert (card.msp_id, card.organization_id, card.single_session) == (ptp.msp_id, None, True)
    assert payment.token_data["uid"] == "PTP-CARD-1"
    # The charger is offline: the command failed, and the card will never start anything.
    card.refresh_from_db()
    assert payment.command.result == "FAILED" and not card.valid
    own.refresh_from_db()
    assert own.valid

    again = _start(operator, reference="pp-100100-1948213567")
    assert again["data"]["result"] == "REJECTED"
    assert "used" in again["data"]["message"][0]["text"]
    assert TerminalPayment.objects.count() == 1


# -- the session, its CDR, and billing -----------------------------------------------------------


def _paid_session(
    operator, ptp, *, reference="ref-9", invoice_creator="CPO", uid="PTAAAAAAAAAAAAAAAAAA"
):
    terminal = _terminal(
        ptp, operator, terminal_id=f"T-{reference}", invoice_creator=invoice_creator
    )
    card = Token.objects.create(uid=uid, msp=ptp.msp, single_session=True)
    now = timezone.now()
    session = ChargingSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=77,
        id_tag=uid,
        id_tag_status="Accepted",
        token=card,
        started_at=now - timedelta(hours=1),
        stopped_at=now,
        received_start_at=now - timedelta(hours=1),
        received_stop_at=now,
        meter_start_wh=0,
        meter_stop_wh=10000,
        status=ChargingSession.Status.COMPLETED,
    )
    payment = TerminalPayment.objects.create(
        organization=operator["org"],
        partner=ptp,
        terminal=terminal,
        authorization_reference=reference,
        token=card,
        token_data=_ptp_token(),
        charger=operator["cp_public"],
        connector_id=1,
    )
    return session, payment  # not tied yet: the first roaming look at the session ties them


@pytest.fixture
def rate(operator):
    return Rate.objects.create(
        property=operator["public"],
        valid_from=timezone.now() - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )


@pytest.mark.django_db
def test_a_terminal_paid_session_goes_to_its_ptp_alone_with_our_invoice_reference(
    operator, ptp, partner, rate
):
    session, payment = _paid_session(operator, ptp)
    # A guest waits at the same connector, and the eMSP partner of the operator is connected.
    GuestSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        email="g@example.com",
        state=GuestSession.State.STARTING,
        id_tag="GUEST0001",
    )

    cdr = sessions.cdr_create(session_id=session.pk)

    assert guest_session_link(session_id=session.pk) is None
    assert cdr is not None and cdr.partner_id == ptp.pk and cdr.version == V230
    data = cdr.data
    payment.refresh_from_db()
    assert data["invoice_reference_id"] == payment.invoice_reference_id != ""
    assert (data["auth_method"], data["authorization_reference"]) == ("COMMAND", "ref-9")
    assert data["cdr_token"] == {
        "country_code": "AT",
        "party_id": "PTP",
        "uid": "PTP-CARD-1",
        "type": "AD_HOC_USER",
        "contract_id": "AT-PTP-1",
    }
    assert data["total_cost"] == {
        "before_taxes": 4.5,
        "taxes": [{"name": "VAT", "percentage": 21, "amount": 0.95}],
    }
    spec.check_object(data, "mod_cdrs.asciidoc", "mod_cdrs_cdr_object", V230)
    assert payment.session_id == session.pk
    pushed = Delivery.objects.filter(module="cdrs").values_list("partner_id", flat=True)
    assert list(pushed) == [ptp.pk]
    assert sessions.cdr_create(session_id=session.pk).pk == cdr.pk  # once


@pytest.mark.django_db
def test_when_the_ptp_invoices_the_driver_the_cdr_names_no_invoice_of_ours(operator, ptp, rate):
    session, _ = _paid_session(operator, ptp, invoice_creator="PTP")
    cdr = sessions.cdr_create(session_id=session.pk)
    assert cdr is not None and "invoice_reference_id" not in cdr.data


# -- financial advice confirmations ---------------------------------------------------------------


def _advice(reference="ref-9", **fields):
    return {
        **spec.example("payment_financial_advice_confirmation_create.json", V230),
        "authorization_reference": reference,
        **fields,
    }


@pytest.mark.django_db
def test_the_financial_advice_confirmation_is_tied_to_the_session_and_its_cdr(operator, ptp, rate):
    session, payment = _paid_session(operator, ptp)
    cdr = sessions.cdr_create(session_id=session.pk)
    advice = _advice(total_costs={"before_taxes": 4.5, "taxes": [{"name": "VAT", "amount": 0.95}]})

    created = _call("POST", "payments/financial-advice-confirmations", advice)
    again = _call(
        "POST",
        "payments/financial-advice-confirmations/",
        {**advice, "capture_status_message": "again"},
    )

    assert (created.status_code, again.status_code) == (201, 200)
    confirmation = FinancialAdviceConfirmation.objects.get()
    assert confirmation.payment_id == payment.pk and confirmation.payment.session_id == session.pk
    assert confirmation.payment.session.ocpi_cdrs.get().pk == cdr.pk
    assert (confirmation.total_excl_tax, confirmation.total_incl_tax) == (
        Decimal("4.5"),
        Decimal("5.45"),
    )
    assert confirmation.eft_data[0] == "Mastercard"
    read = _call("GET", f"payments/financial-advice-confirmations/{advice['id']}").json()
    assert read["data"]["capture_status_message"] == "again"
    status = payments.payment_status(payment)
    assert (status.state, status.mismatch) == ("paid", False)
    assert "Paid at the terminal: 5.45 EUR" in status.words


@pytest.mark.django_db
def test_the_specs_confirmation_examples_are_read_in_either_price_shape(operator, ptp, rate):
    _paid_session(operator, ptp, reference="pp-100100-1948213567")
    for name in (
        "payment_financial_advice_confirmation_example_success.json",
        "payment_financial_advice_confirmation_example_failure.json",
    ):
        response = _call(
            "POST", "payments/financial-advice-confirmations", spec.example(name, V230)
        )
        assert response.status_code in (200, 201), response.content
    # Both examples share an id: the failure replaced the success.
    (confirmation,) = FinancialAdviceConfirmation.objects.all()
    assert confirmation.capture_status_code == "FAILED"
    assert payments.payment_status(confirmation.payment).state == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "advice, status, word",
    [
        (_advice("no-such-reference"), 404, "authorization_reference"),
        (_advice(currency="USD"), 200, "currency"),
        (_advice(eft_data=[]), 200, "eft_data"),
        (_advice(capture_status_code="MAYBE"), 200, "capture_status_code"),
        (_advice(total_costs={"incl_vat": 1}), 200, "total_costs"),
    ],
)
def test_a_confirmation_we_cannot_tie_or_read_is_refused(operator, ptp, rate, advice, status, word):
    _paid_session(operator, ptp)
    response = _call("POST", "payments/financial-advice-confirmations", advice)
    assert response.status_code == status
    assert response.json()["status_code"] == 2001 and word in response.json()["status_message"]
    assert not FinancialAdviceConfirmation.objects.exists()


@pytest.mark.django_db
def test_a_capture_that_differs_from_our_cdr_is_flagged(operator, ptp, rate):
    session, payment = _paid_session(operator, ptp)
    sessions.cdr_create(session_id=session.pk)
    _call("POST", "payments/financial-advice-confirmations", _advice())  # 4.40 captured
    payment.refresh_from_db()
    status = payments.payment_status(payment)
    assert status.mismatch and "check with the PTP" in status.words


# -- our invoice ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_invoice_the_terminal_links_to_shows_the_card_payment_once_confirmed(
    operator, ptp, rate
):
    session, payment = _paid_session(operator, ptp)
    terminal = payment.terminal
    url = f"/roaming/invoices/{terminal.invoice_key}/ref-9"
    assert Client().get(url).status_code == 404  # no CDR, no invoice yet

    sessions.cdr_create(session_id=session.pk)
    payment.refresh_from_db()
    page = Client().get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert payment.invoice_reference_id in html and "EUR 5.45" in html and 'id="awaiting"' in html
    # The driver has no account and no zone: times are the location's, and say which zone.
    assert when(session.started_at, operator["public"].timezone) in html

    _call(
        "POST",
        "payments/financial-advice-confirmations",
        _advice(total_costs={"excl_vat": 4.5, "incl_vat": 5.45}),
    )
    html = Client().get(url).content.decode()
    assert 'id="paid"' in html and "AID: 1234" in html
    assert Client().get("/roaming/invoices/wrong-key/ref-9").status_code == 404
    assert Client().get(f"/roaming/invoices/{terminal.invoice_key}/").status_code == 404


# -- the REST API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_lists_terminals_and_assigns_evses_within_the_tenant(operator, ptp):
    terminal = _terminal(ptp, operator)
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    viewer = MembershipFactory(organization=operator["org"], role="viewer").user
    stranger = MembershipFactory(role="owner").user
    api = APIClient()
    url = f"/api/v1/roaming/terminals/{terminal.pk}/"
    body = {"evses": [{"charger": "PUB-1", "connector_id": 1}]}

    api.force_authenticate(stranger)
    assert api.get("/api/v1/roaming/terminals/").json()["results"] == []
    assert api.patch(url, body, format="json").status_code == 404
    api.force_authenticate(viewer)
    assert api.get(url).status_code == 200
    assert api.patch(url, body, format="json").status_code == 403
    api.force_authenticate(owner)
    private = api.patch(url, {"evses": [{"charger": "PRIV-1", "connector_id": 1}]}, format="json")
    assert private.status_code == 400
    done = api.patch(url, body, format="json")
    assert done.status_code == 200 and done.json()["assigned"]["evse_uids"] == ["PUB-1*1"]
    paid = api.get("/api/v1/roaming/terminal-payments/")
    assert paid.status_code == 200 and paid.json()["results"] == []


# -- activating and deactivating a terminal (the CPO's calls to the PTP) --------------------------


@pytest.mark.django_db
def test_we_ask_the_ptp_to_activate_a_terminal_and_its_creation_gets_our_assignment(
    operator, ptp, settings
):
    settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID = "NL", "EVP"
    activation = payments.terminal_activate(
        partner=ptp,
        reference="Term-SerialNumber",
        location_ids=[],
        evses=[(operator["cp_public"].pk, 2)],
    )
    # mod_payments "POST Activate Terminal Method": {terminals}/activate with a Terminal, no id.
    asked = Delivery.objects.get(partner=ptp, module="payments")
    assert (asked.method, asked.path) == ("POST", "/terminals/activate")
    assert "terminal_id" not in asked.body
    assert asked.body["reference"] == "Term-SerialNumber"
    assert (asked.body["country_code"], asked.body["party_id"]) == ("NL", "EVP")
    assert (asked.body["location_ids"], asked.body["evse_uids"]) == ([], ["PUB-1*2"])
    spec.check_object(
        {**asked.body, "terminal_id": "x"},
        "mod_payments.asciidoc",
        "mod_payments_terminal_object",
        V230,
    )

    # The PTP answers by creating the terminal on our side, with the reference we gave.
    example = spec.example("payment_terminal_activate.json", V230)
    created = _call("POST", "payments/terminals", {**example, "location_ids": []})
    assert created.status_code == 201
    terminal = Terminal.objects.get(partner=ptp)
    activation.refresh_from_db()
    assert activation.terminal_id == terminal.pk
    read = _call("GET", f"payments/terminals/{terminal.terminal_id}").json()["data"]
    assert read["evse_uids"] == ["PUB-1*2"]


@pytest.mark.django_db
def test_an_activation_for_a_charger_not_on_roaming_is_refused_and_nothing_is_asked(operator, ptp):
    with pytest.raises(payments.InvalidAssignment):
        payments.terminal_activate(
            partner=ptp, reference="SN-1", location_ids=[], evses=[(operator["cp_private"].pk, 1)]
        )
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_deactivated_terminal_serves_nothing_and_the_ptp_is_told(operator, ptp):
    terminal = _terminal(ptp, operator, terminal_id="T-BROKEN")
    payments.terminal_assign(terminal=terminal, location_ids=[operator["public"].pk], evses=[])
    Delivery.objects.all().delete()

    payments.terminal_deactivate(terminal=terminal)

    told = Delivery.objects.get(partner=ptp, module="payments")
    assert (told.method, told.path) == ("POST", "/terminals/T-BROKEN/deactivate")
    terminal.refresh_from_db()
    assert terminal.deactivated_at is not None and not terminal.assignments.exists()
    # Its EVSEs no longer take cards there, and a start through it is refused.
    location = _call("GET", f"locations/{operator['public'].pk}").json()["data"]
    assert all("CREDIT_CARD_PAYABLE" not in e["capabilities"] for e in location["evses"])
    answer = _start(operator, reference="after-deactivation")
    assert answer["data"]["result"] == "REJECTED" and not TerminalPayment.objects.exists()
    # The PTP creating it again brings it back (to be assigned anew).
    _terminal(ptp, operator, terminal_id="T-BROKEN")
    terminal.refresh_from_db()
    assert terminal.deactivated_at is None


@pytest.mark.django_db
def test_the_portal_and_api_activate_and_deactivate_within_the_tenant(operator, ptp):
    terminal = _terminal(ptp, operator, terminal_id="T-API")
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    viewer = MembershipFactory(organization=operator["org"], role="viewer").user
    stranger = MembershipFactory(role="owner").user
    api = APIClient()
    body = {
        "partner": ptp.pk,
        "reference": "SN-42",
        "evses": [{"charger": "PUB-1", "connector_id": 1}],
    }
    api.force_authenticate(stranger)
    assert api.post("/api/v1/roaming/terminals/activate/", body, format="json").status_code == 400
    assert api.post(f"/api/v1/roaming/terminals/{terminal.pk}/deactivate/").status_code == 404
    api.force_authenticate(viewer)
    assert api.post(f"/api/v1/roaming/terminals/{terminal.pk}/deactivate/").status_code == 403
    api.force_authenticate(owner)
    asked = api.post("/api/v1/roaming/terminals/activate/", body, format="json")
    assert asked.status_code == 201 and asked.json()["terminal_id"] is None
    nowhere = api.post("/api/v1/roaming/terminals/activate/", {**body, "evses": []}, format="json")
    assert nowhere.status_code == 400
    done = api.post(f"/api/v1/roaming/terminals/{terminal.pk}/deactivate/")
    assert done.status_code == 200 and done.json()["deactivated_at"]
    refused = api.patch(f"/api/v1/roaming/terminals/{terminal.pk}/", body, format="json")
    assert refused.status_code == 400 and "deactivated" in str(refused.json())

    # The portal: the partner page shows it deactivated and the activation waiting.
    web = Client()
    web.force_login(owner)
    page = web.get(f"/roaming/partners/{ptp.pk}/").content.decode()
    assert "Deactivated" in page and "SN-42" in page and "waiting for Terminals Inc" in page
    posted = web.post(
        f"/roaming/partners/{ptp.pk}/terminals/activate/",
        {"activate-reference": "SN-43", "activate-evses": [f"{operator['cp_public'].pk}:2"]},
    )
    assert posted.status_code == 302
    assert Delivery.objects.filter(path="/terminals/activate").count() == 2
    web.force_login(stranger)
    assert web.post(f"/roaming/partners/{ptp.pk}/terminals/activate/", {}).status_code == 404
