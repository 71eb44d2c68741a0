"""OCPI's clock rules (types "DateTime", transport_and_format "Pagination"): a push older than
what we hold changes nothing; the list endpoints' `date_from` (inclusive) and `date_to`
(exclusive) honour an offset, also one whose "+" the partner left unescaped in the URL, and a
value that is no DateTime is 2001 on every list, over HTTP 200: the request reached the OCPI
layer, to which "an HTTP error status code MUST NOT be returned" (status_codes)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from authorization.models import Token
from billing.models import Rate
from chargers.models import ChargingSession
from roaming.cdr_check import NotRecomputable, recompute
from roaming.models import Cdr, PartnerCdr
from tests.roaming import spec
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.test_payments_module import ptp  # noqa: F401  (a fixture)

URL = "/ocpi/2.2.1/tokens/NL/TNM/012345678"


def _send(client, method, url, body):
    return client.generic(
        method, url, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth()
    )


def test_a_token_put_or_patch_older_than_the_one_held_changes_nothing(client, operator):
    connected_partner(operator["org"], country_code="NL", party_id="TNM")
    example = spec.example("token_put_example.json")  # last_updated 2015-06-29T22:39:09Z
    blocked = {**example, "valid": False, "last_updated": "2015-06-30T08:00:00Z"}
    assert _send(client, "PUT", URL, blocked).status_code == 201
    # The first PUT, retried or delivered after the block: answered 1000, the card stays blocked.
    late = _send(client, "PUT", URL, example)
    assert late.status_code == 200 and late.json()["status_code"] == 1000
    late_patch = _send(client, "PATCH", URL, {"valid": True, "last_updated": "2015-06-29T23:00Z"})
    assert late_patch.status_code == 200 and late_patch.json()["status_code"] == 1000
    assert Token.objects.get(uid="012345678").valid is False
    held = client.get(URL, HTTP_AUTHORIZATION=auth()).json()["data"]
    assert (held["valid"], held["last_updated"]) == (False, "2015-06-30T08:00:00Z")
    # Newer is taken (here with an offset: 10:00:01+02:00 is 08:00:01 UTC).
    newer = {"valid": True, "last_updated": "2015-06-30T10:00:01+02:00"}
    assert _send(client, "PATCH", URL, newer).status_code == 200
    assert Token.objects.get(uid="012345678").valid is True


def _cdr_at(operator, partner, when: datetime) -> Cdr:
    session = ChargingSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=4711,
        started_at=when,
        stopped_at=when,
        status="completed",
    )
    cdr = Cdr.objects.create(session=session, partner=partner, cdr_id="CDR-4711", data={"id": "x"})
    Cdr.objects.filter(pk=cdr.pk).update(created_at=when)
    return cdr


def test_date_from_and_date_to_read_an_offset_also_with_its_plus_unescaped(
    client, operator, partner
):
    _cdr_at(operator, partner, datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # 10:00 at +02:00

    def ids(query: str) -> list[str]:
        answer = client.get(f"/ocpi/2.2.1/cdrs?{query}", HTTP_AUTHORIZATION=auth())
        assert answer.status_code == 200, answer.json()
        return [c["id"] for c in answer.json()["data"]]

    for at in ("2026-03-29T10:00:00%2B02:00", "2026-03-29T10:00:00+02:00"):
        assert ids(f"date_from={at}") == ["x"]  # inclusive
        assert ids(f"date_to={at}") == []  # exclusive
    # Fractional seconds of 7 digits (.NET's), and no zone: UTC.
    assert ids("date_from=2026-03-29T08:00:00.1234567Z") == []
    assert ids("date_to=2026-03-29T08:00:00.1234567") == ["x"]


def test_a_date_filter_with_a_fraction_of_a_second_compares_the_whole_second_shown(
    client, operator, partner
):
    """transport_and_format "Pagination": date_from inclusive, date_to exclusive, of the
    last_updated the partner reads, which has whole seconds. A CDR and a tariff stored at
    08:00:00.7 show 08:00:00: date_to=08:00:00.5 lists them (08:00:00 is before it; they were
    left out, compared with the stored fraction) and date_from=08:00:00.5 does not (they were
    listed)."""
    stored = datetime(2026, 3, 29, 8, 0, 0, 700000, tzinfo=UTC)
    _cdr_at(operator, partner, stored)
    rate = Rate.objects.create(
        property=operator["public"],
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
    )
    Rate.objects.filter(pk=rate.pk).update(updated_at=stored)

    def shown(module: str, query: str) -> list[str]:
        answer = client.get(f"/ocpi/2.2.1/{module}?{query}", HTTP_AUTHORIZATION=auth())
        assert answer.status_code == 200 and answer.json()["status_code"] == 1000, answer.json()
        return [item.get("last_updated", item["id"]) for item in answer.json()["data"]]

    (tariff_updated,) = shown("tariffs", "")
    assert tariff_updated == "2026-03-29T08:00:00Z"
    for module in ("cdrs", "tariffs"):
        for fraction in ("08:00:00.5Z", "08:00:00.000001Z", "08:00:00.9999999Z"):
            assert shown(module, f"date_to=2026-03-29T{fraction}") != [], (module, fraction)
            assert shown(module, f"date_from=2026-03-29T{fraction}") == [], (module, fraction)
        assert shown(module, "date_from=2026-03-29T08:00:00Z") != []  # inclusive
        assert shown(module, "date_to=2026-03-29T08:00:00Z") == []  # exclusive
        assert shown(module, "date_to=2026-03-29T08:00:01Z") != []


@pytest.mark.parametrize("module", ["locations", "tariffs", "sessions", "cdrs"])
@pytest.mark.parametrize("bad", ["yesterday", "2026-02-30T00:00:00Z", "2026-03-29T24:00:00Z"])
def test_a_date_filter_that_is_no_datetime_is_2001_never_a_500(client, partner, module, bad):
    answer = client.get(f"/ocpi/2.2.1/{module}?date_from={bad}", HTTP_AUTHORIZATION=auth())
    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)
    assert answer.json()["status_message"] == "date_from is not a DateTime"


# -- a partner's CDR priced at the location's wall clock (mod_tariffs "TariffRestrictions") ------

NIGHT_AND_DAY = {
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "TIME", "price": 2.0, "step_size": 1}],
            "restrictions": {"start_time": "22:00", "end_time": "06:00"},  # wraps past midnight
        },
        {"price_components": [{"type": "TIME", "price": 3.0, "step_size": 1}]},
    ],
}


def _hour_at(*starts: str) -> dict:
    return {
        "start_date_time": starts[0],
        "charging_periods": [
            {"start_date_time": at, "dimensions": [{"type": "TIME", "volume": 1}]} for at in starts
        ],
        "total_cost": {"excl_vat": 0},
    }


def test_the_night_price_follows_the_local_clock_over_both_dst_changes():
    amsterdam = {"time_zone": "Europe/Amsterdam"}
    # 29 March 2026, clocks go 02:00 CET -> 03:00 CEST. 00:30Z is 01:30, 01:30Z is 03:30 (night);
    # 04:30Z is 06:30 CEST (day), though 05:30 in winter time would still be night.
    spring = _hour_at("2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T04:30:00Z")
    assert recompute(spring, NIGHT_AND_DAY, **amsterdam) == Decimal("7.00")
    # 25 October 2026, 03:00 CEST -> 02:00 CET. 04:30Z is 05:30 CET (night) though 06:30 in
    # summer time; 20:30Z is 21:30 CET (day), 21:00Z is 22:00 (night from its first minute).
    autumn = _hour_at("2026-10-25T04:30:00Z", "2026-10-25T20:30:00Z", "2026-10-25T21:00:00Z")
    assert recompute(autumn, NIGHT_AND_DAY, **amsterdam) == Decimal("7.00")
    # A Saturday-only element, at 23:30Z on Saturday: Sunday 00:30 in Amsterdam.
    saturday = {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "TIME", "price": 1.0, "step_size": 1}],
                "restrictions": {"day_of_week": ["SATURDAY"]},
            },
            {"price_components": [{"type": "TIME", "price": 5.0, "step_size": 1}]},
        ],
    }
    assert recompute(_hour_at("2026-03-28T23:30:00Z"), saturday, **amsterdam) == Decimal("5.00")
    assert recompute(_hour_at("2026-03-28T22:30:00Z"), saturday, **amsterdam) == Decimal("1.00")


def test_local_times_of_a_location_whose_zone_is_not_known_are_not_read_as_utc():
    with pytest.raises(NotRecomputable, match="time zone is not known"):
        recompute(_hour_at("2026-03-29T21:30:00Z"), NIGHT_AND_DAY, time_zone=None)
    plain = {"currency": "EUR", "elements": NIGHT_AND_DAY["elements"][1:]}
    assert recompute(_hour_at("2026-03-29T21:30:00Z"), plain, time_zone=None) == Decimal("3.00")


@pytest.mark.django_db
def test_a_cdr_at_a_location_we_do_not_hold_is_a_dispute_when_its_tariff_reads_the_clock(client):
    from tests.factories import OrganizationFactory, TokenFactory
    from tests.roaming.test_emsp_cdrs import our_cdr, push_tariff
    from tests.roaming.test_emsp_network import send
    from tests.roaming.test_emsp_tokens import cpo_partner, with_identity

    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    # Started 2015-06-29T21:39:09Z (23:39 in Gent, night: 2.00/h; 21:39 in UTC, day: 3.00/h),
    # 1.973 h billed at the night price in 5-minute steps: 4.00.
    cdr = our_cdr("2.2.1", card)
    night = copy.deepcopy(NIGHT_AND_DAY["elements"])
    for element in night:
        element["price_components"][0]["step_size"] = 300
    push_tariff(client, "2.2.1", cdr, elements=night)

    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)
    row = PartnerCdr.objects.get()
    assert (row.status, row.recomputed) == (PartnerCdr.Status.DISPUTE, None)
    assert "time zone is not known" in row.reason
    # Once we hold the location (Gent: Europe/Brussels), the same CDR agrees.
    location = {**spec.example("location_example.json"), "time_zone": "Europe/Brussels"}
    assert send(client, "PUT", "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1", location).status_code in (
        200,
        201,
    )
    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", {**cdr, "id": "12346"})
    again = PartnerCdr.objects.get(cdr_id="12346")
    assert (again.status, again.recomputed) == (PartnerCdr.Status.AGREES, Decimal("4.00"))


# -- a last_updated far ahead of our clock would shadow every later push ------------------------


@pytest.mark.django_db
def test_a_push_dated_more_than_a_day_ahead_is_2001_and_does_not_shadow_later_ones(client):
    from django.utils import timezone

    from roaming.models import PartnerLocation
    from tests.factories import OrganizationFactory
    from tests.roaming.test_emsp_network import send
    from tests.roaming.test_emsp_tokens import cpo_partner, with_identity

    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    base = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"
    location = spec.example("location_example.json")
    assert send(client, "PUT", base, location).json()["status_code"] == 1000
    soon = (timezone.now() + timezone.timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    typo = "2062-06-30T08:00:00Z"  # a wrong year
    ahead = send(client, "PATCH", f"{base}/3256", {"status": "CHARGING", "last_updated": typo})
    assert ahead.json()["status_code"] == 2001
    assert "more than a day after our clock" in ahead.json()["status_message"]
    tariff = {"id": "12", "country_code": "BE", "party_id": "BEC", "currency": "EUR"}
    tariff |= {"elements": [], "last_updated": typo}
    put = send(client, "PUT", "/ocpi/2.2.1/emsp/tariffs/BE/BEC/12", tariff)
    assert put.json()["status_code"] == 2001
    # A clock a few hours ahead is taken, and a later push still moves the EVSE on.
    later = send(client, "PATCH", f"{base}/3256", {"status": "CHARGING", "last_updated": soon})
    assert later.json()["status_code"] == 1000
    evse = PartnerLocation.objects.get().data["evses"][0]
    assert (evse["status"], evse["last_updated"]) == ("CHARGING", soon)


def test_a_token_dated_more_than_a_day_ahead_is_2001(client, operator):
    connected_partner(operator["org"], country_code="NL", party_id="TNM")
    example = {**spec.example("token_put_example.json"), "last_updated": "2062-06-30T08:00:00Z"}
    answer = _send(client, "PUT", URL, example)
    assert answer.json()["status_code"] == 2001
    assert not Token.objects.filter(uid="012345678").exists()


def test_a_hubs_client_info_older_than_the_one_held_changes_nothing(db):
    from django.test import Client

    from roaming.models import HubClient
    from tests.factories import OrganizationFactory
    from tests.roaming.test_emsp_network import send
    from tests.roaming.test_emsp_tokens import cpo_partner

    cpo_partner(OrganizationFactory(), role="HUB")
    url = "/ocpi/2.2.1/hubclientinfo/DE/CPY"
    info = {"country_code": "DE", "party_id": "CPY", "role": "CPO"}
    offline = {**info, "status": "OFFLINE", "last_updated": "2026-01-01T10:00:00Z"}
    connected = {**info, "status": "CONNECTED", "last_updated": "2026-01-01T09:00:00Z"}
    client = Client()
    assert send(client, "PUT", url, offline).json()["status_code"] == 1000
    late = send(client, "PUT", url, connected)  # sent before, delivered after
    assert late.json()["status_code"] == 1000
    assert HubClient.objects.get().status == "OFFLINE"
    back = {**connected, "last_updated": "2026-01-01T11:00:00Z"}
    assert send(client, "PUT", url, back).json()["status_code"] == 1000
    assert HubClient.objects.get().status == "CONNECTED"


# -- a payment terminal provider's late pushes (2.3.0 mod_payments) -------------------------------


@pytest.mark.django_db
def test_a_terminal_push_older_than_ours_does_not_bring_back_a_deactivated_terminal(
    operator,
    ptp,  # noqa: F811
):
    from roaming import payments

    def push(at: str) -> None:
        body = {"terminal_id": "T-LATE", "invoice_creator": "CPO", "last_updated": at}
        payments.terminal_receive(partner=ptp, body=body)

    push("2026-01-01T10:00:00Z")
    terminal = payments.terminal_get(partner=ptp, terminal_id="T-LATE")
    payments.terminal_deactivate(terminal=terminal)
    push("2026-01-01T09:00:00Z")  # sent before, delivered after
    terminal.refresh_from_db()
    assert terminal.deactivated_at is not None
    push("2026-01-01T11:00:00Z")  # the PTP creating it anew brings it back
    terminal.refresh_from_db()
    assert terminal.deactivated_at is None


@pytest.mark.django_db
def test_a_capture_confirmation_older_than_the_one_held_changes_nothing(
    operator,
    ptp,  # noqa: F811
):
    from roaming import payments
    from roaming.models import FinancialAdviceConfirmation, TerminalPayment

    terminal, _ = payments.terminal_receive(
        partner=ptp, body={"terminal_id": "T-PAY", "invoice_creator": "CPO"}
    )
    card = Token.objects.create(uid="PTCARD", msp=ptp.msp, single_session=True)
    TerminalPayment.objects.create(
        organization=operator["org"],
        partner=ptp,
        terminal=terminal,
        authorization_reference="ref-late",
        token=card,
        token_data={},
        charger=operator["cp_public"],
        connector_id=1,
    )
    success = {
        **spec.example("payment_financial_advice_confirmation_create.json", "2.3.0"),
        "authorization_reference": "ref-late",
        "last_updated": "2026-01-01T10:05:00Z",
    }
    failed = {**success, "capture_status_code": "FAILED", "last_updated": "2026-01-01T10:00:00Z"}
    payments.financial_advice_receive(partner=ptp, body=success)
    _, created = payments.financial_advice_receive(partner=ptp, body=failed)  # delivered late
    assert created is False
    assert FinancialAdviceConfirmation.objects.get().capture_status_code == "SUCCESS"
    newer = {**failed, "last_updated": "2026-01-01T10:10:00Z"}
    payments.financial_advice_receive(partner=ptp, body=newer)
    assert FinancialAdviceConfirmation.objects.get().capture_status_code == "FAILED"
