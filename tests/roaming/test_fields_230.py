"""Every object we answer or push in OCPI 2.3.0, checked field by field against the 2.3.0 text
(tests/roaming/spec_types.py): names, cardinality, types, lengths, enum values, nested classes
down to the leaves. The objects are the real answers of /ocpi/2.3.0/... and the real outbox
bodies for a partner on 2.3.0, made from data that fills every field we can fill."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from authorization.models import Token
from billing.models import Rate
from chargers.models import ChargingSession
from roaming import commands, mapping, payments, services, sessions, versions
from roaming.models import (
    Delivery,
    EvseProfile,
    ParkingEvse,
    ParkingPlace,
    RemoteCommand,
    TerminalAssignment,
    TerminalPayment,
)
from roaming.versions import v230
from tests.roaming import spec, spec_types
from tests.roaming.conftest import auth, connected_partner

V230 = "2.3.0"
PTP_TOKEN = "ptp-token-fields-230"


def _get(path, token=None):
    response = Client().get(f"/ocpi/{path}", HTTP_AUTHORIZATION=auth(token) if token else auth())
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.fixture
def full(operator, partner):
    """The public location with every field we fill: opening hours, energy mix, help phone,
    connector data, parking places (one for people with disabilities), a PTP terminal serving an
    EVSE, a price with every component, and the partner on 2.3.0."""
    partner.version = V230
    partner.save(update_fields=["version"])
    prop = operator["public"]
    profile = prop.ocpi_profile
    profile.open_24_7 = False
    profile.regular_hours = [
        {"weekday": day, "period_begin": "07:00", "period_end": "22:00"} for day in range(1, 8)
    ]
    profile.exceptional_closings = [
        {"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}
    ]
    profile.energy_mix = {
        "is_green_energy": True,
        "supplier_name": "Greenchoice",
        "energy_product_name": "Wind",
    }
    profile.help_phone = "+31 30 1234567"
    profile.operator_name = "Operator Charging"
    profile.save()
    EvseProfile.objects.create(
        charger=operator["cp_public"],
        standard="IEC_62196_T2_COMBO",
        format="CABLE",
        power_type="DC",
        max_voltage=400,
        max_amperage=125,
        max_electric_power=50000,
        parking_restrictions=["EV_ONLY", "EMPLOYEES"],
    )
    disabled = ParkingPlace.objects.create(
        property=prop,
        physical_reference="P-DIS-1",
        vehicle_types=["PERSONAL_VEHICLE", "DISABLED"],
        restricted_to_type=True,
        reservation_required=False,
        max_vehicle_weight=3500,
        max_vehicle_height=250,
        max_vehicle_length=600,
        max_vehicle_width=240,
        parking_space_length=650,
        parking_space_width=360,
        dangerous_goods_allowed=False,
        direction="PERPENDICULAR",
        drive_through=False,
        time_limit=120,
        roofed=True,
        lighting=True,
        refrigeration_outlet=False,
        standards=["PAS 1899"],
    )
    van = ParkingPlace.objects.create(property=prop, vehicle_types=["VAN"])
    ParkingEvse.objects.create(
        parking=disabled, charger=operator["cp_public"], evse_position="LEFT"
    )
    ParkingEvse.objects.create(parking=van, charger=operator["cp_guest"])
    rate = Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        connection_fee=Decimal("0.50"),
        energy_price_per_kwh=Decimal("0.39"),
        time_price_per_hour=Decimal("1.20"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        idle_fee_cap=Decimal("12.00"),
        tax_percent=Decimal("21"),
        prices_include_tax=True,
    )
    ptp = connected_partner(
        operator["org"],
        token=PTP_TOKEN,
        name="Terminals Inc",
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version=V230,
        base="https://ptp.example/ocpi/2.3.0",
    )
    ptp.endpoints["payments"] = {"SENDER": "https://ptp.example/ocpi/2.3.0/payments"}
    ptp.save(update_fields=["endpoints"])
    terminal, _ = payments.terminal_receive(
        partner=ptp,
        body={
            "terminal_id": "T-1",
            "customer_reference": "Garage 1",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "postal_code": "3511 AB",
            "country": "NLD",
            "coordinates": {"latitude": "52.090737", "longitude": "5.121420"},
            "invoice_creator": "CPO",
            "reference": "SN-0001",
            "last_updated": "2026-01-01T00:00:00Z",
        },
    )
    TerminalAssignment.objects.create(
        terminal=terminal, property=prop, charger=operator["cp_public"], connector_id=1
    )
    return {"partner": partner, "ptp": ptp, "terminal": terminal, "rate": rate}


# -- versions, credentials ------------------------------------------------------------------------


@pytest.mark.django_db
def test_versions_and_the_2_3_0_details_field_by_field(partner):
    for version in _get("versions"):
        spec_types.check(version, "version_information_endpoint_version_class")
    details = _get(V230)
    spec_types.check(details, "version_information_get_details_endpoint_data")
    assert details["version"] == V230


@pytest.mark.django_db
def test_our_2_3_0_credentials_field_by_field(partner):
    spec_types.check(_get(f"{V230}/credentials"), "credentials_credentials_object")
    ours = services.our_credentials(
        token="t" * 64, versions_url="https://cpo.example/ocpi/versions", version=V230
    )
    spec_types.check(ours, "credentials_credentials_object")


# -- locations ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_our_2_3_0_locations_evses_and_connectors_field_by_field(operator, full):
    (location,) = _get(f"{V230}/locations")
    spec_types.check(location, "mod_locations_location_object")
    # What the data asked for is there, so the check walked it.
    assert {
        p["physical_reference"] for p in location["parking_places"] if "physical_reference" in p
    } == {"P-DIS-1"}
    assert location["opening_times"]["regular_hours"] and location["energy_mix"]
    assert location["help_phone"] == "+31 30 1234567"
    evses = {evse["uid"]: evse for evse in location["evses"]}
    served = evses["PUB-1*1"]
    assert {"CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE"} <= set(served["capabilities"])
    assert served["parking"] == [
        {
            "parking_id": str(ParkingPlace.objects.get(physical_reference="P-DIS-1").pk),
            "evse_position": "LEFT",
        }
    ]
    assert served["parking_restrictions"] == ["EV_ONLY", "EMPLOYEES"]
    assert served["connectors"][0]["power_type"] == "DC"
    one = _get(f"{V230}/locations/{location['id']}")
    spec_types.check(one, "mod_locations_location_object")
    evse = _get(f"{V230}/locations/{location['id']}/PUB-1*1")
    spec_types.check(evse, "mod_locations_evse_object")
    connector = _get(f"{V230}/locations/{location['id']}/PUB-1*1/{evse['connectors'][0]['id']}")
    spec_types.check(connector, "mod_locations_connector_object")


@pytest.mark.django_db
def test_location_and_status_pushes_to_a_2_3_0_partner_field_by_field(operator, full):
    services.location_push_queue(property_id=operator["public"].pk)
    services.evse_status_queue(charger_id=operator["cp_public"].pk, connector_id=1)
    pushes = list(Delivery.objects.filter(partner=full["partner"], module="locations"))
    assert {p.method for p in pushes} == {"PUT", "PATCH"}
    for push in pushes:
        if push.method == "PUT":
            spec_types.check(push.body, "mod_locations_location_object")
        else:  # an EVSE's status: a part of the EVSE object
            assert push.path.endswith("/PUB-1*1"), push.path
            spec_types.check(push.body, "mod_locations_evse_object", partial=True)


# -- tariffs --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("included", [True, False])
def test_our_2_3_0_tariffs_field_by_field_in_both_tax_modes(operator, full, included):
    Rate.objects.filter(pk=full["rate"].pk).update(prices_include_tax=included)
    (tariff,) = _get(f"{V230}/tariffs")
    spec_types.check(tariff, "mod_tariffs_tariff_object")
    assert tariff["tax_included"] == ("YES" if included else "NO")
    assert {c["type"] for e in tariff["elements"] for c in e["price_components"]} == {
        "FLAT",
        "ENERGY",
        "TIME",
        "PARKING_TIME",
    }
    services.tariffs_push_queue(partner_id=full["partner"].pk)
    (push,) = Delivery.objects.filter(partner=full["partner"], module="tariffs")
    spec_types.check(push.body, "mod_tariffs_tariff_object")


# -- sessions and CDRs ------------------------------------------------------------------------------


def _finished_session(operator, partner):
    card = Token.objects.create(uid="RFID-FIELDS-1", msp=partner.msp)
    now = timezone.now().replace(microsecond=0)
    return ChargingSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=4711,
        id_tag=card.uid,
        id_tag_status="Accepted",
        token=card,
        started_at=now - timedelta(hours=2),
        stopped_at=now - timedelta(minutes=10),
        received_start_at=now - timedelta(hours=2),
        received_stop_at=now - timedelta(minutes=10),
        meter_start_wh=1000,
        meter_stop_wh=23500,
        status=ChargingSession.Status.COMPLETED,
    )


@pytest.mark.django_db
def test_our_2_3_0_sessions_and_cdrs_field_by_field_pulled_and_pushed(operator, full):
    session = _finished_session(operator, full["partner"])
    sessions.session_push_queue(session_id=session.pk)
    cdr = sessions.cdr_create(session_id=session.pk)
    assert cdr is not None and cdr.version == V230

    (pulled_session,) = _get(f"{V230}/sessions?date_from=2000-01-01T00:00:00Z")
    spec_types.check(pulled_session, "mod_sessions_session_object")
    assert pulled_session["total_cost"]["taxes"][0]["name"] == "VAT"
    (pulled_cdr,) = _get(f"{V230}/cdrs?date_from=2000-01-01T00:00:00Z")
    spec_types.check(pulled_cdr, "mod_cdrs_cdr_object")
    assert pulled_cdr["tariffs"][0]["tax_included"] == "YES"
    pushed = {p.module: p.body for p in Delivery.objects.filter(partner=full["partner"])}
    spec_types.check(pushed["sessions"], "mod_sessions_session_object")
    spec_types.check(pushed["cdrs"], "mod_cdrs_cdr_object")


# -- commands and tokens --------------------------------------------------------------------------


def _post(path, body, token=None, method="POST"):
    return Client().generic(
        method,
        f"/ocpi/{path}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token) if token else auth(),
    )


TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "APP-FIELDS-1",
    "type": "APP_USER",
    "contract_id": "DE-EMS-C0099",
    "visual_number": "DE-EMS-C0099",
    "issuer": "eMSP",
    "group_id": "G1",
    "valid": True,
    "whitelist": "ALLOWED",
    "language": "nl",
    "last_updated": "2026-01-01T00:00:00Z",
}


# The authorization decision is written from another thread: a transaction of its own.
@pytest.mark.django_db(transaction=True)
def test_our_2_3_0_tokens_and_command_answers_field_by_field(operator, full):
    put = Client().put(
        f"/ocpi/{V230}/tokens/DE/EMS/APP-FIELDS-1?type=APP_USER",
        json.dumps(TOKEN),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert put.json()["status_code"] == 1000, put.content
    token = _get(f"{V230}/tokens/DE/EMS/APP-FIELDS-1?type=APP_USER")
    spec_types.check(token, "mod_tokens_token_object")

    # A card the eMSP blocked: the answer comes at once (REJECTED, in words), no charger waited for.
    blocked = {**TOKEN, "valid": False}
    put = _post(f"{V230}/tokens/DE/EMS/APP-FIELDS-1?type=APP_USER", blocked, method="PUT")
    assert put.json()["status_code"] == 1000, put.content
    answer = _post(
        f"{V230}/commands/START_SESSION",
        {
            "response_url": "https://emsp.example/ocpi/emsp/2.3.0/commands/START_SESSION/1",
            "token": blocked,
            "location_id": str(operator["public"].pk),
            "evse_uid": "PUB-1*1",
        },
    )
    assert answer.status_code == 200, answer.content
    spec_types.check(answer.json()["data"], "mod_commands_commandresponse_object")
    assert answer.json()["data"]["result"] == "REJECTED"
    refused = _post(
        f"{V230}/commands/STOP_SESSION",
        {"response_url": "https://emsp.example/ocpi/emsp/2.3.0/commands/STOP/1", "session_id": "x"},
    )
    spec_types.check(refused.json()["data"], "mod_commands_commandresponse_object")
    assert refused.json()["data"]["result"] == "UNKNOWN_SESSION"


@pytest.mark.django_db
def test_the_command_result_we_push_field_by_field(operator, full):
    answer = _post(
        f"{V230}/commands/CANCEL_RESERVATION",
        {
            "response_url": "https://emsp.example/ocpi/emsp/2.3.0/commands/CANCEL/7",
            "reservation_id": "never-made",
        },
    )
    spec_types.check(answer.json()["data"], "mod_commands_commandresponse_object")
    remote = RemoteCommand.objects.get(partner=full["partner"])
    assert commands.command_execute(remote_command_id=remote.pk) == "UNKNOWN_RESERVATION"
    (result,) = Delivery.objects.filter(partner=full["partner"], module="commands")
    spec_types.check(result.body, "mod_commands_commandresult_object")
    assert result.body["message"][0]["language"] == "en"


# -- payments ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_our_2_3_0_terminals_and_confirmations_field_by_field(operator, full):
    terminal = _get(f"{V230}/payments/terminals/T-1", token=PTP_TOKEN)
    spec_types.check(terminal, "mod_payments_terminal_object")
    assert terminal["evse_uids"] == ["PUB-1*1"]
    spec_types.check(payments.terminal_object(full["terminal"]), "mod_payments_terminal_object")


@pytest.mark.django_db
def test_what_we_push_to_a_ptp_field_by_field(operator, full, settings):
    settings.SITE_URL = "https://cpo.example"
    payments.terminal_assign(
        terminal=full["terminal"],
        location_ids=[],
        evses=[(operator["cp_public"].pk, 1), (operator["cp_public"].pk, 2)],
    )
    payments.terminal_activate(
        partner=full["ptp"],
        reference="SN-0002",
        location_ids=[operator["public"].pk],
        evses=[],
    )
    pushes = {p.path: p.body for p in Delivery.objects.filter(partner=full["ptp"])}
    # The assignment (PATCH) is a part of the Terminal; the activation is a Terminal without
    # its terminal_id (mod_payments "POST Activate Terminal": the PTP sets it).
    assignment = pushes["/terminals/T-1"]
    spec_types.check(assignment, "mod_payments_terminal_object", partial=True)
    assert assignment["evse_uids"] == ["PUB-1*1", "PUB-1*2"]
    assert assignment["invoice_base_url"].startswith("https://cpo.example/")
    activation = pushes["/terminals/activate"]
    spec_types.check(
        {"terminal_id": "set-by-the-ptp", **activation}, "mod_payments_terminal_object"
    )
    assert "terminal_id" not in activation


@pytest.mark.django_db
def test_a_terminal_paid_cdr_and_the_confirmation_we_answer_field_by_field(operator, full):
    card = Token.objects.create(
        uid="PTAAAAAAAAAAAAAAAA01", msp=full["ptp"].msp, single_session=True
    )
    session = _finished_session(operator, full["partner"])
    ChargingSession.objects.filter(pk=session.pk).update(token=card, id_tag=card.uid)
    TerminalPayment.objects.create(
        organization=operator["org"],
        partner=full["ptp"],
        terminal=full["terminal"],
        authorization_reference="pp-100100-1948213567",
        token=card,
        token_data={
            "country_code": "AT",
            "party_id": "PTP",
            "uid": "PTP-CARD-1",
            "type": "AD_HOC_USER",
            "contract_id": "AT-PTP-1",
            "issuer": "Terminals Inc",
            "valid": True,
            "whitelist": "NEVER",
            "last_updated": "2026-01-01T00:00:00Z",
        },
        charger=operator["cp_public"],
        connector_id=1,
    )
    cdr = sessions.cdr_create(session_id=session.pk)
    assert cdr is not None and cdr.partner_id == full["ptp"].pk
    spec_types.check(cdr.data, "mod_cdrs_cdr_object")
    assert cdr.data["invoice_reference_id"] and cdr.data["auth_method"] == "COMMAND"

    # The text's own example writes total_costs as {excl_vat, incl_vat}; we take it, and answer
    # the confirmation in 2.3.0's Price class, the same amounts.
    advice = spec.example("payment_financial_advice_confirmation_create.json", V230)
    posted = _post(f"{V230}/payments/financial-advice-confirmations", advice, token=PTP_TOKEN)
    assert posted.status_code == 201, posted.content
    answered = _get(f"{V230}/payments/financial-advice-confirmations/{advice['id']}", PTP_TOKEN)
    spec_types.check(answered, "mod_payments_financial_advice_confirmation_object")
    assert answered["total_costs"] == {
        "before_taxes": 4,
        "taxes": [{"name": "VAT", "amount": 0.4}],
    }
    assert {k: v for k, v in answered.items() if k != "total_costs"} == {
        k: v for k, v in advice.items() if k != "total_costs"
    }


@pytest.mark.django_db
def test_a_cdr_written_in_2_2_1_is_a_2_3_0_cdr_for_a_partner_that_moved(operator, full):
    """A CDR (and a push still waiting) from before the move is served and sent in 2.3.0 shapes."""
    partner = full["partner"]
    partner.version = "2.2.1"
    partner.save(update_fields=["version"])
    cdr = sessions.cdr_create(session_id=_finished_session(operator, partner).pk)
    assert cdr is not None and cdr.version == "2.2.1" and "excl_vat" in cdr.data["total_cost"]
    with transaction.atomic():
        services._pending_to_version(partner, V230)
        partner.version = V230
        partner.save(update_fields=["version"])

    (served,) = _get(f"{V230}/cdrs?date_from=2000-01-01T00:00:00Z")
    spec_types.check(served, "mod_cdrs_cdr_object")
    (waiting,) = Delivery.objects.filter(partner=partner, module="cdrs")
    spec_types.check(waiting.body, "mod_cdrs_cdr_object")
    assert served["total_cost"] == waiting.body["total_cost"]
    assert served["total_cost"]["before_taxes"] == cdr.data["total_cost"]["excl_vat"]


def test_a_cdr_with_signed_meter_values_and_every_price_part_follows_the_text():
    moment = datetime(2026, 3, 1, 8, tzinfo=UTC)
    facts = mapping.SessionFacts(
        id="42",
        started_at=moment,
        stopped_at=moment + timedelta(hours=1, minutes=40),
        token=mapping.CdrTokenFacts("DE", "EMS", "RFID0001", "RFID", "DE-EMS-C0001"),
        auth_method="WHITELIST",
        location_id="3",
        evse_uid="PUB-1*1",
        cost=mapping.CostFacts(
            currency="EUR",
            subtotal=Decimal("8.60"),
            total=Decimal("10.41"),
            fixed=Decimal("1.00"),
            energy=Decimal("4.20"),
            time=Decimal("2.00"),
            parking=Decimal("1.40"),
            energy_wh=Decimal("12000"),
            charging_seconds=3600,
            idle_seconds=2400,
            tax_percent=Decimal("21"),
        ),
        active=False,
        last_updated=moment + timedelta(hours=2),
    )
    signed = mapping.SignedDataFacts(
        encoding_method="OCMF",
        encoding_method_version=1,
        public_key="MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
        url="https://cpo.example/transparency/42",
        values=(
            mapping.SignedValueFacts("Start", 'OCMF|{"FV":"1.0"}', "c2lnbmVk"),
            mapping.SignedValueFacts("End", 'OCMF|{"FV":"1.0"}', "c2lnbmVk"),
        ),
    )
    rate = mapping.RateFacts(
        id="7",
        currency="EUR",
        prices=mapping.TariffPrices.tax_on_top(
            tax_percent=Decimal("21"),
            connection_fee=Decimal("1.00"),
            energy_per_kwh=Decimal("0.35"),
            time_per_hour=Decimal("2.00"),
            idle_per_minute=Decimal("0.10"),
        ),
        idle_grace_minutes=15,
        valid_from=moment - timedelta(days=30),
        valid_until=moment + timedelta(days=30),
        last_updated=moment - timedelta(days=30),
        preauthorize_amount=Decimal("45.00"),
    )
    location = {
        "id": "3",
        "name": "Public garage",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 AB",
        "country": "NLD",
        "coordinates": {"latitude": "52.090737", "longitude": "5.121420"},
        "evse_uid": "PUB-1*1",
        "evse_id": "NL*EVB*EPUB1*1",
        "connector_id": "1",
        "connector_standard": "IEC_62196_T2",
        "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    }
    cdr = v230.cdr(
        facts,
        cdr_id="CDR-42",
        location=location,
        rate=rate,
        signed=signed,
        party=mapping.Party("NL", "EVB"),
        created=moment + timedelta(hours=2),
        invoice_reference_id="EVB-2026-T000042",
    )
    spec_types.check(cdr, "mod_cdrs_cdr_object")
    for name in ("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost"):
        assert set(cdr[name]) == {"before_taxes"}, name  # each part: before taxes only
    assert cdr["signed_data"]["signed_values"][1]["nature"] == "End"
    spec_types.check(
        v230.session(facts, party=mapping.Party("NL", "EVB")), "mod_sessions_session_object"
    )


# -- the check itself: it refuses what the text does not allow -----------------------------------


@pytest.mark.parametrize(
    "change, word",
    [
        (lambda t: t.update(surprise=1), "not in mod_tariffs_tariff_object"),
        (lambda t: t.pop("tax_included"), "required"),
        (lambda t: t.update(tax_included="MAYBE"), "is not one of"),
        (lambda t: t.update(id="x" * 37), "at most 36"),
        (lambda t: t.update(id="caf\u00e9"), "ASCII"),
        (lambda t: t.update(last_updated="2026-01-01 10:00:00+01:00"), "DateTime"),
        (lambda t: t.update(elements=[]), "at least one"),
        (lambda t: t["elements"][0]["price_components"][0].update(step_size=1.5), "an int"),
        (lambda t: t["elements"][0]["price_components"][0].update(price="0.3"), "number"),
        (lambda t: t.update(tariff_alt_text={"language": "en", "text": "x"}), "a list"),
        (lambda t: t["tariff_alt_text"][0].update(text="a\nb"), "printable"),
        (lambda t: t.update(min_price={"excl_vat": 1}), "not in mod_tariffs_pricelimit_class"),
    ],
)
def test_the_field_check_refuses_what_the_text_does_not_allow(change, word):
    tariff = {
        "country_code": "NL",
        "party_id": "EVB",
        "id": "7",
        "currency": "EUR",
        "tariff_alt_text": [{"language": "en", "text": "0.30 per kWh"}],
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
        "tax_included": "NO",
        "last_updated": "2026-01-01T10:00:00Z",
    }
    spec_types.check(tariff, "mod_tariffs_tariff_object")  # the untouched one passes
    change(tariff)
    with pytest.raises(AssertionError, match=word):
        spec_types.check(tariff, "mod_tariffs_tariff_object")


@pytest.mark.django_db
def test_a_long_address_is_cut_to_the_lengths_of_the_text(operator, full):
    # A property's address may hold 400 characters; a Location's 255, a CdrLocation's 45.
    type(operator["public"]).objects.filter(pk=operator["public"].pk).update(
        address="Industrieweg 1, " + "Bedrijventerrein De Lange Baan " * 12
    )
    (location,) = _get(f"{V230}/locations")
    spec_types.check(location, "mod_locations_location_object")
    assert len(location["address"]) == 255
    cdr = sessions.cdr_create(session_id=_finished_session(operator, full["partner"]).pk)
    assert cdr is not None
    spec_types.check(cdr.data, "mod_cdrs_cdr_object")
    assert len(cdr.data["cdr_location"]["address"]) == 45


# -- the same data in 2.2.1, against the 2.2.1 text -------------------------------------------------


@pytest.mark.django_db
def test_the_same_data_in_2_2_1_follows_the_2_2_1_text_field_by_field(operator, full):
    """The one domain in the older version's shapes: every object a 2.2.1 partner pulls, checked
    against the 2.2.1 tables (its Price class, its ParkingRestriction values, no 2.3.0 fields)."""
    partner = full["partner"]
    partner.version = "2.2.1"
    partner.save(update_fields=["version"])

    def check(data, anchor):
        spec_types.check(data, anchor, version="2.2.1")

    check(_get("2.2.1"), "version_information_get_details_endpoint_data")
    check(_get("2.2.1/credentials"), "credentials_credentials_object")
    (location,) = _get("2.2.1/locations")
    check(location, "mod_locations_location_object")
    served = next(evse for evse in location["evses"] if evse["uid"] == "PUB-1*1")
    assert served["parking_restrictions"] == ["EV_ONLY"]  # EMPLOYEES is 2.3.0's
    (tariff,) = _get("2.2.1/tariffs")
    check(tariff, "mod_tariffs_tariff_object")
    session = _finished_session(operator, partner)
    cdr = sessions.cdr_create(session_id=session.pk)
    assert cdr is not None and cdr.version == "2.2.1"
    (pulled_session,) = _get("2.2.1/sessions?date_from=2000-01-01T00:00:00Z")
    check(pulled_session, "mod_sessions_session_object")
    (pulled_cdr,) = _get("2.2.1/cdrs?date_from=2000-01-01T00:00:00Z")
    check(pulled_cdr, "mod_cdrs_cdr_object")
    assert set(pulled_cdr["total_cost"]) == {"excl_vat", "incl_vat"}
    for push in Delivery.objects.filter(partner=partner, module__in=("sessions", "cdrs")):
        anchor = "mod_cdrs_cdr_object" if push.module == "cdrs" else "mod_sessions_session_object"
        check(push.body, anchor)


@pytest.mark.django_db
def test_a_cdr_written_in_2_3_0_is_a_2_2_1_cdr_when_read_in_2_2_1(operator, full):
    """Both URLs answer every partner: a CDR sealed in 2.3.0 read at /ocpi/2.2.1/cdrs is the
    same CDR in 2.2.1's shapes (the same totals; the tariff's stated prices incl. tax become
    prices excl. VAT by billing's one split)."""
    cdr = sessions.cdr_create(session_id=_finished_session(operator, full["partner"]).pk)
    assert (
        cdr is not None and cdr.version == V230 and cdr.data["tariffs"][0]["tax_included"] == "YES"
    )

    (old,) = _get("2.2.1/cdrs?date_from=2000-01-01T00:00:00Z")

    spec_types.check(old, "mod_cdrs_cdr_object", version="2.2.1")
    total = cdr.data["total_cost"]
    assert Decimal(str(old["total_cost"]["excl_vat"])) == Decimal(str(total["before_taxes"]))
    assert Decimal(str(old["total_cost"]["incl_vat"])) == Decimal(str(total["before_taxes"])) + sum(
        Decimal(str(t["amount"])) for t in total["taxes"]
    )
    energy = next(
        c for c in old["tariffs"][0]["elements"][0]["price_components"] if c["type"] == "ENERGY"
    )
    assert energy == {"type": "ENERGY", "price": 0.3223, "vat": 21, "step_size": 1}  # 0.39 / 1.21
    (same,) = _get(f"{V230}/cdrs?date_from=2000-01-01T00:00:00Z")
    assert same == cdr.data  # in its own version, as sealed


