"""First aid: off unless a rule chooses it, sent through the usual command path to a charger
over the real OCPP consumer, once per alert, limited per day, each action and answer kept on the
alert and the port's timeline."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.models import Charger, ChargingSession, Command
from reliability.models import Alert, AlertRule, PortEvent
from reliability.services import alerts, first_aid
from reliability.tasks import alerts_task
from tests.bounds import GENEROUS_S
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def _seen_online(charger_id: int) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not await sync_to_async(lambda: Charger.objects.get(pk=charger_id).is_online())():
        assert time.monotonic() < deadline, "the charger's connection was never written"
        await asyncio.sleep(0.05)


async def test_a_faulted_port_gets_one_soft_reset_recorded_with_its_answer(charger):
    await AlertRule.objects.acreate(
        organization_id=(await sync_to_async(lambda: charger.property.organization_id)()),
        kind="faulted",
        after_s=60,
        remediation="soft_reset",
    )
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    faulted_at = timezone.now() - timedelta(minutes=5)
    payload = {
        "connectorId": 1,
        "errorCode": "GroundFailure",
        "status": "Faulted",
        "timestamp": iso(faulted_at),
    }
    assert await client.result("StatusNotification", payload) == {}
    # The sweep reads the charger as the database has it: wait until its connection is written
    # (batched beside the frames), as the periodic sweep would simply come again.
    await _seen_online(charger.pk)
    run = asyncio.ensure_future(sync_to_async(alerts_task, thread_sensitive=False)())
    # A generous deadline: the sweep runs in a thread. A sweep that ends without sending the
    # reset (or fails) is said at once, with its result, not as a timeout.
    receiving = asyncio.ensure_future(client.receive())
    await asyncio.wait({run, receiving}, return_when=asyncio.FIRST_COMPLETED)
    if not receiving.done():
        receiving.cancel()
        raise AssertionError(f"the sweep ended without sending a reset: {run.result()!r}")
    call = receiving.result()
    assert call[0] == 2 and call[2:] == ["Reset", {"type": "Soft"}]
    await client.send([3, call[1], {"status": "Accepted"}])
    await run
    alert = await Alert.objects.aget()
    assert (alert.kind, alert.connector_id, alert.mrec_code) == ("faulted", 1, "CX002")
    (step,) = alert.remediation
    assert (step["action"], step["result"]) == ("Reset", "Accepted")
    assert await Command.objects.filter(action="Reset", source="first_aid").acount() == 1
    remedy = await PortEvent.objects.aget(kind="remedy")
    assert (remedy.connector_id, remedy.status) == (1, "Reset")
    # Still faulted on the next run: the same alert, no second reset.
    await sync_to_async(alerts_task, thread_sensitive=False)()
    assert await Command.objects.filter(action="Reset").acount() == 1
    await client.close()


def _rule(charger, **fields):
    return AlertRule.objects.create(organization=charger.property.organization, **fields)


def _alert(rule, charger, kind, connector=1, opened=None):
    opened = opened or timezone.now()
    return Alert.objects.create(
        rule=rule,
        charger=charger,
        connector_id=connector,
        kind=kind,
        since=opened,
        opened_at=opened,
    )


def test_first_aid_is_off_by_default_and_limited_per_day(charger):
    quiet = _rule(charger, kind="faulted")
    first_aid.treat(_alert(quiet, charger, "faulted"))
    assert not Command.objects.exists()
    rule = _rule(charger, kind="faulted", remediation="soft_reset", remediation_max_per_day=1)
    first = _alert(rule, charger, "faulted")
    first_aid.treat(first)
    first.refresh_from_db()
    # The charger is offline here: the attempt and why it was not sent are recorded.
    assert [(s["action"], s["result"]) for s in first.remediation] == [
        ("Reset", "Not sent: the charger is offline.")
    ]
    alerts.alert_clear(first.pk, timezone.now())
    second = _alert(rule, charger, "faulted")
    first_aid.treat(second)
    second.refresh_from_db()
    assert second.remediation == []  # one a day: the next would be tomorrow
    assert Command.objects.filter(action="Reset").count() == 1


def test_a_stuck_session_is_asked_for_then_stopped(charger):
    now = timezone.now()
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=77,
        id_tag="04A1",
        started_at=now - timedelta(hours=1),
        meter_start_wh=0,
    )
    rule = _rule(charger, kind="stuck_session", after_s=600, remediation="stop_stuck")
    alert = _alert(rule, charger, "stuck_session")
    first_aid.treat(alert, now)
    first_aid.treat(alert, now + timedelta(seconds=599))  # not yet
    first_aid.treat(alert, now + timedelta(seconds=600))
    first_aid.treat(alert, now + timedelta(seconds=1200))  # stopped once
    commands = list(Command.objects.order_by("id").values_list("action", "payload"))
    assert commands == [
        ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1}),
        ("RemoteStopTransaction", {"transactionId": 77}),
    ]
    alert.refresh_from_db()
    assert [s["action"] for s in alert.remediation] == ["TriggerMessage", "RemoteStopTransaction"]
