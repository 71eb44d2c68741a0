"""Configuring chargers to report energy (issue 33 item 9). Pure: no I/O, no Django.

A charger whose transaction measurands leave out the energy register sends sessions without
any reading: their energy is unknown. From a 2.0.1 device model (SampledDataCtrlr
TxStarted/TxUpdated/TxEndedMeasurands, AlignedDataCtrlr Measurands) or a 1.6 configuration
(MeterValuesSampledData, StopTxnSampledData), these functions say what to set so that
Energy.Active.Import.Register is included, keeping what the charger already samples. A
read-only variable or key is left alone (the charger would refuse it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ENERGY_REGISTER = "Energy.Active.Import.Register"
VARIABLES_201 = (
    ("SampledDataCtrlr", "TxStartedMeasurands"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    ("SampledDataCtrlr", "TxEndedMeasurands"),
    ("AlignedDataCtrlr", "Measurands"),
)
KEYS_16 = ("MeterValuesSampledData", "StopTxnSampledData")
VALUE_MAX = 2500  # 2.0.1 attributeValue (and our DeviceVariable.value column)
VALUE_MAX_16 = 500  # 1.6 ChangeConfiguration value


@dataclass(frozen=True)
class Variable:
    """One Actual attribute of a device-model variable, as stored (DeviceVariable)."""

    component: str
    variable: str
    value: str
    mutability: str = ""
    component_instance: str = ""
    evse_id: int = 0
    connector_id: int = 0


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def with_energy(value: str, limit: int) -> str | None:
    """`value` (a comma-separated measurand list) with the energy register added; None when
    it has it already or the longer list would not fit."""
    items = _items(value)
    if ENERGY_REGISTER in items:
        return None
    wanted = ",".join([*items, ENERGY_REGISTER])
    return wanted if len(wanted) <= limit else None


def set_variable_data_201(variables: Iterable[Variable]) -> list[dict]:
    """The SetVariables setVariableData that make a 2.0.1 charger include the energy register
    in its transaction (and clock-aligned) measurands."""
    data = []
    for item in variables:
        if (item.component, item.variable) not in VARIABLES_201:
            continue
        if item.mutability == "ReadOnly":
            continue
        value = with_energy(item.value, VALUE_MAX)
        if value is None:
            continue
        component: dict = {"name": item.component}
        if item.component_instance:
            component["instance"] = item.component_instance
        if item.evse_id:
            component["evse"] = {"id": item.evse_id}
            if item.connector_id:
                component["evse"]["connectorId"] = item.connector_id
        data.append(
            {
                "attributeType": "Actual",
                "attributeValue": value,
                "component": component,
                "variable": {"name": item.variable},
            }
        )
    return data


STOP_TXN = "StopTxnSampledData"


def change_configuration_16(
    configuration_key: Iterable[dict], *, stop_txn_unset: bool = False
) -> list[dict]:
    """The ChangeConfiguration payloads that make a 1.6 charger include the energy register in
    its sampled and stop-transaction data, from a GetConfiguration answer's configurationKey.
    `stop_txn_unset`: the charger's quirk profile says StopTxnSampledData must stay empty
    (docs/quirks.md): it is emptied where it has a value, never given the register."""
    changes = []
    for entry in configuration_key:
        if not isinstance(entry, dict) or entry.get("key") not in KEYS_16:
            continue
        if entry.get("readonly") is True:
            continue
        if stop_txn_unset and entry["key"] == STOP_TXN:
            if str(entry.get("value") or "").strip():
                changes.append({"key": STOP_TXN, "value": ""})
            continue
        value = with_energy(str(entry.get("value") or ""), VALUE_MAX_16)
        if value is not None:
            changes.append({"key": entry["key"], "value": value})
    return changes


CHANGED_16 = ("Accepted", "RebootRequired")  # RebootRequired: it applies after the next reboot


def problems_16(
    configuration_key: Iterable[dict], changed: dict[str, str], *, stop_txn_unset: bool = False
) -> list[str]:
    """What keeps a 1.6 charger from reporting its energy register, once asked: from its
    GetConfiguration answer and the status each ChangeConfiguration got (`changed`, by key).
    Empty when every key has the register (now or after a reboot); StopTxnSampledData is not
    asked of a charger that needs it unset (`stop_txn_unset`) unless emptying it failed."""
    reported = {entry.get("key"): entry for entry in configuration_key if isinstance(entry, dict)}
    problems = []
    for key in KEYS_16:
        if stop_txn_unset and key == STOP_TXN:
            if key in changed and changed[key] not in CHANGED_16:
                problems.append(f"ChangeConfiguration of {key} to empty answered {changed[key]}")
            continue
        entry = reported.get(key)
        if entry is None:
            problems.append(f"{key} is not a key it knows")
        elif key in changed:
            if changed[key] not in CHANGED_16:
                problems.append(f"ChangeConfiguration of {key} answered {changed[key]}")
        elif ENERGY_REGISTER in _items(str(entry.get("value") or "")):
            continue
        elif entry.get("readonly") is True:
            problems.append(f"{key} is read-only without {ENERGY_REGISTER}")
        else:
            problems.append(f"{key} with {ENERGY_REGISTER} would be over {VALUE_MAX_16} characters")
    return problems
