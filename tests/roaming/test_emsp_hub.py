"""Issue 55 item 5, our eMSP role through a hub: one registration with an independent hub
(tests/roaming/cpo_stub.py HubStub, written from the texts, over real HTTP) reaches two CPO
parties. Their locations come mixed in one GET ALL and are kept per party; the hub's ClientInfo
says which CPO parties are behind it (pulled, then pushed); a driver's start goes to the right
party with routing headers; a party not behind the hub pushes nothing; our cards are broadcast."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import emsp_driving, selectors, services
from roaming.models import HubClient, Partner, PartnerCommand, PartnerLocation
from tests.drivers.conftest import save_card, sign_up
from tests.factories import OrganizationFactory
from tests.roaming.conftest import auth
from tests.roaming.cpo_stub import HubStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, api_for, cpo_partner, with_identity

NOW = "2026-01-01T00:00:00Z"


def _location(cc: str, pid: str, location_id: str) -> dict:
    return {
        "country_code": cc,
        "party_id": pid,
        "id": location_id,
        "publish": True,
        "name": f"Square {location_id}",
        "address": "Main street 1",
        "city": "Utrecht",
        "country": "NLD",
        "time_zone": "Europe/Amsterdam",
        "evses": [
            {
                "uid": "E1",
                "status": "AVAILABLE",
                "connectors": [{"id": "1", "standard": "IEC_62196_T2", "tariff_ids": []}],
                "last_updated": NOW,
            }
        ],
        "last_updated": NOW,
    }


def _client_info(cc: str, pid: str, status: str = "CONNECTED", role: str = "CPO") -> dict:
    return {
        "country_code": cc,
        "party_id": pid,
        "role": role,
        "status": status,
        "last_updated": NOW,
    }


def _push(method: str, url: str, body: dict, token: str) -> dict:
    response = Client().generic(
        method,
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )
    return {"http": response.status_code, **response.json()}


@pytest.mark.django_db(transaction=True)
def test_one_hub_registration_reaches_two_cpo_parties_for_our_drivers(
    live_server, settings, client
):
    settings.SITE_URL = live_server.url
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    org = OrganizationFactory()
    identity = with_identity(org)
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    hub = HubStub()
    hub.client_infos = [
        _client_info("BE", "CPX"),
        _client_info("DE", "CPY"),
        _client_info("FR", "EMP", role="EMSP"),
    ]
    hub.locations = [
        _location("BE", "CPX", "LOC-BE"),
        _location("DE", "CPY", "LOC-DE"),
        _location("IT", "ZZZ", "LOC-IT"),  # a party the hub does not list: not taken
    ]
    try:
        created = api_for(org).post(
            "/api/v1/roaming/partners/",
            {
                "organization": org.pk,
                "name": "Hub",
                "versions_url": hub.versions_url,
                "token_a": hub.token_a,
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        partner = Partner.objects.get(pk=created.json()["id"])
        assert (partner.role, partner.cpo_country_code, partner.cpo_party_id) == (
            "HUB",
            "NL",
            "HUB",
        )
        # Its ClientInfo was pulled, then the GET ALL of its CPOs' locations, kept per party.
        assert set(HubClient.objects.values_list("country_code", "party_id", "role")) == {
            ("BE", "CPX", "CPO"),
            ("DE", "CPY", "CPO"),
            ("FR", "EMP", "EMSP"),
        }
        assert set(PartnerLocation.objects.values_list("country_code", "party_id")) == {
            ("BE", "CPX"),
            ("DE", "CPY"),
        }
        counts = selectors.partner_counts(partner)
        assert (counts["their_locations"], counts["their_cdrs"]) == (2, 0)
        pulled = hub.routing_of("/locations")
        assert (pulled["to-country-code"], pulled["to-party-id"]) == ("NL", "HUB")

        # The hub pushes: DE*CPY goes offline; a push for a party not behind it is refused.
        token = hub.our_token_at_emsp
        answer = _push(
            "PUT",
            "/ocpi/2.2.1/hubclientinfo/DE/CPY",
            _client_info("DE", "CPY", "OFFLINE"),
            token,
        )
        assert answer["status_code"] == 1000
        assert HubClient.objects.get(party_id="CPY").status == "OFFLINE"
        assert _push("GET", "/ocpi/2.2.1/hubclientinfo/DE/CPY", {}, token)["data"]["status"] == (
            "OFFLINE"
        )
        bad = _push("PUT", "/ocpi/2.2.1/hubclientinfo/DE/CPY", _client_info("DE", "XXX"), token)
        assert bad["status_code"] == 2001
        stray = _push(
            "PUT",
            "/ocpi/2.2.1/emsp/locations/IT/ZZZ/LOC-IT",
            _location("IT", "ZZZ", "LOC-IT"),
            token,
        )
        assert (stray["http"], stray["status_code"]) == (404, 2003)

        # A driver starts at BE*CPX through the hub: routed to that party, from our eMSP party.
        sign_up(client, "hub.driver@example.com")
        save_card(client)
        be = PartnerLocation.objects.get(party_id="CPX")
        client.post(f"/driver/networks/{be.pk}/start/", {"evse": "E1", "connector": "1"})
        start = hub.wait_for_command("START_SESSION", timeout=5)
        assert start["location_id"] == "LOC-BE"
        routing = hub.routing_of("/commands/START_SESSION")
        assert routing == {
            "to-country-code": "BE",
            "to-party-id": "CPX",
            "from-country-code": "NL",
            "from-party-id": "EVB",
        }
        # The offline party takes no start: nothing is sent.
        de = PartnerLocation.objects.get(party_id="CPY")
        PartnerCommand.objects.all().delete()
        page = client.post(
            f"/driver/networks/{de.pk}/start/", {"evse": "E1", "connector": "1"}, follow=True
        )
        assert "This network is offline right now" in page.content.decode()
        assert not PartnerCommand.objects.exists()

        # The driver's app token was broadcast to the hub (to its own party), from ours.
        profile = DriverProfile.objects.get(user__email="hub.driver@example.com")
        app_token = driver_roaming.roaming_token(profile, identity)
        services.deliveries_send(partner_id=partner.pk)
        hub.wait_for_token(app_token.uid, valid=True, timeout=5)
        pushed = hub.routing_of(f"/tokens/NL/EVB/{app_token.uid}")
        assert (pushed["to-party-id"], pushed["from-party-id"]) == ("HUB", "EVB")
    finally:
        hub.close()


def test_only_a_hub_sends_client_info(db):
    partner = cpo_partner(OrganizationFactory())
    answer = _push("PUT", "/ocpi/2.2.1/hubclientinfo/BE/CPX", _client_info("BE", "CPX"), CPO_TOKEN)
    assert answer["http"] in (401, 403)
    assert not HubClient.objects.filter(partner=partner).exists()
