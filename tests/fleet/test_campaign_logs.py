"""Log upload per campaign (and per charger in it): chargers from the OCPP-J text are asked
for their diagnostics log; a 1.6 charger without the security extension's GetLog gets
GetDiagnostics instead; another organization's campaign is a 404."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.models import ChargerOperation
from fleet.campaigns import services
from fleet.models import CampaignTarget, FirmwareRelease
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)
UPLOAD = "https://logs.example.com/upload/"


@pytest.fixture(autouse=True)
def _quiet_follow_ups(settings):
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = False
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


def world():
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization).user
    for station_id in ("L16-1", "L201-1", "L16-2"):
        ChargerFactory(station_id=station_id, property=prop, vendor="Acme", model="A1")
    release = FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        model="A1",
        location="https://fw.example/a1.bin",
        sha256="a" * 64,
    )
    campaign = services.campaign_create(
        organization=prop.organization, name="logs", release=release, selection=services.Selection()
    )
    return owner, campaign


async def answer(client: OcppTestClient, action: str, response: dict | None, error: str = ""):
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == action, call
    await client.send([4, call[1], error, "", {}] if error else [3, call[1], response])
    return call[3]


async def test_a_campaigns_chargers_upload_their_logs_in_their_protocols_words():
    owner, campaign = await sync_to_async(world)()
    old = OcppTestClient("L16-1")
    new = OcppTestClient("L201-1", subprotocols=("ocpp2.0.1",))
    for client in (old, new):
        assert (await client.connect())[0]
    await CampaignTarget.objects.filter(charger__station_id__in=["L16-1", "L201-1"]).aupdate(
        status=CampaignTarget.Status.FAILED
    )
    api = APIClient()
    api.force_authenticate(owner)
    asked = asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/firmware/campaigns/{campaign.pk}/logs/",
            {"remote_location": UPLOAD, "failed_only": True},
            format="json",
        )
    )
    # The 1.6 charger has no GetLog: it is asked with GetDiagnostics.
    get_log = await answer(old, "GetLog", None, error="NotImplemented")
    assert get_log["log"]["remoteLocation"] == UPLOAD and get_log["logType"] == "DiagnosticsLog"
    assert await answer(old, "GetDiagnostics", {"fileName": "diag-L16-1.zip"}) == {
        "location": UPLOAD
    }
    sent = await answer(new, "GetLog", {"status": "Accepted", "filename": "L201-1.log"})
    assert sent["log"]["remoteLocation"] == UPLOAD
    response = await asked
    assert response.status_code == 200, response.content
    assert response.json() == {
        "L16-1": "GetDiagnostics: uploading diag-L16-1.zip",
        "L201-1": "GetLog Accepted: uploading L201-1.log",
    }
    # The 2.0.1 upload is followed as the charger's log operation (LogStatusNotification).
    operation = await ChargerOperation.objects.aget(charger__station_id="L201-1", kind="log")
    assert operation.request_id == sent["requestId"]

    # One charger of the campaign (L16-2 is not connected): its answer alone.
    one = await sync_to_async(api.post)(
        f"/api/v1/firmware/campaigns/{campaign.pk}/logs/",
        {"remote_location": UPLOAD, "station_ids": ["L16-2"]},
        format="json",
    )
    assert one.json() == {"L16-2": "offline"}
    for client in (old, new):
        await client.close()


def test_bad_input_and_other_organizations_are_refused():
    owner, campaign = world()
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/v1/firmware/campaigns/{campaign.pk}/logs/"
    assert api.post(url, {"remote_location": "not a url"}, format="json").status_code == 400
    assert api.post(url, {"remote_location": "file:///etc/x"}, format="json").status_code == 400
    stranger = APIClient()
    stranger.force_authenticate(MembershipFactory().user)
    assert stranger.post(url, {"remote_location": UPLOAD}, format="json").status_code == 404
    viewer = APIClient()
    viewer.force_authenticate(
        MembershipFactory(organization=campaign.organization, role="viewer").user
    )
    assert viewer.post(url, {"remote_location": UPLOAD}, format="json").status_code == 403
