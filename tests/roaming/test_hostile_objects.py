"""Hostile or malformed OCPI objects from roaming partners, in both roles: each is refused in the
OCPI envelope (2001, or the module's own answer) with nothing stored, or, on a pulled page,
skipped so that the page's good objects are still kept; never an HTTP 500 or a task that dies."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import httpx
import pytest
from django.test import Client

from roaming import client, commands, emsp_cdrs, emsp_network
from roaming.models import (
    Delivery,
    FinancialAdviceConfirmation,
    HubClient,
    OcpiLog,
    PartnerCdr,
    PartnerLocation,
    PartnerSession,
    PartnerTariff,
    PushedToken,
    RemoteCommand,
)
from tests.factories import OrganizationFactory, TokenFactory
from tests.roaming import spec
from tests.roaming.conftest import PARTNER_TOKEN, auth, connected_partner
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity
from tests.roaming.test_payments_module import PTP_TOKEN, _advice, _paid_session


def send(method: str, url: str, body, *, token: str = PARTNER_TOKEN, raw: str | None = None):
    text = raw if raw is not None else json.dumps(body)
    return Client().generic(
        method, url, text, content_type="application/json", HTTP_AUTHORIZATION=auth(token)
    )


def token_object(uid: str = "UID1", **fields) -> dict:
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": uid,
        "type": "RFID",
        "contract_id": "DE-EMS-C1",
        "issuer": "eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
        **fields,
    }


@pytest.fixture
def ptp(operator):
    """A payment terminal provider of the operator (as in test_payments_module)."""
    partner = connected_partner(
        operator["org"],
        token=PTP_TOKEN,
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
        base="https://ptp.example/ocpi/2.3.0",
    )
    partner.endpoints["payments"] = {"SENDER": "https://ptp.example/ocpi/2.3.0/payments"}
    partner.save(update_fields=["endpoints"])
    return partner


@pytest.fixture
def org(db):
    org = OrganizationFactory()
    with_identity(org)
    return org


def example(name: str, version: str = "2.2.1", **changes) -> dict:
    return {**copy.deepcopy(spec.example(name, version)), **changes}


# -- as CPO: what eMSPs push ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_text_no_column_keeps_is_refused_with_2001_and_nothing_is_stored(operator, version):
    connected_partner(operator["org"])
    url = f"/ocpi/{version}/tokens/DE/EMS/UID1"
    # A lone surrogate is valid JSON; a NUL in a body not labelled JSON passes the middleware.
    surrogate = send("PUT", url, token_object(issuer="a\ud800b"))
    nul = Client().put(
        url,
        json.dumps(token_object(issuer="a\u0000b")),
        content_type="text/plain",
        HTTP_AUTHORIZATION=auth(),
    )

    for answer in (surrogate, nul):
        assert (answer.status_code, answer.json()["status_code"]) == (400, 2001), answer.content
    assert "surrogate" in surrogate.json()["status_message"]
    assert "NUL" in nul.json()["status_message"]
    assert not PushedToken.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_a_datetime_beyond_the_calendar_in_utc_is_2001(operator, org, when):
    connected_partner(operator["org"])
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    pushed = send("PUT", "/ocpi/2.2.1/tokens/DE/EMS/UID1", token_object(last_updated=when))
    location = send(
        "PUT",
        "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1",
        example("location_example.json", last_updated=when),
        token=CPO_TOKEN,
    )

    assert (pushed.status_code, pushed.json()["status_code"]) == (200, 2001)
    assert (location.status_code, location.json()["status_code"]) == (200, 2001)
    assert not PushedToken.objects.exists() and not PartnerLocation.objects.exists()


@pytest.mark.django_db
def test_the_same_uid_spelt_otherwise_is_refused_not_a_server_error(operator):
    connected_partner(operator["org"])
    first = send("PUT", "/ocpi/2.2.1/tokens/DE/EMS/abc1", token_object("abc1"))
    second = send("PUT", "/ocpi/2.2.1/tokens/DE/EMS/ABC1", token_object("ABC1"))

    assert first.status_code == 201
    assert (second.status_code, second.json()["status_code"]) == (200, 2001), second.content
    assert "abc1" in second.json()["status_message"]
    assert list(PushedToken.objects.values_list("uid", flat=True)) == ["abc1"]


def command(name: str, body: dict):
    return send("POST", f"/ocpi/2.2.1/commands/{name}", body).json()


@pytest.mark.django_db
def test_ids_of_digits_that_are_not_ascii_are_unknown_objects(operator):
    connected_partner(operator["org"])
    base = {"response_url": "https://emsp.example/r/1", "token": token_object()}
    where = str(operator["public"].pk)

    start = command("START_SESSION", {**base, "location_id": "²"})
    evse = command(
        "UNLOCK_CONNECTOR",
        {**base, "location_id": where, "evse_uid": "PUB-1*²", "connector_id": "1"},
    )
    stop = command("STOP_SESSION", {**base, "session_id": "²"})

    assert (start["status_code"], start["data"]["result"]) == (2003, "REJECTED")
    assert (evse["status_code"], evse["data"]["result"]) == (2003, "REJECTED")
    assert (stop["status_code"], stop["data"]["result"]) == (1000, "UNKNOWN_SESSION")
    assert not RemoteCommand.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("party", [("DEX", "EMSP1"), ("²", "E")])
def test_a_command_result_is_addressed_only_to_a_party_the_partner_speaks_for(operator, party):
    connected_partner(operator["org"])
    # CANCEL_RESERVATION reads no token: its body may name any party, of any length or script.
    body = {
        "response_url": "https://127.0.0.1/commands/CANCEL_RESERVATION/1",
        "reservation_id": "R1",
        "token": token_object(country_code=party[0], party_id=party[1]),
    }
    answer = command("CANCEL_RESERVATION", body)
    assert answer["data"]["result"] == "ACCEPTED"
    remote = RemoteCommand.objects.get()

    assert commands.command_execute(remote_command_id=remote.pk) == "UNKNOWN_RESERVATION"

    delivery = Delivery.objects.get(object_key=f"command:{remote.pk}")
    assert (delivery.body["result"], delivery.to_country_code, delivery.to_party_id) == (
        "UNKNOWN_RESERVATION",
        "",
        "",
    )


@pytest.mark.django_db
def test_a_confirmation_beyond_its_column_is_2001_and_one_in_both_price_shapes_reads_back(
    operator, ptp
):
    _paid_session(operator, ptp)
    url = "/ocpi/2.3.0/payments/financial-advice-confirmations"
    huge = _advice(total_costs={"before_taxes": 10**9, "taxes": []})
    both = _advice(total_costs={"before_taxes": "4.24", "excl_vat": "four", "taxes": []})

    refused = send("POST", url, huge, token=PTP_TOKEN)
    assert (refused.status_code, refused.json()["status_code"]) == (200, 2001), refused.content
    assert not FinancialAdviceConfirmation.objects.exists()
    stored = send("POST", url, both, token=PTP_TOKEN)
    assert stored.json()["status_code"] == 1000, stored.content
    read = send("GET", f"{url}/{both['id']}", None, token=PTP_TOKEN, raw="")

    assert read.status_code == 200, read.content
    assert read.json()["data"]["total_costs"]["before_taxes"] == "4.24"


# -- as eMSP: what CPOs and hubs push -------------------------------------------------------------


@pytest.mark.django_db
def test_ids_longer_than_ocpi_allows_are_2001_and_nothing_is_stored(org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    long = "L" * 37
    base = "/ocpi/2.2.1/emsp"
    location = example("location_example.json", id=long)
    tariff = {**example("tariff_13_simple_3hour_5parking.json"), "id": long}
    tariff |= {"country_code": "BE", "party_id": "BEC"}
    session = example("session_example_2_short_finished.json", id=long)

    answers = [
        send("PUT", f"{base}/locations/BE/BEC/{long}", location, token=CPO_TOKEN),
        send("PUT", f"{base}/tariffs/BE/BEC/{long}", tariff, token=CPO_TOKEN),
        send("PUT", f"{base}/sessions/BE/BEC/{long}", session, token=CPO_TOKEN),
    ]

    assert [(a.status_code, a.json()["status_code"]) for a in answers] == [(200, 2001)] * 3
    assert not (
        PartnerLocation.objects.exists()
        or PartnerTariff.objects.exists()
        or PartnerSession.objects.exists()
    )


def hostile_cdrs(cdr: dict) -> list[dict]:
    periods_a_number = {**cdr, "id": "C1", "charging_periods": 5}
    dimension_a_string = copy.deepcopy({**cdr, "id": "C2"})
    dimension_a_string["charging_periods"][0]["dimensions"] = ["ENERGY"]
    type_a_list = copy.deepcopy({**cdr, "id": "C3"})
    type_a_list["charging_periods"][0]["dimensions"][0]["type"] = ["ENERGY"]
    return [periods_a_number, dimension_a_string, type_a_list]


@pytest.mark.django_db
def test_cdrs_of_shapes_the_text_does_not_allow_are_disputes_not_server_errors(org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    cdr = example("cdr_example.json")
    cdr["cdr_token"] = {"country_code": "NL", "party_id": "EVB", "uid": card.uid, "type": "RFID"}
    tariff = cdr["tariffs"][0]
    tariff["elements"][0]["price_components"][0]["step_size"] = "every minute"
    pushed = send("PUT", f"/ocpi/2.2.1/emsp/tariffs/BE/BEC/{tariff['id']}", tariff, token=CPO_TOKEN)
    assert pushed.json()["status_code"] == 1000

    answers = [
        send("POST", "/ocpi/2.2.1/emsp/cdrs", body, token=CPO_TOKEN)
        for body in [*hostile_cdrs(cdr), {**cdr, "id": "C4"}]
    ]

    assert [(a.status_code, a.json()["status_code"]) for a in answers] == [(200, 1000)] * 4
    assert set(PartnerCdr.objects.values_list("status", flat=True)) == {PartnerCdr.Status.DISPUTE}


@pytest.mark.django_db
def test_a_cdr_whose_cost_at_its_tariff_overflows_is_a_dispute(org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    cdr = example("cdr_example.json")
    tariff = cdr["tariffs"][0]
    for element in tariff["elements"]:
        for component in element["price_components"]:
            component["price"] = 99_999_999  # each below the bound, times the volume: not
    send("PUT", f"/ocpi/2.2.1/emsp/tariffs/BE/BEC/{tariff['id']}", tariff, token=CPO_TOKEN)

    answer = send("POST", "/ocpi/2.2.1/emsp/cdrs", cdr, token=CPO_TOKEN)

    assert (answer.status_code, answer.json()["status_code"]) == (200, 1000), answer.content
    row = PartnerCdr.objects.get()
    assert (row.status, row.recomputed) == (PartnerCdr.Status.DISPUTE, None)
    assert "not a usable number" in row.reason


@pytest.mark.django_db
def test_a_hubs_client_info_for_a_party_no_row_can_hold_is_2001(operator):
    connected_partner(operator["org"], role="HUB")
    body = {
        "country_code": "DEX",
        "party_id": "ABCD",
        "role": "CPO",
        "status": "CONNECTED",
        "last_updated": "2026-01-01T00:00:00Z",
    }

    answer = send("PUT", "/ocpi/2.2.1/hubclientinfo/DEX/ABCD", body)

    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001), answer.content
    assert not HubClient.objects.exists()


# -- as eMSP: what we pull --------------------------------------------------------------------------


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stub listens on loopback
    cpo = CpoStub()
    cpo.emsp_token = "our-token-at-cpo"  # what cpo_partner calls it with
    yield cpo
    cpo.close()


def pulling(org, cpo: CpoStub):
    base = f"{cpo.base}/2.2.1"
    return cpo_partner(
        org,
        cpo_country_code="BE",
        cpo_party_id="BEC",
        endpoints={m: {"SENDER": f"{base}/{m}"} for m in CpoStub.LISTS},
    )


@pytest.mark.django_db
def test_a_pulled_page_keeps_its_good_locations_and_skips_the_bad_ones(org, stub, caplog):
    partner = pulling(org, stub)
    good = example("location_example.json")
    stub.locations = [
        {**good, "id": "BAD1", "name": "a\u0000b"},
        {**good, "id": "BAD2", "name": "a\ud800b"},
        {**good, "id": "L" * 37},
        {**good, "id": "BAD4", "last_updated": "9999-12-31T23:59:59-01:00"},
        good,
    ]
    stub.tariffs = [
        {**example("tariff_13_simple_3hour_5parking.json"), "country_code": "BE", "party_id": "BEC"}
    ]

    with caplog.at_level("INFO", logger="roaming.emsp_network"):
        taken = emsp_network.network_pull(partner_id=partner.pk)

    assert taken == (1, 1)
    assert list(PartnerLocation.objects.values_list("location_id", flat=True)) == ["LOC1"]
    words = caplog.text
    assert "NUL character" in words and "lone surrogate" in words
    assert "1 to 36 characters" in words and "not an OCPI DateTime" in words


@pytest.mark.django_db
def test_a_pulled_page_of_sessions_and_cdrs_keeps_its_good_ones(org, stub):
    partner = pulling(org, stub)
    card = TokenFactory(organization=org, uid="012345678")
    cdr = example("cdr_example.json")
    cdr["cdr_token"] = {"country_code": "NL", "party_id": "EVB", "uid": card.uid, "type": "RFID"}
    session = example("session_example_2_short_finished.json")
    stub.sessions = [{**session, "id": "S-BAD", "kwh": "a\ud800b"}, session]
    stub.cdrs = [*hostile_cdrs(cdr), {**cdr, "id": "C-NUL", "remark": "\u0000"}, cdr]

    taken = emsp_cdrs.sessions_cdrs_pull(partner_id=partner.pk, since=None)

    assert taken == (1, 4)
    assert list(PartnerSession.objects.values_list("session_id", flat=True)) == [session["id"]]
    assert PartnerCdr.objects.get(cdr_id=cdr["id"]).claimed == Decimal("4")
    assert not PartnerCdr.objects.filter(cdr_id="C-NUL").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer",
    [
        '{"status_code": 100000000000000000000000000000, "timestamp": "2026-01-01T00:00:00Z"}',
        '{"status_code": 2001, "status_message": "bad\\u0000", "data": {"x": "\\ud800"}}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_partners_answer_no_column_keeps_is_a_call_error_and_still_logged(org, answer):
    partner = cpo_partner(org)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=answer))

    with pytest.raises(client.PartnerCallError) as refused:
        client.call(
            partner=partner,
            method="GET",
            url="https://cpo.example/ocpi/cpo/2.2.1/locations",
            token="t",
            module="locations",
            client=httpx.Client(transport=transport),
        )

    assert refused.value.ocpi_status in (None, 2001)
    log = OcpiLog.objects.get(partner=partner)
    assert log.ocpi_status in (None, 2001) and log.response_body is not None
