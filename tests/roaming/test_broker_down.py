"""Roaming work queued while the Celery broker is down (backoffice/queueing.py): the partner's
request or the admin's action that queued it succeeds, and the job is kept in PendingTask to be
sent once the broker answers, not lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from backoffice.models import PendingTask
from billing.models import Rate
from chargers.devices import stale
from chargers.models import ChargingSession
from roaming.models import AccessPointFeed, Cdr, RemoteCommand
from tests.backoffice.dependencies_down import closed_port
from tests.backoffice.test_queueing import Broker
from tests.factories import OrganizationFactory
from tests.ocpp_client import OcppTestClient
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.emsp_stub import EmspStub
from tests.roaming.test_api import api_for

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def broker_down() -> Iterator[None]:
    """The broker at a closed port (Broker closes the app's pools on the way in and out: one
    opened earlier, to the suite's Redis, would otherwise take the sends)."""
    broker = Broker()
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    try:
        yield
    finally:
        broker.back()


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


def test_a_command_taken_while_the_broker_is_down_is_kept_to_run(operator, stub):
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    body = {
        "response_url": f"{stub.base}/2.2.1/commands/UNLOCK_CONNECTOR/7",
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*2",
        "connector_id": "1",
    }
    with broker_down():
        response = Client().post(
            "/ocpi/2.2.1/commands/UNLOCK_CONNECTOR",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(),
        )
    assert response.status_code == 200
    assert response.json()["data"]["result"] == "ACCEPTED"
    command = RemoteCommand.objects.get()
    assert list(PendingTask.objects.values_list("name", "args")) == [
        ("roaming.command_execute", [command.pk])
    ]


@pytest.fixture
def emsp(operator, stub, client):
    """A connected eMSP whose driver's RFID0001 charges at a location with a rate."""
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    token = {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "RFID0001",
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
        "issuer": "Stub",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2024-01-01T00:00:00Z",
    }
    response = client.put(
        "/ocpi/2.2.1/tokens/DE/EMS/RFID0001",
        json.dumps(token),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert response.status_code == 201
    Rate.objects.create(
        property=operator["public"],
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
    )
    return partner


async def test_support_correcting_a_cdr_while_the_broker_is_down_keeps_the_push(
    operator, stub, emsp, admin_client
):
    """Django admin's "Credit and replace" on a CDR made on our estimate: with the broker down
    the action still says what it did (it was a 500 after the credit had been saved) and the
    push to the partner is kept to send."""
    charger = OcppTestClient("PUB-1")
    assert (await charger.connect())[0]
    start = await charger.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "RFID0001",
            "meterStart": 10000,
            "timestamp": "2026-11-20T08:00:00Z",
        },
    )
    reading = {
        "timestamp": "2026-11-20T08:30:00Z",
        "sampledValue": [{"value": "16000", "unit": "Wh"}],
    }
    await charger.result(
        "MeterValues",
        {"connectorId": 1, "transactionId": start["transactionId"], "meterValue": [reading]},
    )
    session = await ChargingSession.objects.aget(id_tag="RFID0001")
    assert await sync_to_async(stale.close_without_stop)(session.pk)
    await charger.close()
    await ChargingSession.objects.filter(pk=session.pk).aupdate(
        stop_reason="Local",
        meter_stop_wh=22000,
        stopped_at=datetime(2026, 11, 20, 9, 40, tzinfo=UTC),
        received_stop_at=timezone.now() - timedelta(days=30),
    )
    first = await Cdr.objects.aget(session=session)
    assert first.estimated
    before = len(stub.requests_to("cdrs", "POST"))

    with broker_down():
        answer = await sync_to_async(admin_client.post)(
            "/admin/roaming/cdr/",
            {"action": "credit_and_replace", "_selected_action": [first.pk]},
            follow=True,
        )
    assert answer.status_code == 200
    said = [str(m) for m in answer.context["messages"]]
    assert said[0].startswith("1 CDR(s) credited and replaced by the charger's own stop")
    assert len(stub.requests_to("cdrs", "POST")) == before  # not sent yet
    assert [name async for name in PendingTask.objects.values_list("name", flat=True)] == [
        "roaming.deliveries_send"
    ]


def test_a_location_edited_while_the_broker_is_down_keeps_its_push(operator):
    """A host's change of a location's roaming data: saved and answered 200, and the PUT to the
    partners kept to send (no sweep sends a location whose data changed)."""
    api = api_for(operator["org"])
    with broker_down():
        answer = api.patch(
            f"/api/v1/properties/{operator['public'].pk}/",
            {"roaming_data": {"city": "Utrecht"}},
            format="json",
        )
    assert answer.status_code == 200, answer.content
    assert answer.json()["roaming_data"]["city"] == "Utrecht"
    assert list(PendingTask.objects.values_list("name", "args")) == [
        ("roaming.location_push", [operator["public"].pk])
    ]


def test_an_access_point_switched_on_while_the_broker_is_down_keeps_its_full_sync(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.OCPI_PARTY_ID = "EVB"
    org = OrganizationFactory()
    feed = {
        "enabled": True,
        "protocol": "ocpi-2.2.1",
        "endpoint_url": "http://127.0.0.1:9/ocpi/2.2.1",
        "token": "nap-secret-token",
        "party_id": "EVB",
    }
    with broker_down():
        answer = api_for(org).put(
            f"/api/v1/organizations/{org.pk}/access-points/nl/", feed, format="json"
        )
    assert answer.status_code == 200, answer.content
    assert list(PendingTask.objects.values_list("name", "args")) == [
        ("roaming.access_point_full_sync", [AccessPointFeed.objects.get().pk])
    ]


def test_a_partner_moved_to_2_3_0_while_the_broker_is_down_gets_its_locations_once_it_is_back(
    operator, stub, live_server
):
    """A credentials PUT that moves the partner to another version queues every location again
    in the new version's shapes: with the broker down the job is kept (it was dropped, and no
    sweep sends a location whose data did not change), and sent once the broker answers."""
    from backoffice import queueing
    from roaming import services

    partner, token_a = services.partner_invite(organization=operator["org"], name="Stub")
    stub.register_with(f"{live_server.url}/ocpi/versions", token_a)
    stub.versions = ("2.2.1", "2.3.0")
    with broker_down():
        stub.update_to_newest()  # answered 1000 (it asserts so)
        assert list(PendingTask.objects.values_list("name", "args")) == [
            ("roaming.locations_resend", [partner.pk])
        ]
    assert stub.requests_to("locations", "PUT") == []

    assert queueing.pending_send() == 1

    (put,) = stub.requests_to("locations", "PUT")
    assert put["path"].startswith("/ocpi/emsp/2.3.0/locations/")
    assert put["body"]["id"] == str(operator["public"].pk)
    assert not PendingTask.objects.exists()
