"""A mobility provider whose live check refuses OUR credentials (HTTP 401/403: a rotated token,
an expired registration) has not refused the card. The card is still not authorized (Invalid,
whatever the provider's on-timeout policy or the card's whitelist: nothing made up), but the
decision's reason is `msp_refused_our_credentials`, the Logs decision page says so with what to
do, and Mobility Providers shows the provider's last refusal with its time until the provider's
next answer about a card clears it.

A real HTTP stub provider answers each live check (tests/authorization/test_msp_failing_answer.py
starts one the same way); the charger asks over OCPP.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.urls import reverse

from authorization.decisions import ChargerFacts, Context
from authorization.models import AuthorizationDecision, MobilityServiceProvider, Token
from authorization.services import decide_live
from roaming.models import HubParty, Partner
from tests.factories import ChargerFactory, MembershipFactory, MspFactory, TokenFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED_US = {
    401: (401, {"status_code": 2000, "status_message": "Invalid or missing token"}),
    403: (403, {"status_code": 2000, "status_message": "Forbidden"}),
}
ALLOWED = (200, {"status_code": 1000, "data": {"allowed": "ALLOWED"}})
NOT_ALLOWED = (200, {"status_code": 1000, "data": {"allowed": "NOT_ALLOWED"}})
# What `msp_rejected` says: the words a credentials refusal must never be shown with.
CARD_REFUSED_WORDS = "checked it live and refused it"


class StubMsp:
    """An OCPI tokens endpoint answering each POST .../authorize with `answer` (status, body)."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = 0
        self.authorization: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.asked += 1
                outer.authorization.append(self.headers.get("Authorization", ""))
                status, body = outer.answer
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/2.2.1/tokens"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _allow_local_msp(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def stub():
    server = StubMsp(REFUSED_US[401])
    yield server
    server.close()


@sync_to_async
def _provider_card(url: str, *, on_timeout="reject", whitelist="") -> MobilityServiceProvider:
    charger = ChargerFactory(station_id="CP-CRED")
    msp = MspFactory(
        organization=charger.property.organization,
        name="VoltRoam",
        live_validation_url=url,
        live_validation_token="our-token-it-no-longer-knows",
        on_timeout=on_timeout,
    )
    TokenFactory(uid="CC01", organization=None, msp=msp, whitelist=whitelist)
    return msp


async def _authorize() -> tuple[str, AuthorizationDecision]:
    client = OcppTestClient("CP-CRED")
    assert (await client.connect())[0]
    answer = await client.result("Authorize", {"idTag": "CC01"})
    await client.close()
    decision = await AuthorizationDecision.objects.order_by("-id").afirst()
    return answer["idTagInfo"]["status"], decision


@sync_to_async
def _host_pages(msp_id: int, decision_id: int) -> tuple[str, str, str]:
    """As the operator's host: the Logs decision page, Mobility Providers and the provider's
    live validation page."""
    from django.test import Client

    msp = MobilityServiceProvider.objects.get(pk=msp_id)
    client = Client()
    client.force_login(MembershipFactory(organization_id=msp.organization_id).user)
    pages = [
        client.get(reverse("chargers:decision-detail", args=[decision_id])),
        client.get(reverse("authorization:msp-list")),
        client.get(reverse("authorization:msp-validation", args=[msp_id])),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200]
    return tuple(page.content.decode() for page in pages)  # type: ignore[return-value]


@sync_to_async
def _msp(msp_id: int) -> MobilityServiceProvider:
    return MobilityServiceProvider.objects.get(pk=msp_id)


async def test_401_then_403_say_our_credentials_were_refused_and_200_clears_it(stub):
    msp = await _provider_card(stub.url)

    for status in (401, 403):
        stub.answer = REFUSED_US[status]
        told, decision = await _authorize()

        # Not authorized, as before; but the reason is ours, not the card's.
        assert (told, decision.status) == ("Invalid", "Invalid")
        assert decision.reason == "msp_refused_our_credentials"
        assert decision.msp_response["http_status"] == status
        assert f"refused our credentials (HTTP {status})" in decision.msp_response["error"]
        recorded = await _msp(msp.pk)
        assert f"HTTP {status}" in recorded.live_error and recorded.live_error_at is not None

        detail, providers, validation = await _host_pages(msp.pk, decision.pk)
        assert "refused our credentials" in detail and "Renew credentials" in detail
        assert CARD_REFUSED_WORDS not in detail
        for page in (providers, validation):
            assert f"msp-{msp.pk}-live-error" in page
            assert f"The provider refused our credentials (HTTP {status})" in page
            # Not an OCPI partner of ours: support set its credentials up.
            assert "ask support to renew its token" in page
    assert stub.asked == 2 and stub.authorization == ["Token our-token-it-no-longer-knows"] * 2

    stub.answer = ALLOWED  # the credentials were renewed
    told, decision = await _authorize()
    assert (told, decision.reason) == ("Accepted", "accepted_msp_live")
    cleared = await _msp(msp.pk)
    assert (cleared.live_error, cleared.live_error_at) == ("", None)
    _detail, providers, validation = await _host_pages(msp.pk, decision.pk)
    assert f"msp-{msp.pk}-live-error" not in providers + validation


async def test_a_refusal_of_the_card_after_it_also_clears_our_credentials_error(stub):
    """Any answer about a card (here a refusal of it) means it took our credentials again."""
    msp = await _provider_card(stub.url)
    await _authorize()
    assert (await _msp(msp.pk)).live_error

    stub.answer = NOT_ALLOWED
    told, decision = await _authorize()
    assert (told, decision.reason) == ("Invalid", "msp_rejected")
    assert (await _msp(msp.pk)).live_error == ""


