"""Site power reads: the budget, circuits, connectors and allocation of a property."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from chargers.models import Charger

from .models import (
    AllocationSample,
    Circuit,
    ConnectorAllocation,
    ConnectorPower,
    SiteBudget,
    WaitingPeriod,
)


def budget_get(property_id: int) -> SiteBudget | None:
    return SiteBudget.objects.select_related("property").filter(property_id=property_id).first()


def circuits_of(property_id: int) -> QuerySet[Circuit]:
    return Circuit.objects.filter(property_id=property_id).select_related("parent")


def connectors_of(property_id: int) -> QuerySet[ConnectorPower]:
    return (
        ConnectorPower.objects.filter(charger__property_id=property_id)
        .select_related("charger", "circuit")
        .order_by("charger__station_id", "connector_id")
    )


def allocations_of(property_id: int) -> QuerySet[ConnectorAllocation]:
    return (
        ConnectorAllocation.objects.filter(property_id=property_id)
        .select_related("charger", "session")
        .order_by("charger__station_id", "connector_id")
    )


def in_both_units(
    rows: list[ConnectorAllocation], site: SiteBudget | None
) -> dict[int, dict[str, Any]]:
    """Each allocation row's limits in watts too, and the unit and numberPhases its charger is
    sent them in (docs/power.md, "Units"): {row id: {unit, number_phases, limit_w,
    applied_limit_w}}. W = A x the site's voltage x the phases the car draws on."""
    from . import enforcement, profiles

    if site is None or not rows:
        return {}
    electrical = enforcement.Electrical.of(site, sorted({r.charger_id for r in rows}))
    shown: dict[int, dict[str, Any]] = {}
    for row in rows:
        phases = (
            enforcement.session_phases(row.session, electrical)
            if row.session is not None
            else electrical.connector_phases_of(row.charger_id, row.connector_id)
        )

        def w(amps: Decimal | None, phases: int = phases) -> Decimal | None:
            if amps is None:
                return None
            return Decimal(int(profiles.watts(amps, voltage=site.voltage, phases=phases)))

        shown[row.pk] = {
            "unit": enforcement.charger_unit(row.charger),
            "number_phases": phases,
            "limit_w": w(Decimal(0) if row.waiting else row.limit_a),
            "applied_limit_w": w(row.applied_limit_a),
        }
    return shown


def chargers_of(property_id: int) -> QuerySet[Charger]:
    return Charger.objects.filter(property_id=property_id).order_by("station_id")


def samples_of(
    property_id: int, *, since: timedelta = timedelta(hours=6), now: datetime | None = None
) -> list[AllocationSample]:
    start = (now or timezone.now()) - since
    return list(AllocationSample.objects.filter(property_id=property_id, at__gte=start))


def allocation_for_session(session_id: int) -> ConnectorAllocation | None:
    return ConnectorAllocation.objects.filter(session_id=session_id).first()


def session_limit_a(session_id: int) -> Decimal | None:
    """The amperes per phase the site's allocation gives a session (0 while it waits), or None
    when it shares no budget (chargers.devices.ev_needs: a car's ISO 15118 needs)."""
    a = ConnectorAllocation.objects.filter(session_id=session_id).only("limit_a", "waiting").first()
    if a is None:
        return None
    return Decimal(0) if a.waiting else a.limit_a


def session_allowance(session_id: int) -> dict[str, Any] | None:
    """Return what a driver is told about the power their session may draw, or None when the
    site shares no budget: {"waiting", "limit_a", "kw", "text"}."""
    a = (
        ConnectorAllocation.objects.filter(session_id=session_id)
        .select_related("property__power_budget")
        .first()
    )
    if a is None:
        return None
    if a.waiting:
        return {"waiting": True, "limit_a": "0", "kw": "0", "text": a.reason}
    site = getattr(a.property, "power_budget", None)
    electrical = ConnectorPower.objects.filter(
        charger_id=a.charger_id, connector_id=a.connector_id
    ).first()
    phases = electrical.phases if electrical else (site.phases if site else 3)
    voltage = site.voltage if site else 230
    kw = (a.limit_a * voltage * phases / 1000).quantize(Decimal("0.1"))
    return {
        "waiting": False,
        "limit_a": str(a.limit_a),
        "kw": str(kw),
        "text": f"Power allowed: {kw} kW ({a.limit_a} A), shared with the other cars here",
    }


def waiting_periods(session_id: int) -> list[tuple[datetime, datetime | None]]:
    """Return when the session waited for power: [(from, until or None while it still waits)]."""
    return list(
        WaitingPeriod.objects.filter(session_id=session_id).values_list("started_at", "ended_at")
    )


def waiting_periods_many(
    session_ids: list[int],
) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """`waiting_periods` of each session (by id; empty when it never waited), in one query."""
    out: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for session_id, started, ended in WaitingPeriod.objects.filter(
        session_id__in=session_ids
    ).values_list("session_id", "started_at", "ended_at"):
        out[session_id].append((started, ended))
    return out
