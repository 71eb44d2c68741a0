"""Firmware campaigns driven against chargers written from the OCPP-J text (Channels'
communicator): the canary updates, planted failures halt the campaign with an alert and
nothing more is sent; signed updates on 1.6 and 2.0.1 reach the charger with their signature
and are confirmed by the boot with the new version."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from chargers.models import Charger
from fleet.campaigns import dispatch, services
from fleet.models import Campaign, CampaignTarget, FirmwareRelease
from reliability.models import Alert, AlertRule, PortEvent
from reliability.services import uptime as reliability_services
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

SHA = "a" * 64
CERT = "-----BEGIN CERTIFICATE-----\nMIIBfirmware\n-----END CERTIFICATE-----"
SIG = "c2lnbmF0dXJl"
BOOT16 = {"chargePointVendor": "Acme", "chargePointModel": "A1", "firmwareVersion": "1.0"}


@pytest.fixture(autouse=True)
def _quiet_follow_ups(settings):
    # Calls a charger gets after its boot would interleave with the ones a test reads.
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = False
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


async def until(predicate, what: str) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not await sync_to_async(predicate)():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def boot16(client: OcppTestClient, version: str = "1.0") -> None:
    answer = await client.result("BootNotification", {**BOOT16, "firmwareVersion": version})
    assert answer["status"] == "Accepted"


async def answer_next(
    client: OcppTestClient, action: str, response: dict | None = None, error: str = ""
) -> dict:
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == action, call
    if error:
        await client.send([4, call[1], error, "", {}])
    else:
        await client.send([3, call[1], response or {}])
    return call[3]


def advance(now=None) -> dict[str, int]:
    """One pass of the beat task fleet.campaigns_advance."""
    return dispatch.campaigns_advance(now)


def fleet(count: int, **charger_fields):
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization).user
    chargers = [
        ChargerFactory(station_id=f"FW-{i:02d}", property=prop, **charger_fields)
        for i in range(count)
    ]
    return prop, owner, chargers


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


async def test_the_canary_updates_and_planted_failures_halt_the_campaign_with_an_alert():
    prop, owner, chargers = await sync_to_async(fleet)(30)
    org = prop.organization
    await AlertRule.objects.acreate(organization=org, kind=AlertRule.Kind.CAMPAIGN_HALTED)
    clients = []
    for charger in chargers:
        client = OcppTestClient(charger.station_id)
        assert (await client.connect())[0]
        await boot16(client)
        clients.append(client)
    await until(
        lambda: (
            Charger.objects.filter(property=prop, vendor="Acme", firmware_version="1.0").count()
            == 30
        ),
        "30 boots recorded",
    )
    api = api_for(owner)
    release = (
        await sync_to_async(api.post)(
            "/api/v1/firmware/releases/",
            {
                "organization": org.pk,
                "version": "2.0",
                "vendor": "Acme",
                "model": "A1",
                "location": "https://fw.example/a1-2.0.bin",
                "sha256": SHA,
            },
            format="json",
        )
    ).json()
    created = await sync_to_async(api.post)(
        "/api/v1/firmware/campaigns/",
        {
            "organization": org.pk,
            "name": "A1 2.0",
            "release": release["id"],
            "vendor": "Acme",
            "current_version": "1.0",
            "canary_share": 0.1,
            "wave_size": 10,
            "max_failures": 2,
            "report_timeout_s": 600,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    assert created.json()["counts"]["pending"] == 30
    started = await sync_to_async(api.post)(f"/api/v1/firmware/campaigns/{campaign_id}/start/")
    assert started.json()["status"] == "running"

    # The canary: three chargers get UpdateFirmware (1.6 plain: the release is unsigned).
    step = asyncio.create_task(sync_to_async(advance)())
    sent = [await answer_next(c, "UpdateFirmware") for c in clients[:3]]
    assert await step == {"sent": 3}
    assert all(
        s["location"] == "https://fw.example/a1-2.0.bin" and "retrieveDate" in s for s in sent
    )
    for client in clients[3:]:
        assert await client.communicator.receive_nothing(timeout=0.1)

    # FW-00 installs and boots with 2.0; FW-01's install fails; FW-02 goes silent.
    for status in ("Downloading", "Downloaded", "Installing", "Installed"):
        assert await clients[0].result("FirmwareStatusNotification", {"status": status}) == {}
    await boot16(clients[0], "2.0")
    for status in ("Downloading", "InstallationFailed"):
        assert await clients[1].result("FirmwareStatusNotification", {"status": status}) == {}
    await until(
        lambda: Charger.objects.filter(station_id="FW-00", firmware_version="2.0").exists(),
        "the canary's boot",
    )
    assert await sync_to_async(advance)() == {}
    statuses = {
        t.charger.station_id: t.status
        async for t in CampaignTarget.objects.filter(
            campaign_id=campaign_id, position__lt=3
        ).select_related("charger")
    }
    assert statuses == {"FW-00": "succeeded", "FW-01": "failed", "FW-02": "sent"}
    assert (await Campaign.objects.aget(pk=campaign_id)).status == "running"

    # FW-02 said nothing for the report timeout: the second failure halts the campaign.
    later = timezone.now() + timedelta(seconds=601)
    assert await sync_to_async(advance)(later) == {}
    campaign = await Campaign.objects.aget(pk=campaign_id)
    assert campaign.status == "halted" and "2 failed" in campaign.status_reason
    alert = await Alert.objects.aget(rule__organization=org, kind="campaign_halted")
    assert alert.subject == f"firmware campaign {campaign_id}" and alert.cleared_at is None

    # Nothing more is sent, however often the campaign is advanced.
    assert await sync_to_async(advance)() == {}
    for client in clients[2:]:
        assert await client.communicator.receive_nothing(timeout=0.1)
    counts = (await sync_to_async(api.get)(f"/api/v1/firmware/campaigns/{campaign_id}/")).json()[
        "counts"
    ]
    assert counts == {"pending": 27, "sent": 0, "succeeded": 1, "failed": 2, "skipped": 0}

    # The failed chargers are down on the reliability timeline (the whole charger: every port).
    timeline = (
        await sync_to_async(api.get)(
            f"/api/v1/firmware/campaigns/{campaign_id}/targets/", {"limit": 100}
        )
    ).json()["results"]
    fw01 = next(t for t in timeline if t["station_id"] == "FW-01")
    assert [e["status"] for e in fw01["events"]][-3:] == [
        "Downloading",
        "InstallationFailed",
        "failed",
    ]
    assert await PortEvent.objects.filter(kind="firmware", status="install failed").acount() == 2
    fw01_charger = await Charger.objects.aget(station_id="FW-01")
    uptime = await sync_to_async(reliability_services.port_uptime)(
        fw01_charger,
        1,
        timezone.now() - timedelta(hours=1),
        later + timedelta(minutes=5),
        now=later + timedelta(minutes=5),
    )
    assert [o.cause for o in uptime.uptime.outages] == ["firmware"]
    for client in clients:
        await client.close()


async def test_a_charger_that_refuses_plain_updates_gets_the_signed_one_on_16():
    prop, owner, (charger,) = await sync_to_async(fleet)(1)
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await boot16(client)
    release = await FirmwareRelease.objects.acreate(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        model="A1",
        location="https://fw.example/a1.bin",
        sha256=SHA,
        signing_certificate=CERT,
        signature=SIG,
    )
    await until(lambda: Charger.objects.filter(pk=charger.pk, vendor="Acme").exists(), "boot")
    campaign = await sync_to_async(services.campaign_create)(
        organization=prop.organization,
        name="signed",
        release=release,
        selection=services.Selection(),
    )
    await sync_to_async(services.campaign_transition)(campaign_id=campaign.pk, action="start")
    step = asyncio.create_task(sync_to_async(advance)())
    # Security whitepaper L01: a charger that knows signed updates refuses the plain one.
    await answer_next(client, "UpdateFirmware", error="NotSupported")
    signed = await answer_next(client, "SignedUpdateFirmware", {"status": "Accepted"})
    assert await step == {"sent": 1}
    assert (
        signed["firmware"]["signingCertificate"] == CERT and signed["firmware"]["signature"] == SIG
    )
    assert signed["firmware"]["location"] == "https://fw.example/a1.bin"
    request_id = signed["requestId"]
    for status in ("Downloading", "SignatureVerified", "Installing", "Installed"):
        await client.result(
            "SignedFirmwareStatusNotification", {"status": status, "requestId": request_id}
        )
    await boot16(client, "2.0")
    await until(
        lambda: Charger.objects.filter(pk=charger.pk, firmware_version="2.0").exists(), "new boot"
    )
    await sync_to_async(advance)()
    target = await CampaignTarget.objects.aget(campaign=campaign)
    assert (
        target.status == "succeeded"
        and target.method == "signed"
        and target.request_id == request_id
    )
    events = [e.status async for e in target.events.all()]
    assert (
        events[:2] == ["Sent", "NotSupported"]
        and "SignatureVerified" in events
        and events[-2:] == ["Booted", "succeeded"]
    )
    assert (await Campaign.objects.aget(pk=campaign.pk)).status == "completed"
    await client.close()


async def test_a_signed_update_on_201_carries_its_signature_and_is_confirmed_by_the_boot():
    prop, owner, (charger,) = await sync_to_async(fleet)(1)
    client = OcppTestClient(charger.station_id, subprotocols=["ocpp2.0.1"])
    assert (await client.connect())[0]
    boot = {
        "reason": "PowerUp",
        "chargingStation": {"model": "B2", "vendorName": "Bolt", "firmwareVersion": "3.1"},
    }
    assert (await client.result("BootNotification", boot))["status"] == "Accepted"
    await until(
        lambda: Charger.objects.filter(pk=charger.pk, ocpp_version="2.0.1", vendor="Bolt").exists(),
        "boot",
    )
    release = await FirmwareRelease.objects.acreate(
        organization=prop.organization,
        version="3.2",
        vendor="Bolt",
        model="B2",
        location="https://fw.example/b2.bin",
        sha256=SHA,
        signing_certificate=CERT,
        signature=SIG,
    )
    campaign = await sync_to_async(services.campaign_create)(
        organization=prop.organization,
        name="b2",
        release=release,
        selection=services.Selection(charger_ids=(charger.pk,)),
    )
    await sync_to_async(services.campaign_transition)(campaign_id=campaign.pk, action="start")
    step = asyncio.create_task(sync_to_async(advance)())
    sent = await answer_next(client, "UpdateFirmware", {"status": "Accepted"})
    assert await step == {"sent": 1}
    assert sent["firmware"] == {
        "location": "https://fw.example/b2.bin",
        "retrieveDateTime": sent["firmware"]["retrieveDateTime"],
        "signingCertificate": CERT,
        "signature": SIG,
    }
    for status in ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"):
        await client.result(
            "FirmwareStatusNotification", {"status": status, "requestId": sent["requestId"]}
        )
    new_boot = {
        "reason": "FirmwareUpdate",
        "chargingStation": {**boot["chargingStation"], "firmwareVersion": "3.2"},
    }
    await client.result("BootNotification", new_boot)
    await until(
        lambda: Charger.objects.filter(pk=charger.pk, firmware_version="3.2").exists(), "new boot"
    )
    await sync_to_async(advance)()
    target = await CampaignTarget.objects.aget(campaign=campaign)
    assert target.status == "succeeded" and target.method == "v201"
    assert "SignatureVerified" in [e.status async for e in target.events.all()]
    await client.close()


async def test_the_next_wave_goes_once_the_canary_booted_with_the_new_version():
    prop, owner, chargers = await sync_to_async(fleet)(4)
    clients = []
    for charger in chargers:
        client = OcppTestClient(charger.station_id)
        assert (await client.connect())[0]
        await boot16(client)
        clients.append(client)
    await until(lambda: Charger.objects.filter(property=prop, vendor="Acme").count() == 4, "boots")
    release = await FirmwareRelease.objects.acreate(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a1.bin",
        sha256=SHA,
    )
    campaign = await sync_to_async(services.campaign_create)(
        organization=prop.organization,
        name="waves",
        release=release,
        selection=services.Selection(),
        canary_share=0.25,
        wave_size=3,
    )
    await sync_to_async(services.campaign_transition)(campaign_id=campaign.pk, action="start")
    step = asyncio.create_task(sync_to_async(advance)())
    await answer_next(clients[0], "UpdateFirmware")
    assert await step == {"sent": 1}
    assert await sync_to_async(advance)() == {}  # the canary has not booted yet
    for client in clients[1:]:
        assert await client.communicator.receive_nothing(timeout=0.1)
    await boot16(clients[0], "2.0")
    await until(
        lambda: Charger.objects.filter(station_id="FW-00", firmware_version="2.0").exists(), "boot"
    )
    step = asyncio.create_task(sync_to_async(advance)())
    for client in clients[1:]:
        await answer_next(client, "UpdateFirmware")
    assert await step == {"sent": 3}
    for client in clients:
        await client.close()
