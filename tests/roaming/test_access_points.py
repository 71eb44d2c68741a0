"""AFIR access-point feeds (issue 56, item 1): GET/PUT /api/v1/organizations/{id}/access-points/
{country}/ and the list with each feed's freshness, last delivery and last error in words."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from roaming.client import PARTNER_URL_MESSAGE
from roaming.models import AccessPointFeed, Delivery, Partner
from tests.factories import OrganizationFactory
from tests.roaming.test_api import api_for

NAP_URL = "http://127.0.0.1:9/ocpi/2.2.1"


def feeds_url(org):
    return f"/api/v1/organizations/{org.pk}/access-points/"


@pytest.fixture
def loopback(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.OCPI_PARTY_ID = "EVB"


def nl_feed(**fields):
    return {
        "enabled": True,
        "protocol": "ocpi-2.2.1",
        "endpoint_url": NAP_URL,
        "token": "nap-secret-token",
        "party_id": "EVB",
        **fields,
    }


@pytest.mark.django_db
def test_a_feed_is_put_read_back_without_its_token_and_listed_with_its_freshness(loopback):
    org = OrganizationFactory()
    api = api_for(org)

    put = api.put(f"{feeds_url(org)}nl/", nl_feed(), format="json")

    assert put.status_code == 200, put.content
    body = put.json()
    assert (body["country"], body["enabled"], body["protocol"], body["party_id"]) == (
        "NL",
        True,
        "ocpi-2.2.1",
        "EVB",
    )
    assert body["token_set"] is True and "nap-secret-token" not in json.dumps(body)
    listed = api.get(feeds_url(org)).json()
    assert [(f["country"], f["freshness_seconds"], f["waiting"]) for f in listed] == [("NL", 0, 0)]
    assert listed[0]["last_delivery_at"] is None and listed[0]["last_error"] == ""
    # Its outbox identity pushes to the access point's locations and tariffs receivers, with
    # the token given; it is not one of the roaming partners.
    partner = AccessPointFeed.objects.get(organization=org).partner
    assert partner.role == Partner.Role.NAP and partner.state == Partner.State.CONNECTED
    assert partner.outgoing_token == "nap-secret-token"
    assert partner.endpoint("tariffs", "RECEIVER") == f"{NAP_URL}/tariffs"
    assert api.get("/api/v1/roaming/partners/").json()["results"] == []
    # A PUT without the token keeps it; switching off stops the pushes.
    off = api.put(f"{feeds_url(org)}NL/", {"enabled": False}, format="json")
    assert off.status_code == 200 and off.json()["token_set"] is True
    partner.refresh_from_db()
    assert partner.state == Partner.State.UNREGISTERED and partner.outgoing_token


@pytest.mark.django_db
def test_freshness_is_the_age_of_the_oldest_change_not_accepted_and_the_error_is_in_words(
    loopback,
):
    org = OrganizationFactory()
    api = api_for(org)
    api.put(f"{feeds_url(org)}NL/", nl_feed(), format="json")
    partner = AccessPointFeed.objects.get(organization=org).partner
    old = Delivery.objects.create(
        partner=partner,
        module="locations",
        object_key="evse:1/X",
        method="PATCH",
        path="/NL/EVB/1/X",
        body={"status": "AVAILABLE"},
        next_attempt_at=timezone.now(),
    )
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=95))
    Delivery.objects.create(
        partner=partner,
        module="tariffs",
        object_key="tariff:1",
        method="PUT",
        path="/NL/EVB/1",
        body={},
        next_attempt_at=timezone.now(),
        status=Delivery.Status.SENT,
    )
    Partner.objects.filter(pk=partner.pk).update(
        last_error="PUT tariffs: HTTP 503", last_error_at=timezone.now()
    )

    feed = api.get(feeds_url(org)).json()[0]

    assert feed["waiting"] == 1 and 95 <= feed["freshness_seconds"] < 95 + 60
    assert feed["last_error"] == (
        "Sending a price (tariff) failed: its server failed (HTTP 503). "
        "It waits and is sent again automatically."
    )


@pytest.mark.django_db
def test_one_operator_identity_a_second_party_id_is_refused(loopback):
    org = OrganizationFactory()
    api = api_for(org)

    refused = api.put(f"{feeds_url(org)}NL/", nl_feed(party_id="XYZ"), format="json")
    ours = api.put(f"{feeds_url(org)}NL/", nl_feed(party_id=""), format="json")

    assert refused.status_code == 400 and "EVB" in refused.json()["party_id"][0]
    assert ours.status_code == 200 and ours.json()["party_id"] == "EVB"
    assert AccessPointFeed.objects.get().party_id == "EVB"


@pytest.mark.django_db
def test_the_endpoint_goes_through_the_outbound_guard_and_datex_is_not_offered_yet(loopback):
    org = OrganizationFactory()
    api = api_for(org)

    private = api.put(
        f"{feeds_url(org)}NL/", nl_feed(endpoint_url="https://10.0.0.8/ocpi"), format="json"
    )
    datex = api.put(f"{feeds_url(org)}DE/", nl_feed(protocol="datex-ii-3"), format="json")
    no_token = api.put(f"{feeds_url(org)}BE/", nl_feed(token=""), format="json")

    assert private.status_code == 400 and private.json()["endpoint_url"] == [PARTNER_URL_MESSAGE]
    assert datex.status_code == 400 and "DATEX II" in datex.json()["protocol"][0]
    assert no_token.status_code == 400 and "token" in no_token.json()
    assert not AccessPointFeed.objects.exists() and not Partner.objects.exists()


@pytest.mark.django_db
def test_another_organizations_host_gets_404_and_a_viewer_cannot_change_a_feed(loopback):
    org, other = OrganizationFactory(), OrganizationFactory()
    api_for(org).put(f"{feeds_url(org)}NL/", nl_feed(), format="json")
    stranger = api_for(other)

    assert stranger.get(feeds_url(org)).status_code == 404
    assert stranger.get(f"{feeds_url(org)}NL/").status_code == 404
    assert stranger.put(f"{feeds_url(org)}NL/", nl_feed(), format="json").status_code == 404
    assert stranger.put(f"{feeds_url(org)}DE/", nl_feed(), format="json").status_code == 404
    assert stranger.get(feeds_url(other)).json() == []
    viewer = api_for(org, role="viewer")
    assert viewer.get(f"{feeds_url(org)}NL/").status_code == 200
    assert viewer.put(f"{feeds_url(org)}NL/", {"enabled": False}, format="json").status_code == 403
    assert AccessPointFeed.objects.get().enabled is True
    assert AccessPointFeed.objects.count() == 1


@pytest.mark.django_db
def test_the_access_point_pulls_locations_and_tariffs_with_its_own_token_and_nothing_else(
    client, loopback, settings
):
    from tests.roaming.conftest import auth
    from tests.roaming.test_nap_push import public_site

    settings.OCPI_COUNTRY_CODE = "NL"
    org, other = OrganizationFactory(), OrganizationFactory()
    prop, charger, rate = public_site(org, "Gouda")
    public_site(other, "Delft")
    api = api_for(org)
    api.put(f"{feeds_url(org)}NL/", nl_feed(), format="json")

    issued = api.put(f"{feeds_url(org)}NL/", {"new_pull_token": True}, format="json").json()
    token = issued["pull_token"]

    assert token and issued["pull_token_set"] is True
    assert issued["pull_url"].endswith("/ocpi/2.2.1")
    assert api.get(f"{feeds_url(org)}NL/").json()["pull_token"] is None
    locations = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth(token)).json()
    assert [loc["id"] for loc in locations["data"]] == [str(prop.pk)]
    assert locations["data"][0]["energy_mix"]["is_green_energy"] is True
    one = client.get(f"/ocpi/2.2.1/locations/{prop.pk}", HTTP_AUTHORIZATION=auth(token))
    assert one.status_code == 200 and one.json()["data"]["id"] == str(prop.pk)
    tariffs = client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth(token)).json()["data"]
    assert [(t["id"], t["type"]) for t in tariffs] == [(str(rate.pk), "AD_HOC_PAYMENT")]
    # Its token does not make it a roaming partner: no sessions, CDRs, tokens or commands.
    for method, path in (
        ("get", "/ocpi/2.2.1/sessions"),
        ("get", "/ocpi/2.2.1/cdrs"),
        ("post", "/ocpi/2.2.1/commands/START_SESSION"),
        ("put", "/ocpi/2.2.1/tokens/NL/XYZ/abc"),
    ):
        refused = client.generic(
            method.upper(),
            path,
            "{}",
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(token),
        )
        assert refused.status_code == 401, (path, refused.content)
    # A new token replaces the old one.
    api.put(f"{feeds_url(org)}NL/", {"new_pull_token": True}, format="json")
    assert client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth(token)).status_code == 401


@pytest.mark.django_db
def test_the_portal_sets_a_feed_for_the_hosts_own_organization_and_lists_its_state(
    client, loopback
):
    from tests.factories import MembershipFactory, UserFactory

    org, other = OrganizationFactory(name="Ours"), OrganizationFactory(name="Theirs")
    owner, viewer = UserFactory(), UserFactory()
    MembershipFactory(organization=org, user=owner, role="owner")
    MembershipFactory(organization=org, user=viewer, role="viewer")
    form = {
        "feed-organization": org.pk,
        "feed-country": "nl",
        "feed-enabled": "on",
        "feed-protocol": "ocpi-2.2.1",
        "feed-endpoint_url": NAP_URL,
        "feed-token": "portal-token",
    }
    client.force_login(owner)

    saved = client.post("/roaming/access-points/", form)
    blocked = client.post(
        "/roaming/access-points/",
        {**form, "feed-country": "BE", "feed-endpoint_url": "https://10.1.1.1/ocpi"},
    )
    foreign = client.post("/roaming/access-points/", {**form, "feed-organization": other.pk})

    assert saved.status_code == 302
    feed = AccessPointFeed.objects.get()
    assert (feed.organization, feed.country, feed.token, feed.party_id) == (
        org,
        "NL",
        "portal-token",
        "EVB",
    )
    from django.utils.html import escape

    assert escape(PARTNER_URL_MESSAGE) in blocked.content.decode()
    assert foreign.status_code == 200 and AccessPointFeed.objects.count() == 1
    page = client.get("/roaming/access-points/").content.decode()
    assert "Delivering" in page and "none: up to date" in page and "portal-token" not in page
    client.force_login(viewer)
    assert client.get("/roaming/access-points/").status_code == 200
    assert client.post("/roaming/access-points/", form).status_code == 403


@pytest.mark.django_db
def test_support_sees_feeds_in_admin_without_the_token(admin_client, loopback):
    org = OrganizationFactory()
    api_for(org).put(f"{feeds_url(org)}NL/", nl_feed(), format="json")
    feed = AccessPointFeed.objects.get()

    listed = admin_client.get("/admin/roaming/accesspointfeed/", {"q": "NL"})
    page = admin_client.get(f"/admin/roaming/accesspointfeed/{feed.pk}/change/")

    assert listed.status_code == 200 and page.status_code == 200
    body = page.content.decode()
    assert "0 waiting, up to date" in body and "nap-secret-token" not in body
