"""Watt-only chargers (issue 45 item 1): the units a charger takes in a profile are read after
boot (1.6 ChargingScheduleAllowedChargingRateUnit, asked with the energy-reporting check) and
whenever it reports them (2.0.1 SmartChargingCtrlr.RateUnit in its device model); a charger that
takes only W is sent its limits in W, converted as it converts them back, with numberPhases set to
the phases the car draws on; a model that rejects one unit is asked once in the other and the
answer is remembered. Chargers written from the protocol texts, over Channels' communicator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chargers.messagelog.log import writer
from chargers.models import Charger, ChargingSession
from power import enforcement, profiles, services
from power.models import ConnectorAllocation, ConnectorPower, SiteBudget
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"
BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "WattBox"}
BOOT_201 = {
    "reason": "PowerUp",
    "chargingStation": {"model": "WattBox", "vendorName": "Acme"},
}
RATE_KEY = "ChargingScheduleAllowedChargingRateUnit"


@pytest.fixture(autouse=True)
def _quiet(settings, monkeypatch):
    monkeypatch.setattr(enforcement, "_refused_until", {})
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = True
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False
    settings.POWER_PROFILE_MIN_INTERVAL_S = 0


@pytest.fixture
def site(charger):
    SiteBudget.objects.create(property=charger.property, limit_a=Decimal(20), phases=3, voltage=230)
    ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=Decimal(16))
    return charger.property


class Charger16:
    """A 1.6 charger (OCPP 1.6 §9.4, §5.16) that declares `units` and accepts a profile only in
    `takes` (None: accepts any)."""

    def __init__(self, units: str, takes: str | None = None):
        self.units, self.takes = units, takes
        self.client = OcppTestClient("CP-TEST-1")
        self.profiles: list[dict] = []  # csChargingProfiles it was sent, answered or not

    def answer(self, action: str, payload: dict) -> dict:
        if action == "GetConfiguration":
            keys = {
                RATE_KEY: self.units,
                "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Import",
                "StopTxnSampledData": "Energy.Active.Import.Register",
            }
            asked = payload.get("key") or list(keys)
            return {
                "configurationKey": [
                    {"key": k, "readonly": True, "value": keys[k]} for k in asked if k in keys
                ]
            }
        assert action == "SetChargingProfile", action
        body = payload["csChargingProfiles"]
        self.profiles.append(body)
        unit = body["chargingSchedule"]["chargingRateUnit"]
        return {"status": "Accepted" if self.takes in (None, unit) else "Rejected"}


class Charger201(Charger16):
    """A 2.0.1 charger (K01) answering SetChargingProfile the same way."""

    def __init__(self, units: str, takes: str | None = None):
        super().__init__(units, takes)
        self.client = OcppTestClient("CP-TEST-1", subprotocols=["ocpp2.0.1"])

    def answer(self, action: str, payload: dict) -> dict:
        assert action == "SetChargingProfile", action
        body = payload["chargingProfile"]
        self.profiles.append(body)
        unit = body["chargingSchedule"][0]["chargingRateUnit"]
        return {"status": "Accepted" if self.takes in (None, unit) else "Rejected"}


async def _answer_while(fake: Charger16, work) -> None:
    """Answer the central system's CALLs until `work` is done, then those still coming."""
    task = asyncio.ensure_future(work)
    while True:
        # receive_nothing never cancels the application (a receive that times out would).
        if await fake.client.communicator.receive_nothing(timeout=0.2):
            if task.done():
                break
            continue
        call = await fake.client.receive()
        await fake.client.send([3, call[1], fake.answer(call[2], call[3])])
    await task


async def _boot_16(fake: Charger16) -> None:
    assert (await fake.client.connect())[0]
    assert (await fake.client.result("BootNotification", BOOT_16))["status"] == "Accepted"
    await _answer_while(fake, asyncio.sleep(0.5))  # the check after boot


