"""Plug & Charge with a foreign contract whose provider sits behind a hub (issue 52 item 4): the
eMAID names a party that a hub of the operator says it connects (mod_hub_client_info), so the
contract is asked live through the hub, with OCPI routing headers to that party (transport_and_
format "Message Routing"), kept as that party's card, and its CDR goes to the hub addressed to
the party. The hub is a real HTTP server started here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from authorization.models import AuthorizationDecision, MobilityServiceProvider, Token
from authorization.services import live_headers, msp_tokens_pull
from authorization.tasks import msp_tokens_pull_all_task
from chargers.models import ChargingSession
from roaming import ocpi
from roaming import services as roaming_services
from roaming import sessions as roaming_sessions
from roaming.models import HubClient, HubParty, Partner
from tests.chargers.v201.conftest import BOOT, connect201, tx_event
from tests.factories import MembershipFactory

from .pkitools import EMAID
from .test_plug_and_charge import authorize_over_socket, contract_authorize
from .test_plug_and_charge_roaming import tokens_partner

pytestmark = pytest.mark.django_db(transaction=True)


def _connects(hub: Partner, status: str = "CONNECTED", role: str = "EMSP") -> None:
    HubClient.objects.create(
        partner=hub,
        country_code="DE",
        party_id="8EO",
        role=role,
        status=status,
        last_updated=timezone.now(),
    )


@pytest.fixture
def hub(settings, mo_world, charger):
    """A hub (NL*HUB) of the charger's operator on 2.3.0 that connects the eMSP party DE*8EO."""
    served = tokens_partner(
        settings,
        mo_world,
        charger.property.organization,
        "/ocpi/hub/2.3.0",
        country_code="NL",
        party_id="HUB",
        role=Partner.Role.HUB,
    )
    yield served
    served.stop()


async def test_a_contract_of_a_party_behind_a_hub_is_asked_through_it_with_routing_headers(
    mo_world, hub, charger, settings
):
    await sync_to_async(_connects)(hub.partner)
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    [asked] = hub.bodies
    assert asked["path"] == f"/ocpi/hub/2.3.0/tokens/{EMAID}/authorize?type=EMAID"
    headers = hub.headers[0]
    assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == ("DE", "8EO")
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == (
        settings.OCPI_COUNTRY_CODE,
        settings.OCPI_PARTY_ID,
    )
    assert headers["Authorization"].startswith("Token ") and headers["X-Request-ID"]
    # The party is the operator's provider, routed by the hub; the contract is its card.
    msp = await MobilityServiceProvider.objects.aget(
        organization_id=charger.property.organization_id, country_code="DE", party_id="8EO"
    )
    assert msp.via_hub
    assert await HubParty.objects.filter(msp=msp, partner=hub.partner).aexists()
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert (decision.reason, decision.msp_id) == ("accepted_msp_live", msp.pk)
    card = await Token.objects.aget(uid=EMAID)
    assert (card.type, card.msp_id) == (Token.Type.EMAID, msp.pk)


async def test_the_hub_routed_contracts_cdr_goes_to_the_hub_for_the_party(mo_world, hub, charger):
    await sync_to_async(_connects)(hub.partner)
    client = await connect201()
    try:
        await client.result("BootNotification", BOOT)
        await client.result("Authorize", contract_authorize(mo_world.contract_chain))
        started = tx_event("Started", 0, id_token=EMAID, wh=1000, trigger="CablePluggedIn")
        started["idToken"]["type"] = "eMAID"
        assert (await client.result("TransactionEvent", started))["idTokenInfo"][
            "status"
        ] == "Accepted"
        ended_at = (timezone.now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ended = tx_event("Ended", 1, wh=8500, trigger="EVCommunicationLost", timestamp=ended_at)
        await client.result("TransactionEvent", ended)
    finally:
        await client.close()
    session = await ChargingSession.objects.select_related("token", "charger__property").aget(
        id_tag=EMAID
    )
    assert await sync_to_async(roaming_sessions.partner_of)(session) == hub.partner
    cdr = await sync_to_async(roaming_sessions.cdr_create)(session_id=session.pk)
    assert cdr is not None and cdr.partner_id == hub.partner.pk
    assert (cdr.data["cdr_token"]["country_code"], cdr.data["cdr_token"]["party_id"]) == (
        "DE",
        "8EO",
    )  # the push's routing headers are addressed to the party
    # The hub's GET of our sessions lists it too (the parties it routes are its customers).
    total, listed = await sync_to_async(roaming_sessions.sessions_page)(
        hub.partner, ocpi.Page(0, 10, None, None), version="2.3.0"
    )
    assert total == 1 and listed[0]["cdr_token"]["uid"] == EMAID


@pytest.mark.parametrize(("status", "role"), [("OFFLINE", "EMSP"), ("CONNECTED", "CPO")])
async def test_a_party_the_hub_does_not_connect_as_an_emsp_is_not_asked(
    mo_world, hub, status, role
):
    await sync_to_async(_connects)(hub.partner, status=status, role=role)
    answer = await authorize_over_socket(contract_authorize(mo_world.contract_chain))
    assert answer["idTokenInfo"]["status"] == "Unknown"  # no provider of ours to ask
    assert hub.bodies == []
    assert not await Token.objects.filter(uid=EMAID).aexists()


def test_a_party_a_hub_pushes_for_is_asked_through_it_until_the_hub_unregisters(hub, charger):
    msp = roaming_services.party_msp(hub.partner, "DE", "8EO")  # the hub's first push for it
    assert msp is not None
    msp.refresh_from_db()
    assert (msp.live_validation_url, msp.via_hub, msp.ocpi_version) == (
        hub.partner.endpoint("tokens", "SENDER"),
        True,
        "2.3.0",
    )
    # Its cards come with the hub's pushes: the hub's whole token list is never pulled for it.
    assert msp_tokens_pull(msp=msp) == 0
    MobilityServiceProvider.objects.filter(pk=hub.partner.msp_id).update(live_validation_url="")
    assert msp_tokens_pull_all_task.delay().get(disable_sync_subtasks=False) == 0
    roaming_services.partner_unregister(partner=hub.partner)
    msp.refresh_from_db()
    assert msp.live_validation_url == "" and msp.live_validation_token == ""


def test_a_tokens_endpoint_given_by_hand_is_the_providers_own(hub, charger, settings, api_client):
    msp = roaming_services.party_msp(hub.partner, "DE", "8EO")
    assert msp is not None
    settings.OUTBOUND_URL_ALLOWLIST = [*settings.OUTBOUND_URL_ALLOWLIST, "8eo.example"]
    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    api_client.force_authenticate(owner)
    url = f"/api/v1/msps/{msp.pk}/"
    assert api_client.get(url).json()["via_hub"] is True  # shown, never written by the API
    api_client.patch(url, {"via_hub": True}, format="json")
    answer = api_client.patch(
        url, {"live_validation_url": "https://8eo.example/ocpi/2.2.1/tokens"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    msp.refresh_from_db()
    assert (msp.live_validation_url, msp.via_hub) == (
        "https://8eo.example/ocpi/2.2.1/tokens",
        False,
    )
    assert "OCPI-to-party-id" not in live_headers(msp)  # asked directly, no routing headers
