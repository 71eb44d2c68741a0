"""The operators' campaign pages: their own campaigns only, each charger's timeline, and the
buttons for those who may write."""

import pytest
from django.test import Client

from fleet.campaigns import services
from fleet.models import Campaign, FirmwareRelease
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.fleet.test_campaigns import SHA

pytestmark = pytest.mark.django_db


def campaign_of(prop, name: str) -> Campaign:
    ChargerFactory(property=prop, vendor="Acme", firmware_version="1.0")
    release = FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a.bin",
        sha256=SHA,
    )
    return services.campaign_create(
        organization=prop.organization, name=name, release=release, selection=services.Selection()
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_operator_sees_and_halts_only_their_own_campaigns():
    mine, theirs = PropertyFactory(), PropertyFactory()
    own = campaign_of(mine, "Our rollout")
    other = campaign_of(theirs, "Their rollout")
    web = client_for(MembershipFactory(organization=mine.organization).user)
    listing = web.get("/fleet/campaigns/").content.decode()
    assert "Our rollout" in listing and "Their rollout" not in listing
    detail = web.get(f"/fleet/campaigns/{own.pk}/")
    assert detail.status_code == 200 and "Waiting for its stage" in detail.content.decode()
    assert web.get(f"/fleet/campaigns/{other.pk}/").status_code == 404
    assert web.post(f"/fleet/campaigns/{other.pk}/halt/").status_code == 404
    assert Campaign.objects.get(pk=other.pk).status == "draft"
    assert web.post(f"/fleet/campaigns/{own.pk}/start/").status_code == 302
    assert Campaign.objects.get(pk=own.pk).status == "running"


def test_a_viewer_sees_no_buttons_and_cannot_act():
    prop = PropertyFactory()
    campaign = campaign_of(prop, "Rollout")
    web = client_for(MembershipFactory(organization=prop.organization, role="viewer").user)
    page = web.get(f"/fleet/campaigns/{campaign.pk}/").content.decode()
    assert "Rollout" in page and ">Halt<" not in page
    assert web.post(f"/fleet/campaigns/{campaign.pk}/start/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_main_menu_leads_to_campaigns_and_baselines():
    """They were reachable only by typing their address (docs/firmware.md said so)."""
    prop = PropertyFactory()
    web = client_for(MembershipFactory(organization=prop.organization).user)
    home = web.get("/chargers/").content.decode()
    assert 'href="/fleet/campaigns/"' in home and 'href="/fleet/baselines/"' in home
    page = web.get("/fleet/baselines/").content.decode()
    assert 'class="active" aria-current="page">Configuration baselines</a>' in page
