"""The port timeline fed through the real OCPP handlers (Channels' communicator), and the
outages counted from it."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.models import Charger
from chargers.plumbing import background
from reliability.models import PortEvent
from reliability.services import uptime as uptimes
from tests.bounds import GENEROUS_S
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def connected(station_id="CP-TEST-1", **kwargs) -> OcppTestClient:
    client = OcppTestClient(station_id, **kwargs)
    ok, subprotocol = await client.connect()
    assert ok, subprotocol
    return client


async def status(client, connector, state, at, error="NoError", vendor=""):
    payload = {"connectorId": connector, "errorCode": error, "status": state, "timestamp": iso(at)}
    if vendor:
        payload["vendorErrorCode"] = vendor
    assert await client.result("StatusNotification", payload) == {}


async def links(charger, kind, count):
    """The charger's offline/online events once `count` are there (on PostgreSQL they are
    announced in the background after the batched write)."""
    deadline = time.monotonic() + GENEROUS_S  # a busy machine announces them late
    while True:
        found = [
            e.at async for e in PortEvent.objects.filter(charger=charger, kind=kind).order_by("at")
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def uptime(charger, start, end=None):
    # The statuses reach the timeline after the answer (announced in the background once the
    # batch is committed): on a busy machine the last one was not there yet.
    await background.drain(timeout=GENEROUS_S)
    return await sync_to_async(uptimes.charger_uptime)(charger, start, end or timezone.now())


async def test_faulted_port_is_an_outage_with_its_codes(charger):
    t0 = timezone.now() - timedelta(seconds=1000)
    client = await connected()
    await status(client, 1, "Available", t0)
    await status(client, 2, "Available", t0)
    await status(client, 1, "Faulted", t0 + timedelta(seconds=100), "GroundFailure", "E-GF")
    await status(client, 1, "Available", t0 + timedelta(seconds=220))
    ports = {p.connector_id: p.uptime for p in await uptime(charger, t0)}
    assert set(ports) == {1, 2}
    (outage,) = ports[1].outages
    assert (outage.cause, outage.seconds) == ("faulted", 120)
    assert outage.error_code == "GroundFailure"
    assert ports[2].outages == ()
    assert ports[1].percent < 100 and ports[2].percent == 100.0
    await client.close()


async def test_connection_loss_and_return_are_an_outage_of_every_port(charger):
    client = await connected()
    await status(client, 1, "Available", timezone.now() - timedelta(seconds=60))
    await client.close()
    await charger.arefresh_from_db()
    left = charger.disconnected_at
    # Recorded as chargers announces it, no sweep needed.
    assert await links(charger, "offline", 1) == [left]
    client = await connected()
    await charger.arefresh_from_db()
    assert (await links(charger, "online", 2))[-1] == charger.connected_at
    (port,) = await uptime(charger, left - timedelta(seconds=30))
    (outage,) = port.uptime.outages
    assert outage.cause == "offline"
    assert (outage.start, outage.end) == (left, charger.connected_at)
    await client.close()


async def test_every_drop_is_recorded_not_only_the_last(charger):
    """chargers keeps only the last connect and disconnect; the timeline has each one."""
    drops = []
    for _ in range(3):
        client = await connected()
        await client.close()
        await charger.arefresh_from_db()
        drops.append(charger.disconnected_at)
    assert await links(charger, "offline", 3) == drops
    assert len(await links(charger, "online", 3)) == 3


def test_a_replaced_connection_closing_is_not_a_drop(charger):
    from reliability.services.timeline import links_record

    now = timezone.now()
    links_record([(charger.pk, "a" * 32, True, now - timedelta(seconds=30))])
    links_record([(charger.pk, "b" * 32, True, now - timedelta(seconds=20))])
    links_record([(charger.pk, "a" * 32, False, now - timedelta(seconds=10))])  # the old one
    assert not PortEvent.objects.filter(charger=charger, kind="offline").exists()
    links_record([(charger.pk, "b" * 32, False, now)])
    links_record([(charger.pk, "b" * 32, False, now)])  # announced twice: recorded once
    assert PortEvent.objects.filter(charger=charger, kind="offline").count() == 1


async def test_a_start_that_delivers_nothing_is_down_until_energy_flows(charger, token):
    t0 = timezone.now() - timedelta(seconds=2000)
    client = await connected()
    await status(client, 1, "Preparing", t0)
    start = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": iso(t0)},
    )
    assert start["idTagInfo"]["status"] == "Accepted"
    await client.result(
        "StopTransaction",
        {
            "transactionId": start["transactionId"],
            "meterStop": 1000,
            "timestamp": iso(t0 + timedelta(seconds=400)),
            "reason": "EVDisconnected",
        },
    )
    (port,) = await uptime(charger, t0 - timedelta(seconds=10))
    (outage,) = port.uptime.outages
    assert (outage.cause, outage.start) == (
        "failed_start",
        t0.replace(microsecond=t0.microsecond // 1000 * 1000),
    )
    # A later session that delivers energy ends it.
    again = t0 + timedelta(seconds=1000)
    second = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": iso(again)},
    )
    await client.result(
        "StopTransaction",
        {
            "transactionId": second["transactionId"],
            "meterStop": 5000,
            "timestamp": iso(again + timedelta(seconds=600)),
        },
    )
    (port,) = await uptime(charger, t0 - timedelta(seconds=10))
    (outage,) = port.uptime.outages
    assert outage.seconds == pytest.approx(1000, abs=0.01)
    kinds = [
        e.status
        async for e in PortEvent.objects.filter(charger=charger, kind="session").order_by("at")
    ]
    assert kinds == ["started", "no energy", "started", "finished"]
    await client.close()


async def test_the_ev_declining_energy_is_not_a_failed_start(charger, token):
    t0 = timezone.now() - timedelta(seconds=2000)
    client = await connected()
    await status(client, 1, "Preparing", t0)
    start = await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 1000, "timestamp": iso(t0)},
    )
    await status(client, 1, "SuspendedEV", t0 + timedelta(seconds=5))
    await client.result(
        "StopTransaction",
        {
            "transactionId": start["transactionId"],
            "meterStop": 1000,
            "timestamp": iso(t0 + timedelta(seconds=900)),
        },
    )
    (port,) = await uptime(charger, t0 - timedelta(seconds=10))
    assert port.uptime.outages == ()
    await client.close()


async def test_unavailable_by_the_hosts_choice_is_not_an_outage(charger):
    from chargers.models import Command

    t0 = timezone.now() - timedelta(seconds=600)
    client = await connected()
    await status(client, 1, "Available", t0)
    command = await Command.objects.acreate(
        charger=charger,
        action="ChangeAvailability",
        payload={"connectorId": 1, "type": "Inoperative"},
        status="answered",
        response={"status": "Accepted"},
    )
    await Command.objects.filter(pk=command.pk).aupdate(created_at=t0 + timedelta(seconds=10))
    await status(client, 1, "Unavailable", t0 + timedelta(seconds=11))
    await status(client, 2, "Unavailable", t0 + timedelta(seconds=11))
    ports = {p.connector_id: p.uptime for p in await uptime(charger, t0)}
    assert ports[1].outages == ()
    assert [o.cause for o in ports[2].outages] == ["unavailable"]
    await client.close()


async def test_notify_event_availability_is_on_the_timeline(charger):
    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    client = await connected(subprotocols=["ocpp2.0.1"])
    t0 = timezone.now() - timedelta(seconds=300)
    await client.result(
        "NotifyEvent",
        {
            "generatedAt": iso(t0),
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": iso(t0),
                    "trigger": "Delta",
                    "actualValue": "Faulted",
                    "techInfo": "GF-17",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    )
    event = await PortEvent.objects.aget(charger=charger, kind="status")
    assert (event.connector_id, event.status, event.vendor_error_code) == (1, "Faulted", "GF-17")
    (port,) = await uptime(charger, t0 - timedelta(seconds=10))
    assert [o.cause for o in port.uptime.outages] == ["faulted"]
    await client.close()
