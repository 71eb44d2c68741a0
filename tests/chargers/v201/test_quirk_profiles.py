"""Issue 58 item 1, checked from outside with chargers written from the protocol text: a model
whose quirk profile says its energy register is in kWh labelled Wh is read right through the
profile (the session's energy and its bill exact), and a deviation no profile names is recorded
on the charger (docs/quirks.md). Frames through the real consumer (Channels' communicator)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from billing.models import Rate
from billing.services import session_price
from chargers.models import ChargerDeviation, ChargingSession
from chargers.plumbing import background
from chargers.state import quirks as quirks_state
from tests.bounds import GENEROUS_S

from .conftest import BOOT, connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0, T1, T2 = "2026-11-20T10:00:00Z", "2026-11-20T10:50:00Z", "2026-11-20T11:00:00Z"


@pytest.fixture(autouse=True)
def _profiles_read_afresh():
    quirks_state.forget()  # another test's copy of the profiles table is not this one's
    yield
    quirks_state.forget()


def _boot(vendor: str, firmware: str) -> dict:
    station = {**BOOT["chargingStation"], "vendorName": vendor, "firmwareVersion": firmware}
    return {**BOOT, "chargingStation": station}


def _register(wh: str) -> list[dict]:
    """An energy register reading labelled Wh, as the OpenEVSE thread's frames are."""
    return [
        {
            "timestamp": T1,
            "sampledValue": [
                {
                    "value": float(wh),
                    "context": "Transaction.End",
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                }
            ],
        }
    ]


async def _session_in_kwh_labelled_wh(client) -> ChargingSession:
    started = tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3")
    started["meterValue"] = _register("361.2")
    started["meterValue"][0]["sampledValue"][0]["context"] = "Transaction.Begin"
    started["meterValue"][0]["timestamp"] = T0
    await client.result("TransactionEvent", started)
    ended = tx_event("Ended", 1, timestamp=T1, stopped_reason="EVDisconnected")
    ended["meterValue"] = _register("368.745")
    await client.result("TransactionEvent", ended)
    return await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")


def _price(session_id: int):
    return session_price(session_id=session_id)


async def test_a_model_whose_profile_says_kwh_labelled_wh_is_billed_its_exact_energy(
    charger, token
):
    await Rate.objects.acreate(
        property=charger.property,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        energy_price_per_kwh=Decimal("0.40"),
    )
    client = await connect201()
    # The seeded profile (OpenEVSE firmware 4.2.2, OpenEVSE/openevse_esp32_firmware#703).
    answer = await client.result("BootNotification", _boot("OpenEVSE", "4.2.2"))
    assert answer["status"] == "Accepted"
    session = await _session_in_kwh_labelled_wh(client)
    # 361.2 and 368.745 "Wh" are kWh: 7.545 kWh delivered, to the last decimal.
    assert session.meter_start_wh == Decimal("361200")
    assert session.meter_stop_wh == Decimal("368745")
    assert session.energy_wh == Decimal("7545")
    charge = await sync_to_async(_price)(session.pk)
    assert charge.energy_wh == Decimal("7545")
    assert charge.subtotal == Decimal("3.02")  # 7.545 kWh x 0.40, rounded once
    await background.drain(GENEROUS_S)
    # Expected of this model: handled, not recorded as unknown.
    assert not await ChargerDeviation.objects.filter(charger=charger).aexists()
    await client.close()


async def test_the_same_frames_from_a_model_without_a_profile_are_read_as_labelled(charger, token):
    client = await connect201()
    await client.result("BootNotification", _boot("VendorX", "4.2.2"))
    session = await _session_in_kwh_labelled_wh(client)
    assert session.energy_wh == Decimal("7.545")
    await client.close()


async def test_a_boot_with_other_firmware_leaves_the_profile(charger, token):
    client = await connect201()
    await client.result("BootNotification", _boot("OpenEVSE", "4.3.0"))
    session = await _session_in_kwh_labelled_wh(client)
    assert session.energy_wh == Decimal("7.545")
    await client.close()


async def test_an_updated_after_the_ended_no_profile_names_is_recorded_on_the_charger(
    charger, token, host
):
    client = await connect201()
    await client.result("BootNotification", _boot("VendorX", "1.2.3"))
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=0)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, timestamp=T1, wh=2000, context="Transaction.End"),
    )
    # seqNos without a gap: no GetTransactionStatus comes between the frames (E14).
    late = tx_event("Updated", 2, timestamp=T2, trigger="MeterValuePeriodic", wh=2600)
    assert await client.result("TransactionEvent", late) == {}  # never refused
    await client.result(
        "TransactionEvent",
        tx_event("Updated", 3, timestamp=T2, trigger="MeterValuePeriodic", wh=2700),
    )
    await background.drain(GENEROUS_S)
    row = await ChargerDeviation.objects.aget(charger=charger, code="updated_after_ended")
    assert row.count == 2
    assert row.first_seen_at <= row.last_seen_at
    assert '"seqNo": 2' in row.example and '"TransactionEvent"' in row.example
    assert "Updated seqNo 3" in row.detail
    # The late-event rule held: the session is as its Ended left it.
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    assert (session.energy_wh, session.late_events) == (Decimal(2000), 2)
    # The host sees it on the charger's page.
    page = await sync_to_async(_page)(host, f"/chargers/{charger.station_id}/")
    assert "Sends Updated after Ended" in page and "recorded for support" in page
    await client.close()


async def test_a_model_whose_profile_names_updated_after_ended_is_not_recorded(charger, token):
    from chargers.models import Deviation, QuirkProfile

    profile = await QuirkProfile.objects.acreate(
        name="VendorX late events", vendor="VendorX", source_url="https://example.org/evidence"
    )
    await profile.deviations.aset([await Deviation.objects.aget(code="updated_after_ended")])
    client = await connect201()
    await client.result("BootNotification", _boot("VendorX", "1.2.3"))
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=0)
    )
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, timestamp=T1, wh=2000, context="Transaction.End"),
    )
    await client.result("TransactionEvent", tx_event("Updated", 2, timestamp=T2, wh=2600))
    await background.drain(GENEROUS_S)
    assert not await ChargerDeviation.objects.filter(charger=charger).aexists()
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    assert (session.energy_wh, session.late_events) == (Decimal(2000), 1)  # the rule still holds
    await client.close()


def _page(user, path: str) -> str:
    from django.test import Client

    portal = Client()
    portal.force_login(user)
    response = portal.get(path)
    assert response.status_code == 200
    return response.content.decode()