@pytest.mark.parametrize(
    "on_timeout,whitelist",
    [("accept", ""), ("reject", Token.Whitelist.ALLOWED_OFFLINE)],
    ids=["accept-policy", "allowed-offline-card"],
)
async def test_a_credentials_refusal_is_never_accepted_by_a_timeout_policy(
    stub, on_timeout, whitelist
):
    """Unlike an outage (5xx, no answer), a provider refusing us has told us nothing about the
    card: no policy turns that into a success."""
    await _provider_card(stub.url, on_timeout=on_timeout, whitelist=whitelist)
    told, decision = await _authorize()
    assert stub.asked == 1
    assert (told, decision.reason) == ("Invalid", "msp_refused_our_credentials")


async def test_a_positive_answer_still_cached_counts_as_during_an_outage(stub):
    """The provider's ALLOWED of minutes ago is used without asking (as when it is down); once
    it is gone, the refusal of our credentials decides again."""
    msp = await _provider_card(stub.url)
    stub.answer = ALLOWED
    assert (await _authorize())[0] == "Accepted"

    stub.answer = REFUSED_US[401]
    told, decision = await _authorize()
    assert (told, decision.reason, decision.msp_response) == (
        "Accepted",
        "accepted_msp_live",
        {"cached": True},
    )
    assert stub.asked == 1

    await sync_to_async(cache.clear)()
    told, decision = await _authorize()
    assert (told, decision.reason) == ("Invalid", "msp_refused_our_credentials")
    assert stub.asked == 2 and (await _msp(msp.pk)).live_error


@pytest.mark.parametrize("allowed", ["CREDENTIALS_REFUSED", "TIMEOUT"])
async def test_a_provider_cannot_answer_our_own_readings_as_its_allowed(stub, allowed):
    """Only OCPI's AllowedType counts in `data.allowed`: a provider writing our own readings
    there sent a malformed answer (a refusal of the card), which neither records a credentials
    error nor lets the accept-on-timeout policy accept."""
    msp = await _provider_card(stub.url, on_timeout="accept")
    stub.answer = (200, {"status_code": 1000, "data": {"allowed": allowed}})
    told, decision = await _authorize()
    assert (told, decision.reason) == ("Invalid", "msp_rejected")
    assert (await _msp(msp.pk)).live_error == ""


@sync_to_async
def _as_ocpi_partner(msp: MobilityServiceProvider, *, hub: bool) -> Partner:
    partner = Partner.objects.create(
        organization_id=msp.organization_id,
        name="HubWay" if hub else "VoltRoam OCPI",
        state=Partner.State.CONNECTED,
        role=Partner.Role.HUB if hub else Partner.Role.EMSP,
    )
    if hub:
        HubParty.objects.create(partner=partner, msp=msp)
        MobilityServiceProvider.objects.filter(pk=msp.pk).update(via_hub=True)
    else:
        partner.msp = msp
        partner.save(update_fields=["msp"])
    return partner


@pytest.mark.parametrize("hub", [False, True], ids=["own-partner", "through-a-hub"])
async def test_an_ocpi_partner_is_pointed_to_its_renew_credentials(stub, hub):
    msp = await _provider_card(stub.url)
    partner = await _as_ocpi_partner(msp, hub=hub)
    stub.answer = REFUSED_US[403]
    _told, decision = await _authorize()
    assert decision.reason == "msp_refused_our_credentials"

    _detail, providers, validation = await _host_pages(msp.pk, decision.pk)
    link = reverse("partners:msp-ocpi-partner", args=[partner.pk])
    for page in (providers, validation):
        assert f'href="{link}">{partner.name}</a>' in page
        assert "click Renew credentials" in page
        assert "ask support" not in page


@sync_to_async
def _contract_issuer(url: str) -> tuple[ChargerFacts, MobilityServiceProvider]:
    from chargers.sessions.services import charger_facts

    charger = ChargerFactory(station_id="CP-PNC")
    issuer = MspFactory(
        organization=charger.property.organization,
        country_code="DE",
        party_id="8AA",
        live_validation_url=url,
        ocpi_version="2.3.0",
    )
    return charger_facts(charger), issuer


async def test_a_foreign_contract_whose_issuer_refuses_us_says_so(stub):
    """Plug & Charge: a contract no card of ours holds is asked of the provider its eMAID names;
    its 401 is a refusal of our credentials too, and no card is kept from it."""
    charger, issuer = await _contract_issuer(stub.url)
    decision, record, token = await decide_live(
        uid="DE-8AA-CA2B3C4D5-X",
        charger=charger,
        context=Context.LOCAL,
        token=None,
        location_id="1",
        contract=True,
    )
    assert stub.asked == 1
    assert (str(decision.status), decision.reason) == ("Invalid", "msp_refused_our_credentials")
    assert token is None and record["msp_id"] == issuer.pk
    assert "HTTP 401" in (await _msp(issuer.pk)).live_error


def test_the_partner_page_names_a_failed_live_check():
    """A partner's last error of a live check ("POST tokens: ...") names the action."""
    from roaming.plain import error_words

    words = error_words("POST tokens: HTTP 401")
    assert words.startswith("Checking a card live with it (real-time authorization) failed: ")
    assert "it refused our credentials (HTTP 401)" in words