async def _start_16(fake: Charger16, phases: list[str]) -> None:
    tx = (
        await fake.client.result(
            "StartTransaction",
            {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0, "timestamp": TS},
        )
    )["transactionId"]
    # The car draws on `phases` only (per-phase Current.Import, 1.6 has no numberOfPhasesUsed).
    await fake.client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2026-11-20T10:00:10Z",
                    "sampledValue": [
                        {
                            "value": "15.8" if p in phases else "0.0",
                            "measurand": "Current.Import",
                            "phase": p,
                            "unit": "A",
                        }
                        for p in ("L1", "L2", "L3")
                    ],
                }
            ],
        },
    )
    await writer.flush()


async def _enforced(fake: Charger16, property_id: int) -> None:
    await _answer_while(fake, sync_to_async(services.recompute)(property_id))
    await _answer_while(fake, sync_to_async(enforcement.site_pass)(property_id))


def _periods(body: dict) -> list[dict]:
    schedule = body["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return [{"unit": schedule["chargingRateUnit"], **p} for p in schedule["chargingSchedulePeriod"]]


def _tx_period(fake: Charger16) -> dict:
    return _periods([b for b in fake.profiles if b["chargingProfilePurpose"] == "TxProfile"][-1])[0]


async def test_a_16_watt_only_charger_accepts_limits_in_w_with_the_phases_its_car_draws_on(
    site, charger, token
):
    fake = Charger16("Power", takes="W")
    await _boot_16(fake)
    assert (await Charger.objects.aget(pk=charger.pk)).rate_units == "W"
    await _start_16(fake, ["L1"])  # a single-phase car
    await _enforced(fake, site.pk)

    row = await ConnectorAllocation.objects.aget(charger=charger)
    assert row.limit_a == Decimal(16) and row.applied_limit_a == Decimal(16) and not row.refused
    # 16 A on one phase at 230 V: 3680 W with numberPhases 1, which the charger turns back into
    # 16 A on that phase (not 3680 / (230 x 3) = 5.3 A, nor 16 A on each of three).
    assert _tx_period(fake) == {"unit": "W", "startPeriod": 0, "limit": 3680.0, "numberPhases": 1}
    # Every profile went in W with numberPhases, none was refused, nothing retried.
    assert {p["unit"] for b in fake.profiles for p in _periods(b)} == {"W"}
    assert all("numberPhases" in p for b in fake.profiles for p in _periods(b))
    assert (await Charger.objects.aget(pk=charger.pk)).rate_unit_learnt == ""
    await fake.client.close()


async def test_a_201_watt_only_charger_accepts_limits_in_w_with_its_number_of_phases_used(
    site, charger, token
):
    fake = Charger201("W", takes="W")
    assert (await fake.client.connect())[0]
    assert (await fake.client.result("BootNotification", BOOT_201))["status"] == "Accepted"
    # It reports the key (a NotifyReport, K01 / B07): kept on the charger.
    report = {
        "requestId": 1,
        "generatedAt": TS,
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "SmartChargingCtrlr"},
                "variable": {"name": "RateUnit"},
                "variableAttribute": [{"type": "Actual", "value": "W", "mutability": "ReadOnly"}],
            }
        ],
    }
    assert await fake.client.result("NotifyReport", report) == {}
    assert (await Charger.objects.aget(pk=charger.pk)).rate_units == "W"
    status = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
    assert await fake.client.result("StatusNotification", status) == {}
    await fake.client.result(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": TS,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "numberOfPhasesUsed": 2,
            "transactionInfo": {"transactionId": "TX-W", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": "04A1B2C3", "type": "ISO14443"},
        },
    )
    assert (await ChargingSession.objects.aget(ocpp_transaction_id="TX-W")).phases_used == 2
    await _enforced(fake, site.pk)

    row = await ConnectorAllocation.objects.aget(charger=charger)
    assert row.applied_limit_a == Decimal(16) and not row.refused
    assert _tx_period(fake) == {"unit": "W", "startPeriod": 0, "limit": 7360.0, "numberPhases": 2}
    # The charger-wide profiles: W over the charger's three phases (the safe default: 16 A).
    safe = next(b for b in fake.profiles if b["id"] == profiles.PROFILE_ID_SAFE)
    assert _periods(safe)[0] == {"unit": "W", "startPeriod": 0, "limit": 11040.0, "numberPhases": 3}
    await fake.client.close()


