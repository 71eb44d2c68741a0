"""Our eMSP role: a partner CPO's Sessions and CDRs of our cards received (the spec's examples,
2.2.1 and 2.3.0), stored once, each CDR checked against its tariff as it stood at the session's
start: it agrees (our price to the driver set) or is a dispute for support, never charged."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from roaming import emsp_cdrs
from roaming.models import PartnerCdr, PartnerSession
from tests.factories import OrganizationFactory, TokenFactory
from tests.roaming import spec
from tests.roaming.test_emsp_network import send
from tests.roaming.test_emsp_tokens import cpo_partner, with_identity

VERSIONS = ["2.2.1", "2.3.0"]


@pytest.fixture
def org(db):
    org = OrganizationFactory()
    with_identity(org)
    return org


def example(name: str, version: str, **changes) -> dict:
    return {**copy.deepcopy(spec.example(name, version)), **changes}


def our_cdr(version: str, card, **changes) -> dict:
    """The spec's CDR (BE*BEC, 1.973 h at tariff 12), for one of our cards."""
    cdr = example("cdr_example.json", version, **changes)
    cdr["cdr_token"] = {
        "country_code": "NL",
        "party_id": "EVB",
        "uid": card.uid,
        "type": "RFID",
        "contract_id": f"NLEVB{card.pk:09d}",
    }
    return cdr


def push_tariff(client, version: str, cdr: dict, **changes) -> None:
    tariff = {**cdr["tariffs"][0], **changes}
    answer = send(client, "PUT", f"/ocpi/{version}/emsp/tariffs/BE/BEC/{tariff['id']}", tariff)
    assert answer.json()["status_code"] == 1000, answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize("version", VERSIONS)
def test_a_session_is_put_patched_and_tied_to_our_card(client, org, version):
    cpo_partner(org, version=version, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="123ABC")
    session = example("session_example_2_short_finished.json", version)
    url = f"/ocpi/{version}/emsp/sessions/BE/BEC/101"

    put = send(client, "PUT", url, session)
    patch = send(client, "PATCH", url, {"kwh": 20.5, "last_updated": "2026-01-01T00:00:00Z"})

    assert (put.json()["status_code"], patch.json()["status_code"]) == (1000, 1000)
    row = PartnerSession.objects.get()
    assert (row.organization_id, row.token_id, row.status) == (org.pk, card.pk, "COMPLETED")
    assert send(client, "GET", url).json()["data"]["kwh"] == 20.5
    unknown = send(client, "PATCH", f"/ocpi/{version}/emsp/sessions/BE/BEC/999", {"kwh": 1})
    assert (unknown.status_code, unknown.json()["status_code"]) == (404, 2003)
    assert send(client, "PUT", url, {**session, "id": "102"}).json()["status_code"] == 2001


