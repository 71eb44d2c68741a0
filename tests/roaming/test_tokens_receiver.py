"""Tokens receiver: an eMSP pushes its cards (the spec's examples), and the authorization engine
uses them with OCPI's whitelist rules."""

import json

import pytest
from asgiref.sync import async_to_sync

from authorization.decisions import Context
from authorization.models import AuthorizationDecision, Token
from authorization.services import authorize
from chargers.sessions import services as charger_services
from tests.roaming import spec
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.emsp_stub import EmspStub

URL = "/ocpi/2.2.1/tokens/NL/TNM/012345678"


@pytest.fixture
def tnm(operator):
    """The partner of the spec's token examples: NL*TNM."""
    return connected_partner(operator["org"], country_code="NL", party_id="TNM")


def _send(client, method, url, body):
    return client.generic(
        method, url, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth()
    )


def test_the_spec_put_example_creates_a_token_and_get_returns_it(client, tnm):
    example = spec.example("token_put_example.json")

    response = _send(client, "PUT", URL, example)

    assert response.status_code == 201 and response.json()["status_code"] == 1000
    token = Token.objects.get(uid="012345678")
    assert (token.msp_id, token.valid, token.whitelist, token.type) == (
        tnm.msp_id,
        True,
        "ALWAYS",
        "RFID",
    )
    assert token.organization_id is None and token.parent_id_tag == "DF000-2001-8999"
    got = client.get(URL, HTTP_AUTHORIZATION=auth()).json()
    assert got["data"] == example
    # A second PUT updates (200), it does not add a card.
    assert _send(client, "PUT", URL, {**example, "whitelist": "NEVER"}).status_code == 200
    assert Token.objects.get(uid="012345678").whitelist == "NEVER"


def test_the_spec_patch_example_invalidates_the_token(client, tnm):
    _send(client, "PUT", URL, spec.example("token_put_example.json"))

    response = _send(client, "PATCH", URL, spec.example("token_patch_example.json"))

    assert response.status_code == 200 and response.json()["status_code"] == 1000
    assert Token.objects.get(uid="012345678").valid is False
    assert client.get(URL, HTTP_AUTHORIZATION=auth()).json()["data"]["valid"] is False


def test_app_user_example_is_stored_under_its_type(client, operator):
    connected_partner(operator["org"], country_code="DE", party_id="TNM")
    example = spec.example("token_example_1_app_user.json")
    url = f"/ocpi/2.2.1/tokens/DE/TNM/{example['uid']}?type=APP_USER"
    assert _send(client, "PUT", url, example).status_code == 201
    assert Token.objects.get(uid=example["uid"]).type == "APP"


def test_malformed_pushes_are_2001_and_unknown_or_foreign_tokens_404(client, tnm):
    example = spec.example("token_put_example.json")
    assert _send(client, "PUT", URL, {**example, "uid": "other"}).json()["status_code"] == 2001
    assert (
        _send(client, "PUT", URL, {**example, "whitelist": "SOMETIMES"}).json()["status_code"]
        == 2001
    )
    assert _send(client, "PATCH", URL, {"valid": False}).status_code == 404  # not PUT yet
    _send(client, "PUT", URL, example)
    assert (
        _send(client, "PATCH", URL, {"valid": False}).json()["status_code"] == 2001
    )  # no last_updated
    assert (
        client.get("/ocpi/2.2.1/tokens/NL/TNM/nope", HTTP_AUTHORIZATION=auth()).json()[
            "status_code"
        ]
        == 2004
    )
    foreign = {**example, "party_id": "XYZ"}
    assert _send(client, "PUT", "/ocpi/2.2.1/tokens/NL/XYZ/012345678", foreign).status_code == 404
    assert Token.objects.count() == 1


# -- the authorization engine with pushed tokens -------------------------------------------------


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


@pytest.fixture
def live_partner(operator, stub):
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    return partner


