"""The OCPP series of GET /metrics move with a real exchange over the websocket, per version and
action, and never name a station (docs/operations.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chargers.devices.commands import send_command
from chargers.models import Charger
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-token-for-the-ocpp-test-0123"
BOOT16 = {"chargePointVendor": "Alfen", "chargePointModel": "Eve", "firmwareVersion": "6.1"}
BOOT201 = {
    "reason": "PowerUp",
    "chargingStation": {"model": "SingleSocketCharger", "vendorName": "VendorX"},
}
# Label names that would make a series per station, charger or tenant.
FORBIDDEN_LABELS = {"station", "station_id", "charger", "charger_id", "organization", "property"}


@pytest.fixture(autouse=True)
def _scrapable(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


def _scrape() -> str:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return response.content.decode()


async def scrape() -> tuple[str, dict[tuple[str, frozenset], float]]:
    """The body and every sample by (name, labels)."""
    body = await sync_to_async(_scrape)()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    return body, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def messages(samples: dict, direction: str, version: str, kind: str, action: str) -> float:
    return value(
        samples,
        "evportal_ocpp_messages_total",
        direction=direction,
        version=version,
        message_type=kind,
        action=action,
    )


async def test_a_16_exchange_moves_the_counters_and_no_series_names_the_station(charger):
    _, before = await scrape()
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    _, connected = await scrape()
    gauge = "evportal_ocpp_connected_chargers"
    assert value(connected, gauge, version="1.6") == value(before, gauge, version="1.6") + 1
    assert (await client.result("BootNotification", BOOT16))["status"] == "Accepted"
    await client.result("Heartbeat", {})
    await client.result("Heartbeat", {})
    # A made-up action is answered NotImplemented and counted as "other", never by its name.
    made_up = await client.call("HackThePlanet", {})
    assert made_up[0] == 4 and made_up[2] == "NotImplemented"
    await client.communicator.send_to(text_data="this is not json")
    assert json.loads(await client.communicator.receive_from(timeout=5))[0] == 4
    body, after = await scrape()

    def moved(direction: str, kind: str, action: str) -> float:
        return messages(after, direction, "1.6", kind, action) - messages(
            before, direction, "1.6", kind, action
        )

    assert moved("in", "CALL", "BootNotification") == 1
    assert moved("out", "CALLRESULT", "BootNotification") == 1
    assert moved("in", "CALL", "Heartbeat") == 2
    assert moved("out", "CALLRESULT", "Heartbeat") == 2
    assert moved("in", "CALL", "other") == 1
    assert moved("out", "CALLERROR", "other") == 2  # the made-up action and the bad frame
    assert moved("in", "invalid", "other") == 1
    count = "evportal_ocpp_handler_seconds_count"
    assert (
        value(after, count, version="1.6", action="Heartbeat")
        - value(before, count, version="1.6", action="Heartbeat")
        == 2
    )
    assert value(after, count, version="1.6", action="BootNotification") > value(
        before, count, version="1.6", action="BootNotification"
    )
    # Cardinality: no label per station, charger or tenant, and neither the station id nor
    # the made-up action appears anywhere in the scrape.
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            assert not FORBIDDEN_LABELS & set(sample.labels), sample
    assert "CP-TEST-1" not in body and "HackThePlanet" not in body
    await client.close()
    _, closed = await scrape()
    assert value(closed, gauge, version="1.6") == value(before, gauge, version="1.6")


async def test_a_201_exchange_and_a_command_count_under_201(charger):
    _, before = await scrape()
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.0.1"])
    assert (await client.connect())[0]
    assert (await client.result("BootNotification", BOOT201))["status"] == "Accepted"
    await client.result("Heartbeat", {})
    _, connected = await scrape()
    gauge = "evportal_ocpp_connected_chargers"
    assert value(connected, gauge, version="2.0.1") == value(before, gauge, version="2.0.1") + 1
    assert messages(connected, "in", "2.0.1", "CALL", "Heartbeat") == (
        messages(before, "in", "2.0.1", "CALL", "Heartbeat") + 1
    )
    assert messages(connected, "in", "1.6", "CALL", "Heartbeat") == messages(
        before, "in", "1.6", "CALL", "Heartbeat"
    )
    # A command to the charger: our CALL out, its CALLRESULT in, under the command's action.
    charger = await Charger.objects.aget(pk=charger.pk)  # connected now
    pending = asyncio.ensure_future(
        send_command(charger, "TriggerMessage", {"requestedMessage": "Heartbeat"}, timeout=10)
    )
    call = await client.receive()
    assert call[0] == 2 and call[2] == "TriggerMessage"
    await client.send([3, call[1], {"status": "Accepted"}])
    assert (await pending).response == {"status": "Accepted"}
    _, after = await scrape()
    assert messages(after, "out", "2.0.1", "CALL", "TriggerMessage") == (
        messages(before, "out", "2.0.1", "CALL", "TriggerMessage") + 1
    )
    assert messages(after, "in", "2.0.1", "CALLRESULT", "TriggerMessage") == (
        messages(before, "in", "2.0.1", "CALLRESULT", "TriggerMessage") + 1
    )
    await client.close()


async def test_a_21_charger_counts_under_21_with_its_actions_named(charger):
    """A 2.1 charger's frames carry version 2.1 and their real action names (2.1 knows them),
    its SEND frames counted as SEND (OCPP-J 2.1)."""
    _, before = await scrape()
    client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.1"])
    assert (await client.connect())[0]
    assert (await client.result("BootNotification", BOOT201))["status"] == "Accepted"
    await client.result("Heartbeat", {})
    await client.send(
        [
            6,
            "s1",
            "NotifyPeriodicEventStream",
            {"id": 1, "pending": 0, "basetime": "2026-11-25T10:00:00Z", "data": []},
        ]
    )
    await client.result("Heartbeat", {})  # the SEND was taken (and not answered) before this
    _, after = await scrape()
    gauge = "evportal_ocpp_connected_chargers"
    assert value(after, gauge, version="2.1") == value(before, gauge, version="2.1") + 1
    assert messages(after, "in", "2.1", "CALL", "Heartbeat") == (
        messages(before, "in", "2.1", "CALL", "Heartbeat") + 2
    )
    assert messages(after, "in", "2.1", "SEND", "NotifyPeriodicEventStream") == (
        messages(before, "in", "2.1", "SEND", "NotifyPeriodicEventStream") + 1
    )
    assert messages(after, "in", "2.1", "CALL", "other") == messages(
        before, "in", "2.1", "CALL", "other"
    )
    await client.close()
