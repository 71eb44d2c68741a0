"""The guest page's websocket follows a real OCPP charger: status, kW/kWh, finish with receipt."""

import json
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chargers.models import Command
from guest import services
from guest.models import GuestSession
from portal.asgi import application
from tests.bounds import GENEROUS_S
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-21T10:00:00Z"


def guest_socket(key: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/guest/{key}/", headers=[(b"origin", b"http://testserver")]
    )


async def next_of(ws, kind: str, timeout=GENEROUS_S) -> dict:
    while True:
        message = json.loads(await ws.receive_from(timeout=timeout))
        if message["type"] == kind:
            return message


async def until_state(ws, wanted: str, timeout=GENEROUS_S) -> dict:
    """Skip earlier snapshots (the consumer also re-sends one shortly after connecting)."""
    while True:
        state = await next_of(ws, "state", timeout=timeout)
        if state["state"] == wanted:
            return state


@pytest.fixture
def started_guest(guest_charger, rate, monkeypatch):
    def send(charger, action, payload, **kwargs):
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status="answered",
            response={"status": "Accepted"},
        )

    monkeypatch.setattr(services, "send_command_sync", send)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return services.guest_start(
        charger=guest_charger, connector_id=1, email="g@example.com", payment_method="pm_card_visa"
    )


async def test_unknown_key_is_refused(db):
    ok, _ = await guest_socket("nope").connect()
    assert not ok


async def test_foreign_origin_is_refused(started_guest):
    ws = WebsocketCommunicator(
        application,
        f"/ws/guest/{started_guest.key}/",
        headers=[(b"origin", b"http://evil.example")],
    )
    ok, _ = await ws.connect()
    assert not ok


async def test_live_session_from_plug_in_to_receipt(started_guest, rate):
    gs = started_guest
    # The price in force at the charger's start time (its clock says 21 Nov).
    rate.valid_from = datetime(2026, 11, 1, tzinfo=UTC)
    await rate.asave(update_fields=["valid_from"])
    charger = OcppTestClient("HB-Lot-01")
    assert (await charger.connect())[0]
    await charger.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})

    ws = guest_socket(gs.key)
    assert (await ws.connect())[0]
    first = await next_of(ws, "state")
    assert first["state"] == "starting" and first["seconds_left"] > 0

    await charger.result(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": TS},
    )
    status = await next_of(ws, "status")
    assert status["status"] == "Preparing"

    started = await charger.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": gs.id_tag, "meterStart": 100_000, "timestamp": TS},
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    tx = started["transactionId"]
    state = await until_state(ws, "charging")
    assert state["transaction_id"] == tx

    await charger.result(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": TS},
    )
    assert (await next_of(ws, "status"))["status_label"] == "Charging"
    await charger.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2026-11-21T10:30:00Z",
                    "sampledValue": [
                        {
                            "value": "103700",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        },
                        {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }
            ],
        },
    )
    meter = await next_of(ws, "meter")
    # The cost so far (issue 51 item 5), priced by the receipt's function: 1.00 connection +
    # 3.7 kWh × 0.40 = 2.48, +21 % tax = 3.00 EUR.
    assert meter == {"type": "meter", "kw": "7.4", "kwh": "3.700", "cost": "3.00 EUR"}

    await charger.result(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEV", "timestamp": TS},
    )
    assert (await next_of(ws, "status"))["status"] == "SuspendedEV"

    await charger.result(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 110_000,
            "timestamp": "2026-11-21T11:00:00Z",
            "reason": "EVDisconnected",
        },
    )
    state = await until_state(ws, "finished")
    assert state["receipt_url"] == f"/s/receipt/{gs.key}/"
    assert state["kwh"] == "10.000"
    # The last cost is the receipt's total: 1.00 + 10 kWh × 0.40 + idle (SuspendedEV from 10:00,
    # 50 min after the 10 min grace × 0.10) = 10.00, +21 % = 12.10 EUR.
    assert (state["cost"], state["running"], state["elapsed_s"]) == ("12.10 EUR", False, 3600)
    await ws.disconnect()
    await charger.close()
    gs = await GuestSession.objects.aget(pk=gs.pk)
    assert gs.state == GuestSession.State.FINISHED


async def test_deadline_passes_on_an_open_page(started_guest, settings):
    settings.GUEST_START_TIMEOUT_S = 1
    ws = guest_socket(started_guest.key)
    assert (await ws.connect())[0]
    first = await next_of(ws, "state")
    assert first["state"] in ("starting", "failed")
    final = first if first["state"] == "failed" else await until_state(ws, "failed")
    assert final["state"] == "failed"
    assert "released" in final["failure"]
    await ws.disconnect()
    gs = await sync_to_async(GuestSession.objects.get)(pk=started_guest.pk)
    assert gs.failure_code == "not_plugged_in"
