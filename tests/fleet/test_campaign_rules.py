"""What a campaign never does: send a bad release, update a charger during a session or outside
its property's maintenance window, or target another organization's chargers."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import time as clock

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.models import Charger, ChargingSession
from fleet.campaigns import dispatch, services
from fleet.models import Campaign, CampaignTarget, FirmwareRelease, MaintenanceWindow
from fleet.tasks import campaigns_advance_task
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.fleet.test_campaigns import SHA, answer_next, api_for, boot16, until
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quiet_follow_ups(settings):
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = False
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


async def one_charger(station_id: str):
    charger = await sync_to_async(ChargerFactory)(station_id=station_id)
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    await boot16(client)
    await until(lambda: Charger.objects.filter(pk=charger.pk, vendor="Acme").exists(), "boot")
    release = await FirmwareRelease.objects.acreate(
        organization_id=(await sync_to_async(lambda: charger.property.organization_id)()),
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a.bin",
        sha256=SHA,
    )
    campaign = await sync_to_async(services.campaign_create)(
        organization=await sync_to_async(lambda: charger.property.organization)(),
        name="c",
        release=release,
        selection=services.Selection(),
    )
    await sync_to_async(services.campaign_transition)(campaign_id=campaign.pk, action="start")
    return charger, client, release, campaign


async def test_a_release_marked_bad_is_held_in_every_campaign():
    charger, client, release, campaign = await one_charger("BAD-1")
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    api = api_for(owner)
    marked = await sync_to_async(api.post)(
        f"/api/v1/firmware/releases/{release.pk}/mark-bad/", {"reason": "phantom sessions"}
    )
    assert marked.status_code == 200 and marked.json()["bad"] is True
    # The beat task itself, run as tasks run without a broker.
    assert (
        await sync_to_async(
            lambda: campaigns_advance_task.apply().get(disable_sync_subtasks=False)
        )()
        == {}
    )
    assert await client.communicator.receive_nothing(timeout=0.2)
    campaign = await Campaign.objects.aget(pk=campaign.pk)
    assert campaign.status == "held" and "phantom sessions" in campaign.status_reason
    resumed = await sync_to_async(api.post)(f"/api/v1/firmware/campaigns/{campaign.pk}/resume/")
    assert resumed.status_code == 400 and "marked bad" in resumed.json()["detail"]
    # A new campaign of it is refused too.
    again = await sync_to_async(api.post)(
        "/api/v1/firmware/campaigns/",
        {"organization": release.organization_id, "name": "again", "release": release.pk},
        format="json",
    )
    assert again.status_code == 400 and await Campaign.objects.acount() == 1
    await client.close()


async def test_no_update_during_a_session_and_one_once_it_ended():
    charger, client, release, campaign = await one_charger("SES-1")
    session = await ChargingSession.objects.acreate(
        charger=charger, connector_id=1, transaction_id=7001, id_tag="T", started_at=timezone.now()
    )
    assert await sync_to_async(dispatch.campaigns_advance)() == {}
    assert await client.communicator.receive_nothing(timeout=0.2)
    waiting = await CampaignTarget.objects.aget(campaign=campaign)
    # The campaign's page says why it waits (it read "Waiting for its stage" alone).
    assert waiting.status == "pending" and waiting.reason == "Waiting: a charging session is open"
    session.stopped_at = timezone.now()
    await session.asave(update_fields=["stopped_at"])
    step = asyncio.create_task(sync_to_async(dispatch.campaigns_advance)())
    await answer_next(client, "UpdateFirmware")
    assert await step == {"sent": 1}
    await client.close()


async def test_no_update_outside_the_maintenance_window():
    charger, client, release, campaign = await one_charger("WIN-1")
    zone = await sync_to_async(lambda: charger.property.timezone)()
    local = timezone.now().astimezone(zoneinfo.ZoneInfo(zone))
    # A one-hour window that starts two hours from now (local time of the property).
    start = clock((local.hour + 2) % 24)
    window = await MaintenanceWindow.objects.acreate(
        property_id=charger.property_id, start=start, end=clock((local.hour + 3) % 24)
    )
    assert await sync_to_async(dispatch.campaigns_advance)() == {}
    assert await client.communicator.receive_nothing(timeout=0.2)
    waiting = await CampaignTarget.objects.aget(campaign=campaign)
    assert (
        waiting.reason == f"Waiting for the maintenance window ({start:%H:%M}–{window.end:%H:%M})"
    )
    window.start, window.end = clock(local.hour), clock((local.hour + 1) % 24)
    await window.asave()
    step = asyncio.create_task(sync_to_async(dispatch.campaigns_advance)())
    await answer_next(client, "UpdateFirmware")
    assert await step == {"sent": 1}
    await client.close()


def test_a_campaign_naming_another_organizations_charger_is_refused_and_changes_nothing():
    mine = PropertyFactory()
    theirs = PropertyFactory()
    owner = MembershipFactory(organization=mine.organization).user
    ChargerFactory(station_id="MINE-1", property=mine, vendor="Acme")
    ChargerFactory(station_id="THEIRS-1", property=theirs, vendor="Acme")
    release = FirmwareRelease.objects.create(
        organization=mine.organization,
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a.bin",
        sha256=SHA,
    )
    foreign_release = FirmwareRelease.objects.create(
        organization=theirs.organization,
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a.bin",
        sha256=SHA,
    )
    api = api_for(owner)
    body = {"organization": mine.organization_id, "name": "x", "release": release.pk}
    for refused in (
        {**body, "station_ids": ["MINE-1", "THEIRS-1"]},
        {**body, "property_ids": [theirs.pk]},
        {**body, "release": foreign_release.pk},
        {**body, "organization": theirs.organization_id},
    ):
        response = api.post("/api/v1/firmware/campaigns/", refused, format="json")
        assert response.status_code in (400, 404), (refused, response.content)
    assert Campaign.objects.count() == 0 and CampaignTarget.objects.count() == 0
    # Their releases and campaigns are not even listed.
    assert [r["id"] for r in api.get("/api/v1/firmware/releases/").json()["results"]] == [
        release.pk
    ]
    made = api.post(
        "/api/v1/firmware/campaigns/", {**body, "station_ids": ["MINE-1"]}, format="json"
    )
    assert made.status_code == 201 and made.json()["counts"]["pending"] == 1


def test_a_release_must_be_served_over_https_and_signed_whole():
    prop = PropertyFactory()
    api = api_for(MembershipFactory(organization=prop.organization).user)
    body = {
        "organization": prop.organization_id,
        "version": "2.0",
        "vendor": "Acme",
        "location": "http://fw.example/a.bin",
        "sha256": SHA,
    }
    assert api.post("/api/v1/firmware/releases/", body, format="json").status_code == 400
    body["location"] = "https://fw.example/a.bin"
    half_signed = {**body, "signature": "c2ln"}
    assert api.post("/api/v1/firmware/releases/", half_signed, format="json").status_code == 400
    assert (
        api.post("/api/v1/firmware/releases/", {**body, "sha256": "xyz"}, format="json").status_code
        == 400
    )
    assert FirmwareRelease.objects.count() == 0
    assert api.post("/api/v1/firmware/releases/", body, format="json").status_code == 201