@pytest.mark.django_db
@pytest.mark.parametrize("version", VERSIONS)
def test_a_cdr_that_agrees_with_its_tariff_is_stored_once_with_our_price(
    client, org, version, settings
):
    settings.OCPI_EMSP_MARGIN_PERCENT, settings.OCPI_EMSP_ROAMING_FEE_CENTS = 10, 25
    settings.OCPI_EMSP_VAT_PERCENT = 21
    cpo_partner(org, version=version, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    cdr = our_cdr(version, card)
    push_tariff(client, version, cdr)

    first = send(client, "POST", f"/ocpi/{version}/emsp/cdrs", cdr)
    again = send(client, "POST", f"/ocpi/{version}/emsp/cdrs", {**cdr, "total_cost": None})

    assert (first.json()["status_code"], again.json()["status_code"]) == (1000, 1000)
    assert first["Location"].endswith(f"/ocpi/{version}/emsp/cdrs/12345")
    row = PartnerCdr.objects.get()
    assert (row.status, row.token_id, row.recomputed, row.claimed) == (
        PartnerCdr.Status.AGREES,
        card.pk,
        Decimal("4.00"),
        Decimal("4"),
    )
    # 4.00 + 10 % + 0.25 = 4.65 before tax, 21 % VAT 0.98: 5.63 to the driver.
    assert (row.price_excl, row.price_vat, row.price_total) == (
        Decimal("4.65"),
        Decimal("0.98"),
        Decimal("5.63"),
    )
    assert send(client, "GET", f"/ocpi/{version}/emsp/cdrs/12345").json()["data"] == cdr


@pytest.mark.django_db
def test_a_cdr_that_disagrees_with_its_tariff_is_a_dispute_and_not_priced(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    cdr = our_cdr("2.2.1", card)
    push_tariff(client, "2.2.1", cdr)
    cdr["total_cost"] = {"excl_vat": 6.0, "incl_vat": 6.6}

    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)

    row = PartnerCdr.objects.get()
    assert (row.status, row.recomputed, row.price_total) == (
        PartnerCdr.Status.DISPUTE,
        Decimal("4.00"),
        None,
    )
    assert "its tariff gives 4.00" in row.reason
    assert emsp_cdrs.disputes_settle(cdr_ids=[row.pk]) == 1
    assert PartnerCdr.objects.get().status == PartnerCdr.Status.SETTLED


@pytest.mark.django_db
def test_the_cdr_is_checked_against_the_tariff_as_it_stood_when_the_session_started(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    cdr = our_cdr("2.2.1", card)  # started 2015-06-29T21:39:09Z, tariff 12 of 2015-02-02
    push_tariff(client, "2.2.1", cdr)
    dearer = copy.deepcopy(cdr["tariffs"][0]["elements"])
    dearer[0]["price_components"][0]["price"] = 3.0
    push_tariff(client, "2.2.1", cdr, elements=dearer, last_updated="2015-07-01T00:00:00Z")

    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)

    assert PartnerCdr.objects.get().status == PartnerCdr.Status.AGREES  # 2.00/h, not 3.00/h


@pytest.mark.django_db
def test_a_cdr_without_a_tariff_as_it_stood_is_a_dispute_and_a_credit_cdr_is_kept_as_such(
    client, org
):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")

    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", our_cdr("2.2.1", card))
    credit = our_cdr("2.2.1", card, id="12345-C", credit=True, credit_reference_id="12345")
    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", credit)

    statuses = dict(PartnerCdr.objects.values_list("cdr_id", "status"))
    assert statuses == {"12345": PartnerCdr.Status.DISPUTE, "12345-C": PartnerCdr.Status.CREDIT}
    assert "names no tariff" in PartnerCdr.objects.get(cdr_id="12345").reason


@pytest.mark.django_db
def test_a_cdr_the_text_does_not_allow_or_of_another_party_is_refused(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    cdr = our_cdr("2.2.1", card)

    no_id = send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", {**cdr, "id": ""})
    no_cost = send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", {**cdr, "total_cost": 4})
    other = send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", {**cdr, "party_id": "XYZ"})

    assert [a.json()["status_code"] for a in (no_id, no_cost)] == [2001, 2001]
    assert (other.status_code, other.json()["status_code"]) == (404, 2003)
    assert not PartnerCdr.objects.exists()


@pytest.mark.django_db
def test_another_organizations_cpo_reads_none_of_our_sessions_or_cdrs(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    other = OrganizationFactory()
    with_identity(other, party_id="OTH", emaid_prefix="NLOTH")
    cpo_partner(other, token="the-other-cpo", cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", our_cdr("2.2.1", card))
    session = example("session_example_2_short_finished.json", "2.2.1")
    send(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/BEC/101", session)

    assert (
        send(client, "GET", "/ocpi/2.2.1/emsp/cdrs/12345", token="the-other-cpo").status_code == 404
    )
    url = "/ocpi/2.2.1/emsp/sessions/BE/BEC/101"
    assert send(client, "GET", url, token="the-other-cpo").status_code == 404
    patch = {"kwh": 99, "last_updated": "2026-01-01T00:00:00Z"}
    assert send(client, "PATCH", url, patch, token="the-other-cpo").status_code == 404
    assert PartnerSession.objects.get().data == session
    # The same CDR posted by the other operator's CPO is its own row, tied to no card of ours.
    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", our_cdr("2.2.1", card), token="the-other-cpo")
    theirs = PartnerCdr.objects.get(organization=other)
    assert theirs.token_id is None


@pytest.mark.django_db
def test_support_finds_disputes_in_admin_and_settles_them(client, org):
    from django.test import Client as Browser

    from tests.factories import UserFactory

    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="012345678")
    send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", our_cdr("2.2.1", card))  # no tariff: dispute
    agent = Browser()
    agent.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = "/admin/roaming/partnercdr/"

    listed = agent.get(url, {"status__exact": "dispute"})
    row = PartnerCdr.objects.get()
    settled = agent.post(url, {"action": "settle", "_selected_action": [row.pk]})

    assert listed.status_code == 200 and "12345" in listed.content.decode()
    assert settled.status_code == 302
    assert PartnerCdr.objects.get().status == PartnerCdr.Status.SETTLED
    for name in ("partnersession", "partnerlocation", "partnertariff", "emspidentity"):
        assert agent.get(f"/admin/roaming/{name}/", {"q": "x"}).status_code == 200


@pytest.mark.django_db
def test_a_late_session_put_neither_reopens_a_session_its_cdr_ended_nor_goes_back_in_time(
    client, org
):
    """A CPO's Session push retried or delivered late (its outbox, the network) after the CDR,
    or after a newer state: the driver is not shown charging again (nor kept from starting),
    and an older state does not replace a newer one."""
    from roaming import emsp_driving

    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="123ABC")
    running = example(
        "session_example_2_short_finished.json",
        "2.2.1",
        id="S9",
        status="ACTIVE",
        last_updated="2026-03-02T10:05:00Z",
    )
    url = "/ocpi/2.2.1/emsp/sessions/BE/BEC/S9"
    assert send(client, "PUT", url, running).json()["status_code"] == 1000
    cdr = our_cdr("2.2.1", card, session_id="S9")
    assert send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr).json()["status_code"] == 1000
    assert PartnerSession.objects.get(session_id="S9").status == "COMPLETED"

    # The same PUT again, then one sent before the CDR but delivered after it.
    retried = send(client, "PUT", url, running)
    late = send(client, "PUT", url, {**running, "last_updated": "2026-03-02T10:06:00Z"})

    assert (retried.json()["status_code"], late.json()["status_code"]) == (1000, 1000)
    assert PartnerSession.objects.get(session_id="S9").status == "COMPLETED"
    assert emsp_driving.open_session(card) is None
    # An older state after a newer one: the newer one stays.
    newer = {**running, "id": "S10", "kwh": 5, "last_updated": "2026-03-02T10:30:00Z"}
    send(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/BEC/S10", newer)
    older = {**newer, "kwh": 3, "last_updated": "2026-03-02T10:20:00Z"}
    assert send(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/BEC/S10", older).status_code == 200
    assert PartnerSession.objects.get(session_id="S10").data["kwh"] == 5
