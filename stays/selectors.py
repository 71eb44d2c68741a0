"""Reads of stays: units, reservations, the access a reservation gives, facts for support."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from backoffice.selectors import organization_ids_for

from .models import (
    CalendarFeed,
    PmsIntegration,
    Reservation,
    StayPolicy,
    Unit,
    normalize_access_code,
)


@dataclass(frozen=True)
class StayAccess:
    """What a reservation allows, in plain values (authorization turns it into its StayFacts)."""

    reservation_id: int
    confirmed: bool
    valid_from: datetime
    valid_until: datetime
    property_id: int
    unit_id: int | None
    shared_chargers: bool
    charging_included: bool
    kwh_cap: Decimal | None


def policy_for(property_id: int) -> StayPolicy:
    """Return the property's stay policy (the defaults when the host never changed it)."""
    policy = StayPolicy.objects.filter(property_id=property_id).first()
    return policy or StayPolicy(property_id=property_id)


def reservation_access(reservation: Reservation) -> StayAccess:
    """Return when and where `reservation` lets its guest charge."""
    policy = policy_for(reservation.property_id)
    valid_from, valid_until = reservation.window(policy)
    return StayAccess(
        reservation_id=reservation.pk,
        confirmed=reservation.status == Reservation.Status.CONFIRMED,
        valid_from=valid_from,
        valid_until=valid_until,
        property_id=reservation.property_id,
        unit_id=reservation.unit_id,
        shared_chargers=policy.shared_chargers,
        charging_included=policy.charging == StayPolicy.Charging.INCLUDED,
        kwh_cap=policy.kwh_cap,
    )


def reservation_by_code(typed: str, *, organization_id: int | None) -> Reservation | None:
    """Return the reservation of an access code, only within the charger's organization."""
    code = normalize_access_code(typed)
    if not code or organization_id is None:
        return None
    return (
        Reservation.objects.select_related("property", "unit")
        .filter(access_code=code, property__organization_id=organization_id)
        .first()
    )


def units_for(user: Any) -> QuerySet[Unit]:
    ids = organization_ids_for(user)
    units = Unit.objects.select_related("property", "property__organization")
    return units if ids is None else units.filter(property__organization_id__in=ids)


def reservations_for(user: Any) -> QuerySet[Reservation]:
    ids = organization_ids_for(user)
    rows = Reservation.objects.select_related("property", "unit", "calendar", "integration")
    return rows if ids is None else rows.filter(property__organization_id__in=ids)


def reservations_active_at(queryset: QuerySet[Reservation], at: datetime) -> QuerySet[Reservation]:
    """Confirmed reservations whose stay (check-in to check-out, without grace) includes `at`."""
    return queryset.filter(status=Reservation.Status.CONFIRMED, check_in__lte=at, check_out__gt=at)


def calendar_feeds_for(user: Any) -> QuerySet[CalendarFeed]:
    ids = organization_ids_for(user)
    rows = CalendarFeed.objects.select_related("property", "unit")
    return rows if ids is None else rows.filter(property__organization_id__in=ids)


def integrations_for(user: Any) -> QuerySet[PmsIntegration]:
    ids = organization_ids_for(user)
    rows = PmsIntegration.objects.select_related("organization")
    return rows if ids is None else rows.filter(organization_id__in=ids)


def stay_facts(charger: Any, *, now: datetime) -> dict[str, Any]:
    """Return what support checks for a charger (seed 003 section 8): where it is placed, the
    reservations that may use it now, and the health of the property's calendar/PMS syncs.

    `charger` is a chargers.Charger (read through its fields only: stays sits below chargers).
    """
    property_id = charger.property_id
    unit_id = getattr(charger, "unit_id", None)
    facts: dict[str, Any] = {
        "station_id": charger.station_id,
        "property": str(charger.property) if property_id else None,
        "unit": None,
        "reservations_now": [],
        "calendar_feeds": [],
        "pms_integrations": [],
    }
    if property_id is None:
        facts["problem"] = "The charger is not linked to any property, so no reservation can use it."
        return facts
    unit = Unit.objects.filter(pk=unit_id).first() if unit_id else None
    facts["unit"] = unit.name if unit else None
    policy = policy_for(property_id)
    current = reservations_active_at(Reservation.objects.filter(property_id=property_id), now)
    if unit is not None:
        current = current.filter(unit=unit)
    elif not policy.shared_chargers:  # a shared charger serves every stay, unless the host said no
        current = current.none()
    facts["reservations_now"] = [
        {"id": r.pk, "guest": r.guest_name, "unit": r.unit.name if r.unit else None, "source": r.source,
         "check_in": r.check_in.isoformat(), "check_out": r.check_out.isoformat()}
        for r in current.select_related("unit")[:10]
    ]
    facts["calendar_feeds"] = [
        {"name": f.name, "unit": f.unit.name if f.unit else None, "state": f.state,
         "last_synced_at": f.last_synced_at.isoformat() if f.last_synced_at else None, "error": f.last_error}
        for f in CalendarFeed.objects.filter(property_id=property_id).select_related("unit")
    ]
    organization_id = charger.property.organization_id
    facts["pms_integrations"] = [
        {"vendor": i.vendor, "state": i.state, "error": i.last_error,
         "last_synced_at": i.last_synced_at.isoformat() if i.last_synced_at else None,
         "unmapped_listings": i.listings.filter(unit__isnull=True).count()}
        for i in PmsIntegration.objects.filter(organization_id=organization_id)
    ]
    return facts
