"""Plug & Charge with a foreign contract (issue 52 item 4): an eMAID no card of ours holds is
authorized in real time with the provider its eMAID names, over OCPI (2.3.0 mod_tokens: EMAID
tokens are not pushed, the CPO asks the issuer), and the session is billed to that provider by
CDR, never through the guest flow. The provider is a real HTTP server started here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from authorization.decisions import emaid_issuer, emaid_token_type
from authorization.models import AuthorizationDecision, MobilityServiceProvider, Token
from chargers.models import ChargingSession
from roaming import sessions as roaming_sessions
from roaming.versions import v221
from tests.chargers.v201.conftest import BOOT, connect201, tx_event
from tests.factories import OrganizationFactory
from tests.roaming.conftest import connected_partner

from .pkitools import EMAID, Provider
from .test_plug_and_charge import authorize_over_socket, contract_authorize

pytestmark = pytest.mark.django_db(transaction=True)


def allowed(**token: object) -> dict:
    card = {
        "country_code": "DE",
        "party_id": "8EO",
        "uid": EMAID,
        "type": "EMAID",
        "contract_id": EMAID,
        "issuer": "Eight EO Mobility",
        "valid": True,
        "whitelist": "NEVER",
        "last_updated": "2026-11-27T00:00:00Z",
        **token,
    }
    return {
        "status_code": 1000,
        "data": {"allowed": "ALLOWED", "token": card, "authorization_reference": "AUTH-8EO-1"},
        "timestamp": "2026-11-27T00:00:00Z",
    }


def tokens_partner(settings, mo_world, organization, path: str, **fields) -> Provider:
    """A connected OCPI partner of `organization` on 2.3.0 whose tokens endpoint is a real HTTP
    stub answering `allowed()` (reachable, as the OCSP responder, through the staff allow-list);
    the stub is returned with `.partner` set."""
    served = Provider(allowed())
    settings.OUTBOUND_URL_ALLOWLIST = [
        f"127.0.0.1:{mo_world.responder.port}",
        f"127.0.0.1:{served.port}",
    ]
    served.partner = connected_partner(
        organization, base=f"http://127.0.0.1:{served.port}{path}", version="2.3.0", **fields
    )
    return served


@pytest.fixture
def issuer(settings, mo_world, charger):
    """The provider DE*8EO as a connected eMSP partner of the charger's operator, on 2.3.0."""
    served = tokens_partner(
        settings,
        mo_world,
        charger.property.organization,
        "/ocpi/emsp/2.3.0",
        country_code="DE",
        party_id="8EO",
    )
    MobilityServiceProvider.objects.filter(pk=served.partner.msp_id).update(ocpi_version="2.3.0")
    yield served
    served.stop()


def test_an_emaid_names_its_provider_with_or_without_hyphens():
    assert emaid_issuer("DE-8EO-C12345678-9") == ("DE", "8EO")
    assert emaid_issuer("de8eoc12345678") == ("DE", "8EO")
    assert emaid_issuer("04A1B2C3D4E5F6") is None  # an RFID UID: no country
    assert emaid_issuer("DE-8EO-C1234") is None
    assert (emaid_token_type("2.3.0"), emaid_token_type("2.2.1")) == ("EMAID", "OTHER")


async def test_a_foreign_contract_is_asked_live_of_its_provider_and_kept_as_its_card(
    mo_world, issuer, charger
):
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    [asked] = issuer.bodies
    assert asked["path"] == f"/ocpi/emsp/2.3.0/tokens/{EMAID}/authorize?type=EMAID"
    assert issuer.headers[0]["Authorization"].startswith("Token ")
    assert asked["evse_uids"] == [charger.station_id]
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert (decision.status, decision.reason) == ("Accepted", "accepted_msp_live")
    assert decision.msp_id == issuer.partner.msp_id
    card = await Token.objects.aget(uid=EMAID)
    assert (card.type, card.msp_id, card.organization_id) == (
        Token.Type.EMAID,
        issuer.partner.msp_id,
        None,
    )


