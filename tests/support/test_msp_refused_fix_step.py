"""A card refused because its mobility provider refused OUR credentials: the Help panel gives
the host the step that fixes it, with the page that does it. The provider's roaming partner page
(Cards & roaming › Roaming partners › the partner, /roaming/partners/<pk>/: Renew credentials
under Connection), or the hub's when a hub routes the provider, or support when support set the
provider up. Before, the answer explained the refusal and gave no step of its own.

The refusal is made for real (a charger's Authorize over OCPP; the provider a real HTTP stub that
answers 401, tests/authorization/test_msp_refused_our_credentials.py has the stub), and the
question goes through the assistant's API. Only a host of the organization that has the provider
is given the partner's page; a guest and a host of another organization are not.
"""

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from rest_framework.test import APIClient

from authorization.models import AuthorizationDecision, MobilityServiceProvider
from roaming.models import HubParty, Partner
from tests.authorization.test_msp_refused_our_credentials import StubMsp
from tests.factories import ChargerFactory, MembershipFactory, MspFactory, TokenFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/support/assistant/"


@pytest.fixture(autouse=True)
def _allow_local_msp(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def stub():
    server = StubMsp((401, {"status_code": 2000, "status_message": "Unknown token"}))
    yield server
    server.close()


@sync_to_async
def _provider_card(url: str, route: str) -> tuple[int, int | None]:
    """HB-9's organization has the provider VoltRoam (live checks at `url`) and its card
    04C0FFEE01; `route` says how: its own OCPI partner, a hub's party, or set up by support.
    Returns the organization and the partner whose page renews our credentials (None: support)."""
    charger = ChargerFactory(station_id="HB-9")
    organization = charger.property.organization
    msp = MspFactory(organization=organization, name="VoltRoam", live_validation_url=url)
    TokenFactory(uid="04C0FFEE01", organization=None, msp=msp)
    if route == "support":
        return organization.pk, None
    partner = Partner.objects.create(
        organization=organization,
        name="HubWay" if route == "hub" else "VoltRoam OCPI",
        state=Partner.State.CONNECTED,
        role=Partner.Role.HUB if route == "hub" else Partner.Role.EMSP,
    )
    if route == "hub":
        HubParty.objects.create(partner=partner, msp=msp)
        MobilityServiceProvider.objects.filter(pk=msp.pk).update(via_hub=True)
    else:
        partner.msp = msp
        partner.save(update_fields=["msp"])
    return organization.pk, partner.pk


async def _refused_over_ocpp() -> None:
    client = OcppTestClient("HB-9")
    assert (await client.connect())[0]
    answer = await client.result("Authorize", {"idTag": "04C0FFEE01"})
    assert answer["idTagInfo"]["status"] == "Invalid"
    await client.close()
    decision = await AuthorizationDecision.objects.order_by("-id").afirst()
    assert decision.reason == "msp_refused_our_credentials"


@sync_to_async
def _ask(organization_id: int | None, message: str, **context) -> str:
    """The reply and the facts, as one text, to `message` from a member of the organization
    (None: an anonymous guest)."""
    client = APIClient()
    if organization_id is not None:
        client.force_authenticate(MembershipFactory(organization_id=organization_id).user)
    response = client.post(
        URL, {"message": message, "conversation": None, "context": context}, format="json"
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    return answer["reply"] + " " + " ".join(answer["facts"])


@pytest.mark.parametrize("route", ["own", "hub"])
async def test_the_host_is_sent_to_the_partner_page_that_renews_our_credentials(stub, route):
    organization_id, partner_pk = await _provider_card(stub.url, route)
    await _refused_over_ocpp()
    link = reverse("partners:msp-ocpi-partner", args=[partner_pk])
    name = "HubWay" if route == "hub" else "VoltRoam OCPI"

    for question, context in (
        ("Why was card 04C0FFEE01 refused at my charger?", {}),  # the card named
        ("a card was rejected", {"station_id": "HB-9"}),  # the charger's refusals
    ):
        reply = await _ask(organization_id, question, **context)
        step = next(s for s in reply.split("What to do: ")[1:]).split(" 2. ")[0]
        assert f"Cards & roaming › Roaming partners › {name} ({link})" in step, reply
        assert "click Renew credentials under Connection" in step, reply
        if route == "hub":
            assert "VoltRoam's live checks go through the hub HubWay" in step, reply
        assert "refused our credentials" in reply and "the card is not the problem" in reply


async def test_a_provider_set_up_by_support_is_renewed_by_support(stub):
    organization_id, _ = await _provider_card(stub.url, "support")
    await _refused_over_ocpp()

    reply = await _ask(organization_id, "Why was card 04C0FFEE01 refused at my charger?")
    assert "VoltRoam's credentials were set up by support" in reply
    assert "ask support to renew its token" in reply
    assert "/roaming/partners/" not in reply


async def test_only_the_providers_host_is_given_its_partner_page(stub):
    organization_id, partner_pk = await _provider_card(stub.url, "own")
    await _refused_over_ocpp()
    link = reverse("partners:msp-ocpi-partner", args=[partner_pk])
    assert link in await _ask(organization_id, "a card was rejected", station_id="HB-9")

    guest = await _ask(None, "my card was rejected", station_id="HB-9")
    assert "could not check the card with its provider" in guest  # told, in a guest's words
    stranger_org = await sync_to_async(lambda: MembershipFactory().organization_id)()
    stranger = await _ask(stranger_org, "a card was rejected", station_id="HB-9")
    for reply in (guest, stranger):
        assert "/roaming/partners/" not in reply and "Renew credentials" not in reply
        assert "VoltRoam" not in reply