def _push(client, partner, uid, whitelist, **fields):
    body = {
        "country_code": partner.country_code,
        "party_id": partner.party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"DE-EMS-{uid}",
        "issuer": "Stub",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": "2024-01-01T00:00:00Z",
        **fields,
    }
    url = f"/ocpi/2.2.1/tokens/{partner.country_code}/{partner.party_id}/{uid}"
    assert _send(client, "PUT", url, body).json()["status_code"] == 1000


def _decide(charger, uid):
    facts, location_id = charger_services.charger_facts_by_id(charger.pk)
    return async_to_sync(authorize)(
        uid=uid, charger=facts, context=Context.LOCAL, location_id=location_id
    )


@pytest.mark.django_db(transaction=True)
def test_whitelist_rules_decide_whether_the_emsp_is_asked(client, operator, stub, live_partner):
    charger = operator["cp_public"]
    _push(client, live_partner, "AA01", "ALWAYS")
    _push(client, live_partner, "AA02", "NEVER")
    _push(client, live_partner, "AA03", "ALLOWED")

    assert _decide(charger, "AA01").reason == "accepted_roaming"
    assert _decide(charger, "AA03").reason == "accepted_roaming"
    assert stub.requests_to("tokens") == []
    stub.allowed = "BLOCKED"
    decision = _decide(charger, "AA02")
    assert (decision.status, decision.reason) == ("Blocked", "msp_rejected")
    (asked,) = stub.requests_to("tokens", "POST")
    assert asked["path"] == "/ocpi/emsp/2.2.1/tokens/AA02/authorize"
    stub.allowed = "ALLOWED"
    assert _decide(charger, "AA02").reason == "accepted_msp_live"
    recorded = AuthorizationDecision.objects.filter(uid="AA02").order_by("id").last()
    assert (
        recorded.msp_id == live_partner.msp_id
        and recorded.msp_response["data"]["allowed"] == "ALLOWED"
    )


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_emsp_accepts_allowed_offline_and_refuses_never(
    client, operator, stub, live_partner
):
    charger = operator["cp_public"]
    _push(client, live_partner, "BB01", "ALLOWED_OFFLINE")
    _push(client, live_partner, "BB02", "NEVER")
    stub.close()

    offline_ok = _decide(charger, "BB01")
    never = _decide(charger, "BB02")

    assert (offline_ok.status, offline_ok.reason) == ("Accepted", "msp_timeout")
    assert (never.status, never.reason) == ("Invalid", "msp_timeout")


def test_blocking_the_partner_in_mobility_providers_blocks_its_tokens(
    client, operator, live_partner
):
    _push(client, live_partner, "CC01", "ALWAYS")
    live_partner.msp.blocked = True
    live_partner.msp.save()
    facts, _ = charger_services.charger_facts_by_id(operator["cp_public"].pk)
    from authorization.services import decide_sync

    assert decide_sync(uid="CC01", charger=facts, context=Context.LOCAL).reason == "msp_blocked"


def test_pushed_tokens_do_not_open_private_chargers_and_invalid_ones_are_refused(
    client, operator, live_partner
):
    from authorization.services import decide_sync

    _push(client, live_partner, "DD01", "ALWAYS")
    _push(client, live_partner, "DD02", "ALWAYS", valid=False)
    private, _ = charger_services.charger_facts_by_id(operator["cp_private"].pk)
    public, _ = charger_services.charger_facts_by_id(operator["cp_public"].pk)
    assert (
        decide_sync(uid="DD01", charger=private, context=Context.LOCAL).reason
        == "charger_not_roaming"
    )
    assert (
        decide_sync(uid="DD02", charger=public, context=Context.LOCAL).reason == "msp_token_invalid"
    )  # its provider said so (issue 47)


def test_one_uid_as_two_token_types_is_refused_not_a_server_error(client, tnm):
    example = spec.example("token_put_example.json")
    _send(client, "PUT", URL, example)
    app = {**example, "type": "APP_USER"}
    response = _send(client, "PUT", URL + "?type=APP_USER", app)
    assert response.status_code == 200 and response.json()["status_code"] == 2001
    assert Token.objects.get(uid="012345678").type == "RFID"
