"""OCPP 2.0.1 monitoring (N02-N07): the monitors a charger has on its device-model variables.
Synchronous ORM code.

Learnt from the charger: SetVariableMonitoring results it Accepted add or replace monitors (by the
id it gives), ClearVariableMonitoring results it Accepted remove them, NotifyMonitoringReport (the
answer to GetMonitoringReport) reports them, and SetMonitoringBase HardWiredOnly/FactoryDefault
drops the ones we set (ask GetMonitoringReport for what is left). When a monitor trips the charger
sends NotifyEvent (stored as ChargerEvent by services_v201).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from chargers.models import Command, VariableMonitor


def _place(component: dict[str, Any], variable: dict[str, Any]) -> dict[str, Any]:
    evse = component.get("evse") or {}
    return {
        "component": str(component.get("name", ""))[:50],
        "component_instance": str(component.get("instance", ""))[:50],
        "evse_id": max(int(evse.get("id", 0) or 0), 0),
        "connector_id": max(int(evse.get("connectorId", 0) or 0), 0),
        "variable": str(variable.get("name", ""))[:50],
        "variable_instance": str(variable.get("instance", ""))[:50],
    }


@transaction.atomic
def record_answer(
    *, charger_id: int, action: str, payload: dict[str, Any], status: str, response: Any
) -> None:
    """Keep the monitors after the charger answered SetVariableMonitoring, ClearVariableMonitoring or
    SetMonitoringBase."""
    if status != Command.Status.ANSWERED or not isinstance(response, dict):
        return
    if action == "SetVariableMonitoring":
        for wanted, result in zip(
            payload.get("setMonitoringData") or [],
            response.get("setMonitoringResult") or [],
            strict=False,
        ):
            if result.get("status") != "Accepted" or not isinstance(result.get("id"), int):
                continue
            VariableMonitor.objects.update_or_create(
                charger_id=charger_id,
                monitor_id=result["id"],
                defaults={
                    **_place(result.get("component") or {}, result.get("variable") or {}),
                    "type": str(result.get("type", wanted.get("type", "")))[:20],
                    "value": float(wanted.get("value", 0)),
                    "severity": int(result.get("severity", wanted.get("severity", 9))),
                    "transaction": bool(wanted.get("transaction", False)),
                    "kind": "CustomMonitor",
                    "updated_at": timezone.now(),
                },
            )
    elif action == "ClearVariableMonitoring":
        cleared = [
            r.get("id")
            for r in response.get("clearMonitoringResult") or []
            if r.get("status") == "Accepted"
        ]
        VariableMonitor.objects.filter(charger_id=charger_id, monitor_id__in=cleared).delete()
    elif action == "SetMonitoringBase" and response.get("status") == "Accepted":
        if payload.get("monitoringBase") in ("HardWiredOnly", "FactoryDefault"):
            VariableMonitor.objects.filter(charger_id=charger_id).delete()


@transaction.atomic
def monitoring_report_store(*, charger_id: int, payload: dict[str, Any]) -> int:
    """NotifyMonitoringReport (N02): store each reported monitor; return how many."""
    count = 0
    for entry in payload.get("monitor") or []:
        place = _place(entry.get("component") or {}, entry.get("variable") or {})
        for monitor in entry.get("variableMonitoring") or []:
            VariableMonitor.objects.update_or_create(
                charger_id=charger_id,
                monitor_id=monitor["id"],
                defaults={
                    **place,
                    "type": str(monitor.get("type", ""))[:20],
                    "value": float(monitor.get("value", 0)),
                    "severity": int(monitor.get("severity", 9)),
                    "transaction": bool(monitor.get("transaction")),
                    "updated_at": timezone.now(),
                },
            )
            count += 1
    return count


# -- ClearVariableMonitoring (N06) in messages the charger accepts -----------------------------------

# N06 / part 2 appendix MonitoringCtrlr: ItemsPerMessage, instance ClearVariableMonitoring, is the
# most monitor ids one ClearVariableMonitoringRequest may carry.
CLEAR_ITEMS_COMPONENT = {"name": "MonitoringCtrlr"}
CLEAR_ITEMS_VARIABLE = {"name": "ItemsPerMessage", "instance": "ClearVariableMonitoring"}


def clear_batch_size(value: Any) -> int | None:
    """Return the ItemsPerMessage a charger reported, or None when it is not a positive integer."""
    try:
        size = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def chunks(ids: list[int], size: int | None) -> list[list[int]]:
    """Return `ids` (duplicates dropped, order kept) in lists of at most `size` (all in one if None)."""
    unique = list(dict.fromkeys(ids))
    if not size:
        return [unique] if unique else []
    return [unique[i : i + size] for i in range(0, len(unique), size)]
