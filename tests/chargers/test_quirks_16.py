"""Quirk profiles on the 1.6 path (issue 58 item 1, docs/quirks.md), through the consumer: an
OpenEVSE 4.2.2 (kWh labelled Wh, OpenEVSE/openevse_esp32_firmware#703) whose StopTransaction
also lacks meterStop ends at its last register reading read as kWh, exactly; the missing
meterStop, which no profile of it names, is recorded on the charger. And the admin shows it."""

from decimal import Decimal

import pytest
from django.urls import reverse

from chargers.models import ChargerDeviation, ChargingSession, Deviation, MeterValue, QuirkProfile
from chargers.plumbing import background
from chargers.state import quirks as quirks_state
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient


@pytest.fixture(autouse=True)
def _profiles_read_afresh():
    quirks_state.forget()
    yield
    quirks_state.forget()


def _register(value: str) -> list[dict]:
    return [
        {
            "timestamp": "2026-11-20T10:40:00Z",
            "sampledValue": [
                {"value": value, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "9451", "measurand": "Power.Active.Import", "unit": "W"},
            ],
        }
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_openevse_stop_without_meter_stop_ends_at_its_register_read_as_kwh(charger, token):
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result(
        "BootNotification",
        {
            "chargePointVendor": "OpenEVSE",
            "chargePointModel": "OpenEVSE",
            "firmwareVersion": "4.2.2",
        },
    )
    started = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 361,  # the same register: kWh too (MicroOcpp's meterStart)
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    transaction_id = started["transactionId"]
    await client.result(
        "MeterValues",
        {"connectorId": 1, "transactionId": transaction_id, "meterValue": _register("368.4")},
    )
    stop = await client.result(
        "StopTransaction",
        {"transactionId": transaction_id, "timestamp": "2026-11-20T10:45:00Z", "reason": "Local"},
    )
    assert "idTagInfo" in stop or stop == {}
    session = await ChargingSession.objects.aget(charger=charger, transaction_id=transaction_id)
    assert session.meter_start_wh == Decimal("361000")
    assert session.meter_stop_wh == Decimal("368400")  # 368.4 "Wh" is kWh
    assert session.energy_wh == Decimal("7400")
    assert await MeterValue.objects.filter(
        charger=charger, measurand="Energy.Active.Import.Register", unit="kWh"
    ).aexists()
    await background.drain(GENEROUS_S)
    row = await ChargerDeviation.objects.aget(charger=charger)
    assert (row.code, row.count) == ("meter_stop_missing", 1)
    assert '"StopTransaction"' in row.example and str(transaction_id) in row.example
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_an_openevse_session_is_read_in_kwh_from_start_to_stop(charger, token):
    """The outside check's frames (issue 58): meterStart 361, readings 361…367 "Wh" beside
    9.4 kW, meterStop 367: 6 kWh delivered, not 6 Wh; a plain charger's same frames stay Wh."""
    boot = {
        "chargePointVendor": "OpenEVSE",
        "chargePointModel": "OpenEVSE",
        "firmwareVersion": "4.2.2",
    }
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result("BootNotification", boot)
    started = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 361,
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    transaction_id = started["transactionId"]
    for value in ("361", "363", "364", "366"):
        await client.result(
            "MeterValues",
            {"connectorId": 1, "transactionId": transaction_id, "meterValue": _register(value)},
        )
    await client.result(
        "StopTransaction",
        {
            "transactionId": transaction_id,
            "meterStop": 367,
            "timestamp": "2026-11-20T10:45:00Z",
            "reason": "Local",
        },
    )
    session = await ChargingSession.objects.aget(charger=charger, transaction_id=transaction_id)
    assert (session.meter_start_wh, session.meter_stop_wh) == (Decimal("361000"), Decimal("367000"))
    assert session.energy_wh == Decimal("6000")
    await client.close()
    await background.drain(GENEROUS_S)
    assert not await ChargerDeviation.objects.filter(charger=charger).aexists()


@pytest.mark.django_db
def test_support_sees_a_chargers_deviations_and_adds_a_profile_in_admin(admin_client):
    charger = ChargerFactory(vendor="VendorQ", model="Q1", firmware_version="2.0")
    quirks_state.observed(
        charger_id=charger.pk,
        found=[("meter_stop_missing", "meterStop missing or unusable")],
        example='[2,"9","StopTransaction",{"transactionId":7}]',
    )
    page = admin_client.get(reverse("admin:chargers_charger_change", args=[charger.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "meterStop missing" in text and "StopTransaction" in text
    assert quirks_state.quirks_of("VendorQ", "Q1", "2.0").codes == frozenset()
    added = admin_client.post(
        reverse("admin:chargers_quirkprofile_add"),
        {
            "name": "VendorQ Q1: no meterStop",
            "vendor": "VendorQ",
            "model_prefix": "Q1",
            "firmware_prefix": "",
            "firmware_min": "2.0",
            "firmware_max": "2.9",
            "deviations": [Deviation.objects.get(code="meter_stop_missing").pk],
            "evidence": '[2,"9","StopTransaction",{"transactionId":7}]',
            "source_url": "https://example.org/vendorq-release-notes",
            "notes": "",
            "enabled": "on",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert QuirkProfile.objects.filter(vendor="VendorQ").exists()
    # This process sees it at once (the admin cleared its copy of the profiles).
    assert quirks_state.quirks_of("VendorQ", "Q1", "2.0").has("meter_stop_missing")
    assert not quirks_state.quirks_of("VendorQ", "Q1", "3.0").codes