async def test_the_foreign_contracts_session_is_billed_to_its_provider_by_cdr(
    mo_world, issuer, charger
):
    client = await connect201()
    try:
        await client.result("BootNotification", BOOT)
        await client.result("Authorize", contract_authorize(mo_world.contract_chain))
        started = tx_event("Started", 0, id_token=EMAID, wh=1000, trigger="CablePluggedIn")
        started["idToken"]["type"] = "eMAID"
        answer = await client.result("TransactionEvent", started)
        assert answer["idTokenInfo"]["status"] == "Accepted"
        ended_at = (timezone.now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ended = tx_event("Ended", 1, wh=8500, trigger="EVCommunicationLost", timestamp=ended_at)
        ended["transactionInfo"]["stoppedReason"] = "EVDisconnected"
        await client.result("TransactionEvent", ended)
    finally:
        await client.close()
    session = await ChargingSession.objects.select_related("token").aget(id_tag=EMAID)
    assert session.token.type == Token.Type.EMAID
    cdr = await sync_to_async(roaming_sessions.cdr_create)(session_id=session.pk)
    assert cdr is not None and cdr.partner_id == issuer.partner.pk
    assert cdr.data["cdr_token"] == {
        "country_code": "DE",
        "party_id": "8EO",
        "uid": EMAID,
        "type": "EMAID",
        "contract_id": EMAID,
    }
    assert cdr.data["auth_method"] == "AUTH_REQUEST"
    assert cdr.data["authorization_reference"] == "AUTH-8EO-1"
    # A 2.2.1 partner reads the same CDR with 2.2.1's token type.
    assert v221.from_230("cdrs", cdr.data)["cdr_token"]["type"] == "OTHER"


async def test_a_contract_its_provider_does_not_know_is_cancelled_and_nothing_kept(
    mo_world, issuer
):
    issuer.answer = {"status_code": 2004, "status_message": "Unknown Token"}
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer == {
        "idTokenInfo": {"status": "Invalid"},
        "certificateStatus": "ContractCancelled",
    }
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.reason == "contract_unknown_to_issuer"
    assert not await Token.objects.filter(uid=EMAID).aexists()


async def test_a_contract_its_provider_refuses_is_refused_whatever_the_whitelist(mo_world, issuer):
    refused = allowed(whitelist="ALWAYS")
    refused["data"]["allowed"] = "BLOCKED"
    issuer.answer = refused
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["idTokenInfo"]["status"] == "Blocked"
    assert answer["certificateStatus"] == "ContractCancelled"
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.reason == "msp_rejected"


async def test_a_refusal_without_a_token_object_keeps_no_card(mo_world, issuer):
    issuer.answer = {"status_code": 1000, "data": {"allowed": "NOT_ALLOWED"}}
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["idTokenInfo"]["status"] == "Invalid"
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.reason == "contract_unknown_to_issuer"
    assert not await Token.objects.filter(uid=EMAID).aexists()


async def test_a_provider_that_is_down_never_gives_accepted(mo_world, issuer):
    issuer.stop()
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["idTokenInfo"]["status"] == "Invalid"
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.reason == "msp_timeout"
    assert not await Token.objects.filter(uid=EMAID).aexists()


async def test_a_blocked_provider_is_not_asked(mo_world, issuer):
    await MobilityServiceProvider.objects.filter(pk=issuer.partner.msp_id).aupdate(blocked=True)
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["idTokenInfo"]["status"] == "Blocked"
    assert issuer.bodies == []


async def test_a_revoked_contract_never_reaches_its_provider(mo_world, issuer):
    mo_world.responder.revoked.add(mo_world.contract.certificate.serial_number)
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["certificateStatus"] == "CertificateRevoked"
    assert issuer.bodies == []


async def test_another_operators_provider_of_the_same_party_is_never_asked(
    mo_world, charger, settings
):
    served = Provider(allowed())
    settings.OUTBOUND_URL_ALLOWLIST = [
        f"127.0.0.1:{mo_world.responder.port}",
        f"127.0.0.1:{served.port}",
    ]
    other = await sync_to_async(OrganizationFactory)()
    await sync_to_async(connected_partner)(
        other,
        token="another-operators-partner",
        base=f"http://127.0.0.1:{served.port}/ocpi/emsp/2.3.0",
        country_code="DE",
        party_id="8EO",
    )
    try:
        answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    finally:
        served.stop()
    assert answer["idTokenInfo"]["status"] == "Unknown"
    assert served.bodies == []


# -- the eMAID on cards (item 7) ----------------------------------------------------------------


def _host_of(organization):
    from django.test import Client

    from tests.factories import MembershipFactory

    client = Client()
    client.force_login(MembershipFactory(organization=organization, role="owner").user)
    return client


def test_the_cards_list_shows_each_own_cards_contract_id_on_other_networks(charger):
    from tests.factories import TokenFactory
    from tests.roaming.test_emsp_tokens import with_identity

    organization = charger.property.organization
    card = TokenFactory(uid="04A1B2C3", organization=organization)
    host = _host_of(organization)
    page = host.get("/tokens/").content.decode()
    assert "Contract id (eMAID)" not in page  # no eMSP identity: no contract ids
    with_identity(organization)
    emaid = "NLEVB" + str(card.pk).zfill(9)
    page = host.get("/tokens/").content.decode()
    assert "Contract id (eMAID)" in page and emaid in page
    assert emaid in host.get(f"/tokens/{card.pk}/").content.decode()
    # Found by its contract id, hyphenated as another network's CDR may print it.
    searched = host.get("/tokens/", {"q": f"NL-EVB-{str(card.pk).zfill(9)}"}).content.decode()
    assert f"/tokens/{card.pk}/" in searched
    # Another operator's identity names none of this operator's cards.
    other = OrganizationFactory()
    with_identity(other, country_code="BE", party_id="OTH", emaid_prefix="BEOTH")
    assert "BEOTH" not in host.get("/tokens/").content.decode()


def test_a_host_adds_a_contract_by_its_emaid_and_a_uid_that_is_none_is_refused(charger):
    organization = charger.property.organization
    host = _host_of(organization)
    form = {"organization": organization.pk, "label": "Fleet van", "type": "EMAID", "valid": "on"}
    refused = host.post("/tokens/", {**form, "uid": "04A1B2C3"})
    assert refused.status_code == 400
    assert "A contract&#x27;s UID is its eMAID" in refused.content.decode()
    added = host.post("/tokens/", {**form, "uid": "DE-8EO-C12345678-9"})
    assert added.status_code == 302
    card = Token.objects.get(organization=organization)
    assert (card.type, card.get_type_display()) == ("EMAID", "Contract (eMAID)")


# -- a contract of one of our own cards ------------------------------------------------------------


async def test_a_contract_for_one_of_our_cards_charges_on_that_card(mo_world, charger, settings):
    """Our eMSP identity NLEVB issued the card; a provider issued the car a contract for its
    contract id (with a check character, hyphenated): the car charges on that card, blocked
    with it, and no provider is asked."""
    from tests.factories import TokenFactory
    from tests.roaming.test_emsp_tokens import with_identity

    from .pkitools import issue

    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{mo_world.responder.port}"]
    organization = charger.property.organization
    await sync_to_async(with_identity)(organization)
    card = await sync_to_async(TokenFactory)(uid="04A1B2C3", organization=organization)
    digits = str(card.pk).zfill(9)
    emaid = f"NL-EVB-{digits}-7"
    contract = issue(emaid, mo_world.mo_sub, ca=False, ocsp_url=mo_world.responder.url)
    payload = {
        "idToken": {"idToken": emaid, "type": "eMAID"},
        "certificate": contract.pem + mo_world.mo_sub.pem,
    }
    answer = await authorize_over_socket(payload)
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    decision = await AuthorizationDecision.objects.aget(uid=emaid)
    assert (decision.token_id, decision.reason) == (card.pk, "accepted_local")
    # The session the car then starts is the card's, shown with the eMAID.
    client = await connect201()
    try:
        started = tx_event("Started", 0, transaction_id="TX-OWN", id_token=emaid, wh=0)
        started["idToken"]["type"] = "eMAID"
        answer = await client.result("TransactionEvent", started)
    finally:
        await client.close()
    assert answer["idTokenInfo"]["status"] == "Accepted"
    session = await ChargingSession.objects.aget(id_tag=emaid)
    assert session.token_id == card.pk
    # Plugged in first, the contract named by a later Updated (ISO 15118 authorizes after the
    # cable is in): the session learns the card then.
    client = await connect201()
    try:
        await client.result(
            "TransactionEvent",
            tx_event("Started", 0, transaction_id="TX-PLUG", trigger="CablePluggedIn", evse=2),
        )
        named = tx_event("Updated", 1, transaction_id="TX-PLUG", id_token=emaid, evse=2)
        named["idToken"]["type"] = "eMAID"
        answer = await client.result("TransactionEvent", named)
    finally:
        await client.close()
    assert answer["idTokenInfo"]["status"] == "Accepted"
    plugged = await ChargingSession.objects.aget(transaction_id__isnull=False, connector_id=2)
    assert (plugged.id_tag, plugged.token_id) == (emaid, card.pk)

    await Token.objects.filter(pk=card.pk).aupdate(blocked=True)
    answer = await authorize_over_socket(payload)
    assert answer["idTokenInfo"]["status"] == "Blocked"
    # Another number under our prefix is no card of ours.
    other = f"NLEVB{str(card.pk + 1000).zfill(9)}"
    stranger = issue(other, mo_world.mo_sub, ca=False, ocsp_url=mo_world.responder.url)
    answer = await authorize_over_socket(
        {
            "idToken": {"idToken": other, "type": "eMAID"},
            "certificate": stranger.pem + mo_world.mo_sub.pem,
        }
    )
    assert answer["idTokenInfo"]["status"] == "Unknown"


def test_the_api_takes_a_contract_token_only_by_its_emaid(charger):
    from rest_framework.test import APIClient

    from tests.factories import MembershipFactory

    organization = charger.property.organization
    client = APIClient()
    client.force_authenticate(MembershipFactory(organization=organization, role="owner").user)
    body = {"organization": organization.pk, "type": "EMAID", "valid": True}
    refused = client.post("/api/v1/tokens/", {**body, "uid": "04A1B2C3"}, format="json")
    assert refused.status_code == 400 and "eMAID" in refused.json()["uid"][0]
    assert not Token.objects.filter(organization=organization).exists()
    added = client.post("/api/v1/tokens/", {**body, "uid": "DE8EOC12345678"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["type"] == "EMAID"


def test_a_replayed_start_of_an_own_contract_finds_its_card(charger):
    """The journal's replay stores events without the live decision (no card at hand): a
    contract's eMAID still finds the card whose contract id it is, as the live path did."""
    from chargers.sessions.transactions import transaction_event_record
    from tests.factories import TokenFactory
    from tests.roaming.test_emsp_tokens import with_identity

    organization = charger.property.organization
    with_identity(organization)
    card = TokenFactory(uid="04A1B2C3", organization=organization)
    emaid = f"NLEVB{str(card.pk).zfill(9)}"
    started = tx_event("Started", 0, transaction_id="TX-REPLAY", id_token=emaid, wh=0)
    started["idToken"]["type"] = "eMAID"
    transaction_event_record(
        charger_id=charger.pk, payload=started, received_at=timezone.now(), transaction_id=7001
    )
    assert ChargingSession.objects.get(id_tag=emaid).token_id == card.pk
    # A uid of the same shape that is no contract (type ISO14443) is not read as one.
    other = tx_event("Started", 0, transaction_id="TX-RFID", id_token=emaid, wh=0, evse=2)
    transaction_event_record(
        charger_id=charger.pk, payload=other, received_at=timezone.now(), transaction_id=7002
    )
    assert ChargingSession.objects.get(ocpp_transaction_id="TX-RFID").token_id is None