def test_a_cdr_goes_from_2_2_1_to_2_3_0_and_back_with_the_same_amounts():
    old = {
        "id": "CDR-1",
        "total_cost": {"excl_vat": 4.5, "incl_vat": 5.45},
        "total_energy_cost": {"excl_vat": 3.5},
        "tariffs": [
            {
                "id": "7",
                "elements": [
                    {
                        "price_components": [
                            {"type": "ENERGY", "price": 0.35, "vat": 21, "step_size": 1}
                        ]
                    }
                ],
            }
        ],
    }
    there = versions.convert("cdrs", old, written_in="2.2.1", to=V230)
    assert there["total_cost"]["taxes"][0]["amount"] == 0.95
    assert versions.convert("cdrs", there, written_in=V230, to="2.2.1") == old
    assert versions.convert("locations", {"id": "1"}, written_in=V230, to="2.2.1") == {"id": "1"}


@pytest.mark.django_db
def test_a_running_session_in_2_3_0_field_by_field(operator, full):
    session = _finished_session(operator, full["partner"])
    ChargingSession.objects.filter(pk=session.pk).update(
        stopped_at=None,
        received_stop_at=None,
        meter_stop_wh=None,
        status=ChargingSession.Status.ACTIVE,
    )
    sessions.session_push_queue(session_id=session.pk)

    (pulled,) = _get(f"{V230}/sessions?date_from=2000-01-01T00:00:00Z")
    spec_types.check(pulled, "mod_sessions_session_object")
    assert pulled["status"] == "ACTIVE" and "end_date_time" not in pulled
    (pushed,) = Delivery.objects.filter(partner=full["partner"], module="sessions")
    spec_types.check(pushed.body, "mod_sessions_session_object")
