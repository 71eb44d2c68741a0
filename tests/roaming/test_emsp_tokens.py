"""Our eMSP role: the organization's eMSP identity (API), CPO partners registered both ways, our
cards pushed to their Tokens Receiver and kept current, and our Tokens Sender interface (list,
real-time authorization from the decision made at home), in 2.2.1 and 2.3.0."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from authorization.models import Token
from authorization.services import token_update
from roaming import ocpi, services
from roaming.models import Delivery, EmspIdentity, Partner
from tests.bounds import GENEROUS_S
from tests.factories import MembershipFactory, OrganizationFactory, TokenFactory, UserFactory
from tests.roaming.conftest import auth
from tests.roaming.cpo_stub import CpoStub

PARTNERS = "/api/v1/roaming/partners/"
CPO_TOKEN = "cpo-calls-us-with-this-0123"


def api_for(organization, role="owner"):
    user = UserFactory()
    MembershipFactory(organization=organization, user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


def identity_url(org) -> str:
    return f"/api/v1/organizations/{org.pk}/emsp-identity/"


def with_identity(org, **fields) -> EmspIdentity:
    values = {
        "country_code": "NL",
        "party_id": "EVB",
        "emaid_prefix": "NLEVB",
        "business_name": "EV Backoffice",
        **fields,
    }
    return EmspIdentity.objects.create(organization=org, **values)


def cpo_partner(org, *, token=CPO_TOKEN, version="2.2.1", **fields) -> Partner:
    """A CPO partner connected to `org` (as the handshake leaves it), calling us with `token`."""
    base = f"https://cpo.example/ocpi/cpo/{version}"
    values = {
        "name": "CPO",
        "role": Partner.Role.CPO,
        "country_code": "BE",
        "party_id": "CPX",
        "cpo_country_code": "BE",
        "cpo_party_id": "CPX",
        "state": Partner.State.CONNECTED,
        "incoming_token_hash": ocpi.token_hash(token),
        "outgoing_token": "our-token-at-cpo",
        "version": version,
        "endpoints": {
            "tokens": {"RECEIVER": f"{base}/tokens"},
            "locations": {"SENDER": f"{base}/locations"},
            "credentials": {"RECEIVER": f"{base}/credentials"},
        },
        "registered_at": timezone.now(),
        **fields,
    }
    return Partner.objects.create(organization=org, **values)


@pytest.fixture
def stubs(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stubs listen on loopback
    made: list[CpoStub] = []

    def make(**kwargs) -> CpoStub:
        stub = CpoStub(**kwargs)
        made.append(stub)
        return stub

    yield make
    for stub in made:
        stub.close()


# -- identity --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_owner_sets_the_organizations_emsp_identity_and_reads_it_back():
    org = OrganizationFactory(name="Sunny Fleet")
    api = api_for(org)

    assert api.get(identity_url(org)).status_code == 404
    saved = api.put(identity_url(org), {"country_code": "nl", "party_id": "sfl"}, format="json")

    assert saved.status_code == 200, saved.content
    assert api.get(identity_url(org)).json() | {"updated_at": None} == {
        "country_code": "NL",
        "party_id": "SFL",
        "emaid_prefix": "NLSFL",
        "business_name": "Sunny Fleet",
        "currency": "EUR",
        "updated_at": None,
    }
    # Drivers billed in kronor; a PUT without the currency keeps it; an unknown code is a 400.
    body = {"country_code": "NL", "party_id": "SFL", "currency": "sek"}
    assert api.put(identity_url(org), body, format="json").json()["currency"] == "SEK"
    kept = api.put(identity_url(org), {"country_code": "NL", "party_id": "SFL"}, format="json")
    assert kept.json()["currency"] == "SEK"
    bad = api.put(identity_url(org), {**body, "currency": "XQZ"}, format="json")
    assert bad.status_code == 400 and "ISO 4217" in bad.json()["currency"][0]
    assert EmspIdentity.objects.get(organization=org).currency == "SEK"


@pytest.mark.django_db
def test_an_identity_is_refused_by_field_and_nothing_is_saved():
    org = OrganizationFactory()
    other = OrganizationFactory()
    with_identity(other, country_code="NL", party_id="TAK", emaid_prefix="NLTAK")
    api = api_for(org)

    bad_prefix = api.put(
        identity_url(org),
        {"country_code": "NL", "party_id": "EVB", "emaid_prefix": "DEEVB"},
        format="json",
    )
    taken = api.put(identity_url(org), {"country_code": "NL", "party_id": "TAK"}, format="json")

    assert bad_prefix.status_code == 400 and "emaid_prefix" in bad_prefix.json()
    assert taken.status_code == 400 and "another organization" in taken.json()["party_id"][0]
    assert not EmspIdentity.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_another_organizations_identity_is_a_404_and_a_viewer_only_reads():
    org, other = OrganizationFactory(), OrganizationFactory()
    with_identity(other)
    body = {"country_code": "NL", "party_id": "ZZZ"}

    assert api_for(org).get(identity_url(other)).status_code == 404
    assert api_for(org).put(identity_url(other), body, format="json").status_code == 404
    viewer = api_for(other, role="viewer")
    assert viewer.get(identity_url(other)).status_code == 200
    assert viewer.put(identity_url(other), body, format="json").status_code == 403
    assert EmspIdentity.objects.get(organization=other).party_id == "EVB"


# -- registration with a CPO ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_we_register_with_a_cpo_through_the_api_as_its_emsp_and_our_cards_reach_it(
    live_server, stubs, settings, version
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    with_identity(org)
    card = TokenFactory(organization=org, uid="04AABBCCDD", label="Card 7")
    app = TokenFactory(organization=org, uid="APP-USER-1", type=Token.Type.APP)
    TokenFactory(organization=org, uid="GUEST-ONCE", type=Token.Type.GUEST)
    TokenFactory(organization=OrganizationFactory(), uid="04OTHERORG")
    cpo = stubs(versions=("2.2.1", version))

    created = api_for(org).post(
        PARTNERS,
        {
            "organization": org.pk,
            "name": "Stub CPO",
            "versions_url": cpo.versions_url,
            "token_a": cpo.token_a,
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["role"], body["state"], body["version"]) == ("CPO", "connected", version)
    # Our credentials name our eMSP party beside our CPO party (one platform, two roles).
    assert {
        "role": "EMSP",
        "country_code": "NL",
        "party_id": "EVB",
        "business_details": {"name": "EV Backoffice"},
    } in cpo.emsp_roles
    assert ("tokens", "SENDER") in cpo.emsp_endpoints
    pushed = cpo.wait_for_token("04AABBCCDD", valid=True, timeout=GENEROUS_S)
    assert pushed == {
        "country_code": "NL",
        "party_id": "EVB",
        "uid": "04AABBCCDD",
        "type": "RFID",
        "contract_id": f"NLEVB{card.pk:09d}",
        "visual_number": "Card 7",
        "issuer": "EV Backoffice",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": pushed["last_updated"],
    }
    assert cpo.wait_for_token("APP-USER-1", valid=True, timeout=GENEROUS_S)["type"] == "APP_USER"
    assert {uid for (_, _, uid, _) in cpo.tokens} == {"04AABBCCDD", "APP-USER-1"}
    assert app.pk  # used above


@pytest.mark.django_db(transaction=True)
def test_a_cpo_without_our_emsp_identity_is_refused_in_words_and_nothing_is_kept(
    live_server, stubs, settings
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    cpo = stubs()

    refused = api_for(org).post(
        PARTNERS,
        {
            "organization": org.pk,
            "name": "Stub CPO",
            "versions_url": cpo.versions_url,
            "token_a": cpo.token_a,
        },
        format="json",
    )

    assert refused.status_code == 400
    assert "eMSP identity" in refused.json()["versions_url"][0]
    assert not Partner.objects.filter(organization=org).exists()


@pytest.mark.django_db(transaction=True)
def test_a_cpo_invited_through_the_api_registers_with_us_and_lists_our_emsp_role(
    live_server, stubs, settings
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    with_identity(org)
    TokenFactory(organization=org, uid="04CAFE0001")
    cpo = stubs(versions=("2.2.1", "2.3.0"), roles=("CPO", "EMSP"))
    invited = api_for(org).post(PARTNERS, {"organization": org.pk, "name": "Both"}, format="json")

    answer = cpo.register_with(invited.json()["our_versions_url"], invited.json()["token_a"])

    roles = {(r["role"], r["party_id"]) for r in answer["data"]["roles"]}
    assert {("CPO", settings.OCPI_PARTY_ID), ("EMSP", "EVB")} <= roles
    partner = Partner.objects.get(pk=invited.json()["id"])
    # A platform that is CPO and eMSP: connected as the eMSP it is for our chargers, and a CPO
    # for our drivers.
    assert (partner.role, partner.cpo_party_id, partner.version) == ("EMSP", "CPX", "2.3.0")
    assert partner.msp is not None
    cpo.wait_for_token("04CAFE0001", valid=True, timeout=GENEROUS_S)


# -- kept current --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_card_blocked_here_is_pushed_valid_false_and_a_cpo_down_gets_it_when_back(
    live_server, stubs, settings
):
    settings.SITE_URL = live_server.url
    org = OrganizationFactory()
    with_identity(org)
    card = TokenFactory(organization=org, uid="04B10CCED1")
    cpo = stubs()
    api_for(org).post(
        PARTNERS,
        {
            "organization": org.pk,
            "name": "CPO",
            "versions_url": cpo.versions_url,
            "token_a": cpo.token_a,
        },
        format="json",
    )
    cpo.wait_for_token("04B10CCED1", valid=True, timeout=GENEROUS_S)

    token_update(token=card, blocked=True)

    assert cpo.wait_for_token("04B10CCED1", valid=False, timeout=GENEROUS_S)["valid"] is False

    cpo.down = True
    token_update(token=card, blocked=False)
    waiting = Delivery.objects.get(object_key=f"token:{card.pk}", status=Delivery.Status.PENDING)
    assert waiting.attempts == 1 and waiting.body["valid"] is True
    cpo.down = False
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
    services.deliveries_send(partner_id=waiting.partner_id)

    assert cpo.wait_for_token("04B10CCED1", valid=True, timeout=GENEROUS_S)["valid"] is True


@pytest.mark.django_db
def test_the_sweep_pushes_a_card_whose_expiry_passed_as_valid_false(settings):
    org = OrganizationFactory()
    with_identity(org)
    partner = cpo_partner(org)
    card = TokenFactory(organization=org, uid="04EEEEEE01")
    Token.objects.filter(pk=card.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1),
        updated_at=timezone.now() - timedelta(days=1),
    )
    from roaming import emsp

    ids = emsp.cards_changed_since(timezone.now() - timedelta(minutes=1), now=timezone.now())
    assert ids == [card.pk]
    emsp.token_push_queue(token_id=card.pk)
    delivery = Delivery.objects.get(partner=partner, object_key=f"token:{card.pk}")
    assert (delivery.method, delivery.path) == ("PUT", "/NL/EVB/04EEEEEE01?type=RFID")
    assert delivery.body["valid"] is False


# -- our Tokens Sender interface ----------------------------------------------------------------


def _get(client: Client, url: str, token: str = CPO_TOKEN):
    return client.get(url, HTTP_AUTHORIZATION=auth(token))


def _authorize(
    client: Client, uid: str, body=None, *, version="2.2.1", type_="RFID", token=CPO_TOKEN
):
    return client.post(
        f"/ocpi/{version}/emsp/tokens/{uid}/authorize?type={type_}",
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_a_cpo_partner_lists_only_its_operators_cards_paginated(client, version):
    org, other = OrganizationFactory(), OrganizationFactory()
    with_identity(org)
    with_identity(other, party_id="OTH", emaid_prefix="NLOTH")
    cpo_partner(org, version=version)
    cpo_partner(other, token="other-operators-cpo-token", version=version)
    mine = [TokenFactory(organization=org, uid=f"04AA00000{i}") for i in range(3)]
    TokenFactory(organization=other, uid="04FFFFFFFF")
    TokenFactory(organization=org, uid="GUEST-1", type=Token.Type.GUEST)

    first = _get(client, f"/ocpi/{version}/emsp/tokens?limit=2")
    rest = _get(client, f"/ocpi/{version}/emsp/tokens?limit=2&offset=2")

    assert first.status_code == 200 and first["X-Total-Count"] == "3"
    assert 'rel="next"' in first["Link"]
    uids = [t["uid"] for t in first.json()["data"] + rest.json()["data"]]
    assert sorted(uids) == sorted(t.uid for t in mine)
    assert {t["party_id"] for t in first.json()["data"]} == {"EVB"}


@pytest.mark.django_db
def test_a_partner_that_is_not_a_cpo_has_no_access_to_our_tokens(client):
    from tests.roaming.conftest import PARTNER_TOKEN, connected_partner

    org = OrganizationFactory()
    with_identity(org)
    connected_partner(org)  # an eMSP of our chargers
    TokenFactory(organization=org, uid="04AA000001")

    listed = _get(client, "/ocpi/2.2.1/emsp/tokens", token=PARTNER_TOKEN)
    asked = _authorize(client, "04AA000001", token=PARTNER_TOKEN)

    assert listed.status_code == 403 and "data" not in listed.json()
    assert asked.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_real_time_authorization_answers_from_the_decision_at_home(client, version):
    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, version=version)
    TokenFactory(organization=org, uid="04A11CE001")
    TokenFactory(organization=org, uid="04B10CCED2", blocked=True)
    TokenFactory(organization=org, uid="04E8P12ED3", expires_at=timezone.now() - timedelta(days=1))
    TokenFactory(organization=org, uid="04BEEF0004", allowed_station_ids=["HOME-1"])
    TokenFactory(organization=org, uid="APP-1", type=Token.Type.APP)
    where = {"location_id": "LOC1", "evse_uids": ["BE*CPX*E1"]}

    allowed = _authorize(client, "04a11ce001", where, version=version).json()
    assert allowed["status_code"] == 1000
    data = allowed["data"]
    assert (data["allowed"], data["token"]["uid"], data["location"]) == (
        "ALLOWED",
        "04A11CE001",
        where,
    )
    assert 1 <= len(data["authorization_reference"]) <= 36
    assert _authorize(client, "04B10CCED2", version=version).json()["data"]["allowed"] == "BLOCKED"
    assert _authorize(client, "04E8P12ED3", version=version).json()["data"]["allowed"] == "EXPIRED"
    # A reimbursement card charges only at its home stations: not at a partner's charger.
    refused = _authorize(client, "04BEEF0004", where, version=version).json()["data"]
    assert refused["allowed"] == "NOT_ALLOWED" and "location" not in refused
    app = _authorize(client, "APP-1", version=version, type_="APP_USER").json()["data"]
    assert app["allowed"] == "ALLOWED" and app["token"]["type"] == "APP_USER"


@pytest.mark.django_db
def test_an_unknown_or_another_operators_card_is_404_2004_and_a_bad_body_2001(client):
    org, other = OrganizationFactory(), OrganizationFactory()
    with_identity(org)
    with_identity(other, party_id="OTH", emaid_prefix="NLOTH")
    cpo_partner(org)
    TokenFactory(organization=other, uid="04OTHER001")
    TokenFactory(organization=org, uid="04MINE0001")

    for uid, type_ in (("04NOSUCH01", "RFID"), ("04OTHER001", "RFID"), ("04MINE0001", "APP_USER")):
        answer = _authorize(client, uid, type_=type_)
        assert (answer.status_code, answer.json()["status_code"]) == (404, 2004)
        assert "data" not in answer.json()
    bad = _authorize(client, "04MINE0001", {"evse_uids": ["x"]})
    assert bad.json()["status_code"] == 2001
    assert (
        client.get(
            "/ocpi/2.2.1/emsp/tokens/04MINE0001/authorize", HTTP_AUTHORIZATION=auth(CPO_TOKEN)
        ).status_code
        == 405
    )
