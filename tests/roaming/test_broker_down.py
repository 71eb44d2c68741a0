"""Roaming work queued while the Celery broker is down (backoffice/queueing.py): the partner's
request or the admin's action that queued it succeeds, and the job is kept in PendingTask to be
sent once the broker answers, not lost."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from backoffice.models import PendingTask
from roaming.models import RemoteCommand
from tests.backoffice.dependencies_down import closed_port
from tests.backoffice.test_queueing import Broker
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.emsp_stub import EmspStub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down():
    broker = Broker()
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    yield broker
    broker.back()


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


def test_a_command_taken_while_the_broker_is_down_is_kept_to_run(operator, stub, broker_down):
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
