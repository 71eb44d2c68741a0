"""What a charger reports about itself over OCPP 2.0.1: its device model (NotifyReport,
GetVariables / SetVariables answers) and its events (NotifyEvent). Synchronous ORM code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import UniqueConstraint
from django.utils import timezone

from chargers.models import Charger, ChargerEvent, DeviceVariable
from chargers.ocpp.protocol import parse_datetime


def _component_key(component: dict) -> dict[str, Any]:
    evse = component.get("evse")
    evse = evse if isinstance(evse, dict) else {}
    return {
        "component": str(component.get("name", ""))[:50],
        "component_instance": str(component.get("instance", ""))[:50],
        "evse_id": int(evse.get("id") or 0),
        "connector_id": int(evse.get("connectorId") or 0),
    }


def _variable_key(variable: dict) -> dict[str, Any]:
    return {
        "variable": str(variable.get("name", ""))[:50],
        "variable_instance": str(variable.get("instance", ""))[:50],
    }


# The model's unique constraint: a report upserts on it.
_DEVICE_VARIABLE_KEY = next(
    c.fields
    for c in DeviceVariable._meta.constraints
    if isinstance(c, UniqueConstraint) and c.name == "unique_device_variable"
)


@transaction.atomic
def device_report_store(
    *, charger_id: int, report_data: list[dict], generated_at: datetime | None = None
) -> int:
    """Store the reportData of a NotifyReport, one row per (component, variable, attribute type).
    A newer report of the same attribute replaces the older one. Returns the rows written."""
    from chargers.devices.device_model import is_standardized

    now = generated_at or timezone.now()
    rows: dict[tuple, DeviceVariable] = {}  # by the unique key: a later item of the report wins
    for item in report_data:
        component, variable = item.get("component") or {}, item.get("variable") or {}
        characteristics = item.get("variableCharacteristics") or {}
        key = {**_component_key(component), **_variable_key(variable)}
        for attribute in item.get("variableAttribute") or []:
            attribute_type = str(attribute.get("type", "Actual"))[:8]
            rows[(*key.values(), attribute_type)] = DeviceVariable(
                charger_id=charger_id,
                attribute_type=attribute_type,
                **key,
                value=str(attribute.get("value", ""))[:2500],
                mutability=str(attribute.get("mutability", ""))[:10],
                # Part 2 VariableAttributeType: both default to false.
                persistent=attribute.get("persistent", False),
                constant=attribute.get("constant", False),
                data_type=str(characteristics.get("dataType", ""))[:20],
                unit=str(characteristics.get("unit", ""))[:16],
                values_list=str(characteristics.get("valuesList", ""))[:1000],
                standardized=is_standardized(key["component"], key["variable"]),
                updated_at=now,
            )
    # One statement per report (a full inventory has hundreds of variables), not one per variable.
    DeviceVariable.objects.bulk_create(
        rows.values(),
        batch_size=500,
        update_conflicts=True,
        unique_fields=_DEVICE_VARIABLE_KEY,
        update_fields=[
            "value",
            "mutability",
            "persistent",
            "constant",
            "data_type",
            "unit",
            "values_list",
            "standardized",
            "updated_at",
        ],
    )
    if any(_is_rate_unit(r.component, r.variable, r.attribute_type) for r in rows.values()):
        rate_units_sync(charger_id=charger_id)
    return sum(len(item.get("variableAttribute") or []) for item in report_data)


def _is_rate_unit(component: object, variable: object, attribute_type: object) -> bool:
    from chargers.devices import rate_units

    return (component, variable, attribute_type) == (
        rate_units.COMPONENT_201,
        rate_units.VARIABLE_201,
        "Actual",
    )


def rate_units_sync(*, charger_id: int) -> None:
    """Keep on the charger the units its device model says it takes in a profile
    (SmartChargingCtrlr.RateUnit), whenever that variable is reported (docs/power.md, "Units")."""
    from chargers.devices import rate_units
    from chargers.devices.smart_charging import rate_units_record

    value = (
        DeviceVariable.objects.filter(
            charger_id=charger_id,
            component=rate_units.COMPONENT_201,
            variable=rate_units.VARIABLE_201,
            attribute_type="Actual",
        )
        .values_list("value", flat=True)
        .first()
    )
    if value is not None:
        rate_units_record(charger_id=charger_id, units=rate_units.units_201(value))


def energy_reporting_changes(*, charger_id: int) -> list[dict]:
    """The setVariableData that make this charger report its energy register in transactions
    (chargers.devices.energy_config), from its stored device model; none when its organization turned
    the setting off."""
    from chargers.devices.energy_config import VARIABLES_201, Variable, set_variable_data_201

    enabled = (
        Charger.objects.filter(pk=charger_id)
        .values_list("property__organization__configure_energy_reporting", flat=True)
        .first()
    )
    if enabled is False:
        return []
    rows = DeviceVariable.objects.filter(
        charger_id=charger_id,
        attribute_type="Actual",
        component__in={c for c, _ in VARIABLES_201},
        variable__in={v for _, v in VARIABLES_201},
    )
    return set_variable_data_201(
        Variable(
            row.component,
            row.variable,
            row.value,
            row.mutability,
            row.component_instance,
            row.evse_id,
            row.connector_id,
        )
        for row in rows
    )


@transaction.atomic
def device_variables_from_get(*, charger_id: int, results: list[dict]) -> int:
    """Store the values a GetVariables answer reports as Accepted; returns the rows written."""
    from chargers.devices.device_model import is_standardized

    written, rate_unit = 0, False
    for result in results:
        if result.get("attributeStatus") != "Accepted" or "attributeValue" not in result:
            continue
        key = {
            **_component_key(result.get("component") or {}),
            **_variable_key(result.get("variable") or {}),
        }
        DeviceVariable.objects.update_or_create(
            charger_id=charger_id,
            attribute_type=str(result.get("attributeType", "Actual"))[:8],
            **key,
            defaults={
                "value": str(result["attributeValue"])[:2500],
                "updated_at": timezone.now(),
                "standardized": is_standardized(key["component"], key["variable"]),
            },
        )
        written += 1
        rate_unit = rate_unit or _is_rate_unit(
            key["component"], key["variable"], result.get("attributeType", "Actual")
        )
    if rate_unit:
        rate_units_sync(charger_id=charger_id)
    return written


@transaction.atomic
def device_variables_from_set(
    *, charger_id: int, requested: list[dict], results: list[dict]
) -> int:
    """Store the values of a SetVariables the charger Accepted (RebootRequired is stored too:
    the value is set, it takes effect after a reboot). Returns the rows written."""
    from chargers.devices.device_model import is_standardized

    written, rate_unit = 0, False
    from chargers.security.credentials import is_password_variable

    for wanted, result in zip(requested, results, strict=False):
        # A password (SecurityCtrlr.BasicAuthPassword) is write-only: never kept in the clear.
        if result.get("attributeStatus") not in (
            "Accepted",
            "RebootRequired",
        ) or is_password_variable(wanted):
            continue
        key = {
            **_component_key(wanted.get("component") or {}),
            **_variable_key(wanted.get("variable") or {}),
        }
        DeviceVariable.objects.update_or_create(
            charger_id=charger_id,
            attribute_type=str(wanted.get("attributeType", "Actual"))[:8],
            **key,
            defaults={
                "value": str(wanted.get("attributeValue", ""))[:2500],
                "updated_at": timezone.now(),
                "standardized": is_standardized(key["component"], key["variable"]),
            },
        )
        written += 1
        rate_unit = rate_unit or _is_rate_unit(
            key["component"], key["variable"], wanted.get("attributeType", "Actual")
        )
    if rate_unit:
        rate_units_sync(charger_id=charger_id)
    return written


def message_limits(*, charger_id: int, action: str) -> tuple[int | None, int | None]:
    """The DeviceDataCtrlr ItemsPerMessage and BytesPerMessage of instance `action` (GetVariables,
    SetVariables) the charger reported; None where it reported none (B05.FR.11, B06.FR.05)."""
    from chargers.devices.device_model import DEVICE_DATA_COMPONENTS, message_limit

    rows = DeviceVariable.objects.filter(
        charger_id=charger_id,
        component__in=DEVICE_DATA_COMPONENTS,
        evse_id=0,
        connector_id=0,
        variable__in=("ItemsPerMessage", "BytesPerMessage"),
        variable_instance=action,
        attribute_type="Actual",
    ).values_list("variable", "value")
    found = {variable: message_limit(value) for variable, value in rows}
    return found.get("ItemsPerMessage"), found.get("BytesPerMessage")


# -- events --------------------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    try:
        return parse_datetime(value) if isinstance(value, str) else timezone.now()
    except ValueError:
        return timezone.now()


@transaction.atomic
def charger_events_store(*, charger_id: int, event_data: list[dict]) -> int:
    """Store the eventData of a NotifyEvent once each; returns how many were new."""
    created_count = 0
    for data in event_data:
        component, variable = data.get("component") or {}, data.get("variable") or {}
        _, created = ChargerEvent.objects.get_or_create(
            charger_id=charger_id,
            event_id=int(data.get("eventId") or 0),
            timestamp=_time(data.get("timestamp")),
            defaults={
                "trigger": str(data.get("trigger", ""))[:10],
                "component": str(component.get("name", ""))[:50],
                "variable": str(variable.get("name", ""))[:50],
                "actual_value": str(data.get("actualValue", ""))[:2500],
                "event_notification_type": str(data.get("eventNotificationType", ""))[:30],
                "cleared": data.get("cleared"),
                "tech_info": str(data.get("techInfo", ""))[:500],
                "data": data,
            },
        )
        created_count += int(created)
    return created_count
