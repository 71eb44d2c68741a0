"""Mobility Providers › Roaming partners › a provider: when the provider refused our credentials
on the last live check of a card (real-time authorization, HTTP 401/403: authorization keeps it
as the provider's `live_error`), the partner page says so in words (what failed, when, what to
do), never the stored or answered text; its next answer about a card clears it. A hub's page
names each provider it routes whose live check it refused. A host of another organization gets
404, as for every partner page.

A real HTTP stub provider answers the live check; authorization asks it as it does for a card
at a charger (`msp_validate_live`).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from authorization.decisions import MspAnswer
from authorization.models import MobilityServiceProvider
from authorization.services import msp_live_error_record, msp_validate_live
from backoffice.templatetags.when import when
from roaming.models import HubParty, Partner
from tests.factories import MembershipFactory, OrganizationFactory
from tests.roaming.conftest import connected_partner

pytestmark = pytest.mark.django_db(transaction=True)  # the live check runs in another thread

REFUSED_US = (401, {"status_code": 2000, "status_message": "Invalid or missing token xyz-raw"})
ALLOWED = (200, {"status_code": 1000, "data": {"allowed": "ALLOWED"}})


class StubProvider:
    """An OCPI tokens Sender answering each POST .../authorize with `answer` (status, body)."""

    def __init__(self, answer):
        self.answer = answer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
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


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    server = StubProvider(REFUSED_US)
    yield server
    server.close()


def ask_live(msp: MobilityServiceProvider) -> MspAnswer:
    answer, _, _ = async_to_sync(msp_validate_live)(
        msp, "CARD0001", location_id="LOC1", station_id="CP-1"
    )
    return answer


def page(partner: Partner, *, role: str = "owner", organization=None) -> tuple[int, str]:
    client = Client()
    member = MembershipFactory(organization=organization or partner.organization, role=role)
    client.force_login(member.user)
    response = client.get(reverse("partners:msp-ocpi-partner", args=[partner.pk]))
    return response.status_code, response.content.decode()


def live_checks(html: str) -> str:
    start = html.index('id="live-checks"')
    return html[start : html.index("</dd>", start)]


def test_a_refused_live_check_is_said_with_when_and_what_to_do_until_its_next_answer(stub):
    partner = connected_partner(OrganizationFactory(), name="VoltRoam")
    msp = partner.msp
    MobilityServiceProvider.objects.filter(pk=msp.pk).update(live_validation_url=stub.url)
    msp.refresh_from_db()

    status, html = page(partner)
    assert status == 200
    assert "no refusal of our credentials" in live_checks(html)
    assert "Connected, live checks refused" not in html

    assert ask_live(msp) == MspAnswer.CREDENTIALS_REFUSED
    msp.refresh_from_db()
    assert msp.live_error and msp.live_error_at is not None

    status, html = page(partner)
    assert status == 200
    said = live_checks(html)
    # Before: the page named the provider and nothing else; the refusal was on Mobility
    # Providers only.
    assert "Our credentials refused" in said
    assert (
        "Checking a card live with it (real-time authorization) failed: it refused our "
        "credentials (HTTP 401)" in said
    )
    assert f"Last refused {when(msp.live_error_at)}" in said  # when
    assert "click <em>Renew credentials</em> below" in said  # what to do, for who can
    assert "Until then its cards that are checked live are refused (Invalid)." in said
    assert "Connected, live checks refused" in html  # the state beside its name
    # Words only: neither what the provider answered nor the stored text.
    assert "xyz-raw" not in html and msp.live_error not in html

    # A viewer cannot renew: told who can.
    _, html = page(partner, role="viewer")
    assert "ask an owner or manager of" in live_checks(html)

    # A host of another organization: 404, as before.
    assert page(partner, organization=OrganizationFactory())[0] == 404

    # Its next answer about a card clears it.
    stub.answer = ALLOWED
    assert ask_live(msp) == MspAnswer.ALLOWED
    _, html = page(partner)
    assert "no refusal of our credentials" in live_checks(html)
    assert "Our credentials refused" not in html


def test_a_hubs_page_names_each_routed_provider_whose_live_check_it_refused():
    org = OrganizationFactory()
    hub = connected_partner(org, name="RoamHub", role=Partner.Role.HUB, msp=None)
    routed = MobilityServiceProvider.objects.create(
        organization=org,
        name="FarAway Mobility",
        country_code="FR",
        party_id="FAM",
        live_validation_url="https://hub.example/ocpi/2.2.1/tokens",
        via_hub=True,
    )
    HubParty.objects.create(partner=hub, msp=routed)
    quiet = MobilityServiceProvider.objects.create(
        organization=org, name="Quiet Mobility", country_code="FR", party_id="QMO", via_hub=True
    )
    HubParty.objects.create(partner=hub, msp=quiet)
    at = timezone.now()
    msp_live_error_record(
        routed.pk,
        "The provider refused our credentials (HTTP 403): it said nothing about the card.",
        at,
    )

    status, html = page(hub)
    assert status == 200
    said = live_checks(html)
    assert "FarAway Mobility" in said and "FR*FAM" in said
    assert "it refused our credentials (HTTP 403)" in said
    assert f"Last refused {when(at)}" in said
    assert "Quiet Mobility" not in said
    assert page(hub, organization=OrganizationFactory())[0] == 404