async def test_a_model_that_rejects_a_unit_is_asked_once_in_the_other_and_that_is_remembered(
    site, charger, token
):
    """It declares both units (so it gets amperes) but takes only watts: its first profile is
    rejected in A and accepted in W; from then on every profile goes in W, none in A again."""
    fake = Charger16("Current,Power", takes="W")
    await _boot_16(fake)
    assert (await Charger.objects.aget(pk=charger.pk)).rate_units == "A,W"
    await _start_16(fake, ["L1", "L2", "L3"])
    await _enforced(fake, site.pk)

    units = [_periods(b)[0]["unit"] for b in fake.profiles]
    assert units[:2] == ["A", "W"]  # the safe default: rejected in A, retried once in W
    assert units[2:] and set(units[2:]) == {"W"}
    assert (await Charger.objects.aget(pk=charger.pk)).rate_unit_learnt == "W"
    row = await ConnectorAllocation.objects.aget(charger=charger)
    assert row.applied_limit_a == Decimal(16) and not row.refused
    assert _tx_period(fake) == {
        "unit": "W",
        "startPeriod": 0,
        "limit": 11040.0,
        "numberPhases": 3,
    }

    # A charger refusing both: asked once in each, then remembered and not asked in W again.
    await Charger.objects.filter(pk=charger.pk).aupdate(rate_unit_learnt="")
    fake.takes, fake.profiles = "neither", []
    await ConnectorAllocation.objects.filter(pk=row.pk).aupdate(applied_limit_a=Decimal(10))
    await _answer_while(fake, sync_to_async(enforcement.site_pass)(site.pk))
    assert [_periods(b)[0]["unit"] for b in fake.profiles][:2] == ["A", "W"]
    assert (await Charger.objects.aget(pk=charger.pk)).rate_unit_learnt == "A"
    fake.profiles = []
    enforcement._refused_until.clear()
    await ConnectorAllocation.objects.filter(pk=row.pk).aupdate(applied_at=None, refused=False)
    await _answer_while(fake, sync_to_async(enforcement.site_pass)(site.pk))
    assert fake.profiles and {_periods(b)[0]["unit"] for b in fake.profiles} == {"A"}
    await fake.client.close()


def test_units_and_conversion():
    from chargers.devices import rate_units

    assert rate_units.units_16("Current,Power") == "A,W"
    assert rate_units.units_16(" Power ") == "W"
    assert rate_units.units_201("W") == "W" and rate_units.units_201("A,W") == "A,W"
    assert rate_units.from_configuration_16([{"key": RATE_KEY, "value": "Current"}]) == "A"
    assert rate_units.from_configuration_16([{"key": "Other", "value": "Power"}]) is None
    assert profiles.unit_for("W") == "W"
    assert profiles.unit_for("A,W") == "A"  # both: amperes
    assert profiles.unit_for("") == "A"  # unknown: amperes
    assert profiles.unit_for("A", "W") == "W"  # what a retry taught wins
    assert profiles.watts(Decimal("10.6"), voltage=230, phases=None) == 7314.0  # absent: 3
    assert profiles.watts(Decimal("10.6"), voltage=230, phases=1) == 2438.0
    # Rounded down: the charger's W / (V x phases) is never above the limit.
    assert profiles.watts(Decimal("6.1"), voltage=231, phases=3) / (231 * 3) <= 6.1
    assert profiles.phases_drawn({"L1": Decimal(16), "L2-N": Decimal("0.2")}) == 1
    assert profiles.phases_drawn({}) is None


def test_a_201_charger_reporting_its_units_in_a_getvariables_answer_is_kept(charger):
    from chargers.devices import variables

    answer = [
        {
            "attributeStatus": "Accepted",
            "attributeType": "Actual",
            "attributeValue": "A,W",
            "component": {"name": "SmartChargingCtrlr"},
            "variable": {"name": "RateUnit"},
        }
    ]
    Charger.objects.filter(pk=charger.pk).update(rate_unit_learnt="W")
    variables.device_variables_from_get(charger_id=charger.pk, results=answer)
    charger.refresh_from_db()
    # A new declaration forgets what a retry taught: asked in its declared unit again.
    assert (charger.rate_units, charger.rate_unit_learnt) == ("A,W", "")
