"""Chargers are configured to report energy (issue 33 item 9): a 2.0.1 charger whose device
model shows transaction measurands without Energy.Active.Import.Register is sent a SetVariables
adding it (read-only variables left alone), unless its organization turned that off; once set,
its next session's energy is exact."""

import asyncio
from decimal import Decimal

import pytest

from chargers.devices.energy_config import change_configuration_16
from chargers.models import ChargingSession, DeviceVariable
from tests.bounds import GENEROUS_S

from .conftest import TS, connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


def _item(component: str, variable: str, value: str, mutability: str = "ReadWrite") -> dict:
    return {
        "component": {"name": component},
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": value, "mutability": mutability}],
    }


REPORT = {
    "requestId": 1,
    "generatedAt": TS,
    "seqNo": 0,
    "reportData": [
        _item("SampledDataCtrlr", "TxStartedMeasurands", "Current.Import"),
        _item("SampledDataCtrlr", "TxEndedMeasurands", ""),
        _item("SampledDataCtrlr", "TxUpdatedMeasurands", "Voltage", mutability="ReadOnly"),
        _item("AlignedDataCtrlr", "Measurands", "Energy.Active.Import.Register,Voltage"),
        # Required (part 2 §2.1): the most setVariableData one SetVariables may carry.
        {
            "component": {"name": "DeviceDataCtrlr"},
            "variable": {"name": "ItemsPerMessage", "instance": "SetVariables"},
            "variableAttribute": [{"type": "Actual", "value": "10", "mutability": "ReadOnly"}],
        },
    ],
}


async def test_a_charger_lacking_the_energy_measurand_is_configured(charger, token):
    client = await connect201()
    assert await client.result("NotifyReport", REPORT) == {}
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == "SetVariables"
    wanted = {d["variable"]["name"]: d["attributeValue"] for d in call[3]["setVariableData"]}
    assert wanted == {
        "TxStartedMeasurands": "Current.Import,Energy.Active.Import.Register",
        "TxEndedMeasurands": "Energy.Active.Import.Register",
    }  # the read-only one and the one that has it already are left alone
    await client.send(
        [
            3,
            call[1],
            {
                "setVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "component": d["component"],
                        "variable": d["variable"],
                    }
                    for d in call[3]["setVariableData"]
                ]
            },
        ]
    )
    for _ in range(50):  # the answer is stored in the device model once it arrives
        stored = await DeviceVariable.objects.filter(
            charger=charger, variable="TxEndedMeasurands"
        ).aget()
        if stored.value:
            break
        await asyncio.sleep(0.1)
    assert stored.value == "Energy.Active.Import.Register"

    # Its next session carries the register, with decimals: the energy is exact.
    await client.result("TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=10.25))
    await client.result(
        "TransactionEvent",
        tx_event("Ended", 1, timestamp="2026-11-20T10:30:00Z", wh=7010.5, stopped_reason="Local"),
    )
    session = await ChargingSession.objects.aget(charger=charger)
    assert session.energy_wh == Decimal("7000.25")

    # A new report that shows the energy register everywhere asks for nothing.
    done = {
        **REPORT,
        "requestId": 2,
        "reportData": [
            _item("SampledDataCtrlr", "TxStartedMeasurands", "Energy.Active.Import.Register"),
            _item("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
        ],
    }
    assert await client.result("NotifyReport", done) == {}
    assert await client.communicator.receive_nothing(timeout=1.5)
    await client.close()


async def test_an_organization_that_turned_it_off_is_left_alone(charger, prop):
    organization = prop.organization
    organization.configure_energy_reporting = False
    await organization.asave()
    client = await connect201()
    assert await client.result("NotifyReport", REPORT) == {}
    assert await client.communicator.receive_nothing(timeout=1.5)
    await client.close()


def test_the_16_keys_to_change_leave_read_only_and_complete_ones_alone():
    answer = [
        {"key": "MeterValuesSampledData", "readonly": False, "value": "Power.Active.Import"},
        {"key": "StopTxnSampledData", "readonly": True, "value": ""},
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
    ]
    assert change_configuration_16(answer) == [
        {
            "key": "MeterValuesSampledData",
            "value": "Power.Active.Import,Energy.Active.Import.Register",
        }
    ]
    complete = [
        {"key": "StopTxnSampledData", "readonly": False, "value": "Energy.Active.Import.Register"}
    ]
    assert change_configuration_16(complete) == []
