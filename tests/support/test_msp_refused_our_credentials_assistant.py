"""The support assistant on a card refused because its mobility provider refused OUR credentials
(HTTP 401/403 on the live check): it says so, and never that the provider rejected the card.

The refusal is made for real: a charger's Authorize over OCPP, the provider a real HTTP stub that
answers 401 (tests/authorization/test_msp_refused_our_credentials.py has the stub).
"""

import pytest
from asgiref.sync import sync_to_async

from authorization.models import AuthorizationDecision
from tests.authorization.test_msp_refused_our_credentials import StubMsp
from tests.factories import ChargerFactory, MembershipFactory, MspFactory, TokenFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/support/assistant/"
CARD_REFUSED_WORDS = ("checked it live and refused it", "the card's provider refused it")


@pytest.fixture(autouse=True)
def _allow_local_msp(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def stub():
    server = StubMsp((401, {"status_code": 2000, "status_message": "Unknown token"}))
    yield server
    server.close()


@sync_to_async
def _charger_with_a_provider_card(url: str) -> int:
    charger = ChargerFactory(station_id="HB-9")
    msp = MspFactory(
        organization=charger.property.organization, name="VoltRoam", live_validation_url=url
    )
    TokenFactory(uid="04C0FFEE01", organization=None, msp=msp)
    return charger.property.organization_id


async def _refused_over_ocpp() -> AuthorizationDecision:
    client = OcppTestClient("HB-9")
    assert (await client.connect())[0]
    answer = await client.result("Authorize", {"idTag": "04C0FFEE01"})
    assert answer["idTagInfo"]["status"] == "Invalid"
    decision = await AuthorizationDecision.objects.order_by("-id").afirst()
    await client.close()
    return decision


@sync_to_async
def _ask(organization_id: int | None, message: str, **context) -> dict:
    from rest_framework.test import APIClient

    client = APIClient()
    if organization_id is not None:
        client.force_authenticate(MembershipFactory(organization_id=organization_id).user)
    response = client.post(
        URL, {"message": message, "conversation": None, "context": context}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


async def test_the_host_is_told_the_provider_refused_our_credentials_and_what_to_do(stub):
    organization_id = await _charger_with_a_provider_card(stub.url)
    decision = await _refused_over_ocpp()
    assert decision.reason == "msp_refused_our_credentials"

    answer = await _ask(organization_id, "Why was card 04C0FFEE01 refused at my charger?")
    reply = answer["reply"]
    assert reply.startswith("Card 04C0FFEE01 was refused at HB-9")
    assert "refused our credentials" in reply
    # No roaming partner connects VoltRoam here: support set it up, and renews its token
    # (tests/support/test_msp_refused_fix_step.py: a partner's or a hub's Renew credentials).
    assert "VoltRoam's credentials were set up by support" in reply
    assert not any(words in reply for words in CARD_REFUSED_WORDS)

    facts = (await _ask(organization_id, "a card was rejected", station_id="HB-9"))["facts"]
    refusal = next(f for f in facts if "was refused" in f)
    assert refusal.startswith("Card 04C0FFEE01 was refused")
    assert "the card's mobility provider VoltRoam refused our credentials" in refusal
    assert not any(words in refusal for words in CARD_REFUSED_WORDS)


async def test_a_guest_is_told_it_is_not_their_card(stub):
    await _charger_with_a_provider_card(stub.url)
    await _refused_over_ocpp()

    answer = await _ask(None, "my card was rejected", station_id="HB-9")
    refusal = next(f for f in answer["facts"] if f.startswith("A card was refused here"))
    assert "could not check the card with its provider" in refusal
    assert "not your card" in refusal
    assert "04C0" not in " ".join(answer["facts"]) + answer["reply"]
    assert not any(words in refusal for words in CARD_REFUSED_WORDS)
