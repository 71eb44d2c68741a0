"""Reads of stays: units, reservations, the access a reservation gives, facts for support."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from backoffice.tenancy import readable_organization_ids

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
    ids = readable_organization_ids(user)
    units = Unit.objects.select_related("property", "property__organization")
    return units if ids is None else units.filter(property__organization_id__in=ids)


def reservations_for(user: Any) -> QuerySet[Reservation]:
    ids = readable_organization_ids(user)
    rows = Reservation.objects.select_related("property", "unit", "calendar", "integration")
    return rows if ids is None else rows.filter(property__organization_id__in=ids)


def reservations_active_at(queryset: QuerySet[Reservation], at: datetime) -> QuerySet[Reservation]:
    """Confirmed reservations whose stay (check-in to check-out, without grace) includes `at`."""
    return queryset.filter(status=Reservation.Status.CONFIRMED, check_in__lte=at, check_out__gt=at)


def calendar_feeds_for(user: Any) -> QuerySet[CalendarFeed]:
    ids = readable_organization_ids(user)
    rows = CalendarFeed.objects.select_related("property", "unit")
    return rows if ids is None else rows.filter(property__organization_id__in=ids)


def integrations_for(user: Any) -> QuerySet[PmsIntegration]:
    ids = readable_organization_ids(user)
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
        facts["problem"] = (
            "The charger is not linked to any property, so no reservation can use it."
        )
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
        {
            "id": r.pk,
            "guest": r.guest_name,
            "unit": r.unit.name if r.unit else None,
            "source": r.source,
            "check_in": r.check_in.isoformat(),
            "check_out": r.check_out.isoformat(),
        }
        for r in current.select_related("unit")[:10]
    ]
    facts["calendar_feeds"] = [
        {
            "name": f.name,
            "unit": f.unit.name if f.unit else None,
            "state": f.state,
            "last_synced_at": f.last_synced_at.isoformat() if f.last_synced_at else None,
            "last_success_at": f.last_success_at.isoformat() if f.last_success_at else None,
            "failing_since": f.failing_since.isoformat() if f.failing_since else None,
            "error": f.last_error,
        }
        for f in CalendarFeed.objects.filter(property_id=property_id).select_related("unit")
    ]
    organization_id = charger.property.organization_id
    facts["pms_integrations"] = [
        {
            "vendor": i.vendor,
            "state": i.state,
            "error": i.last_error,
            "last_synced_at": i.last_synced_at.isoformat() if i.last_synced_at else None,
            "unmapped_listings": i.listings.filter(unit__isnull=True).count(),
        }
        for i in PmsIntegration.objects.filter(organization_id=organization_id)
    ]
    return facts


def stay_support_sentences(charger: Any, *, now: datetime, tz: Any) -> list[str]:
    """Return, in words for a support agent or the host, where `charger` is placed (property and
    unit), the reservations that may use it now, and the health of the property's calendar feeds and
    its organization's PMS integrations (seed 003 section 8's checks). Empty without a property, and
    for a property that does not use stays (no units, feeds, reservations or PMS): one query then."""
    from django.db.models import Q

    from backoffice.models import Property

    if (
        charger.property_id is None
        or not Property.objects.filter(pk=charger.property_id)
        .filter(
            Q(units__isnull=False)
            | Q(calendar_feeds__isnull=False)
            | Q(stay_reservations__isnull=False)
            | Q(organization__pms_integrations__isnull=False)
        )
        .exists()
    ):
        return []
    facts = stay_facts(charger, now=now)
    if not facts["property"]:
        return []
    sid = facts["station_id"]
    place = f"unit {facts['unit']}" if facts["unit"] else "no unit (shared by the property's stays)"
    out = [f"Charger {sid} is at {facts['property']}, {place}."]
    units = Unit.objects.filter(property_id=charger.property_id).count()
    if units and not facts["unit"]:
        out[0] += (
            f" The property has {units} units: if this charger belongs to one, link it under Network list."
        )

    def local(value: str) -> str:
        return datetime.fromisoformat(value).astimezone(tz).strftime("%d %b %H:%M")

    stays_now = facts["reservations_now"]
    if stays_now:
        names = "; ".join(
            f"{r['guest'] or 'a guest'} ({r['unit'] or 'whole property'}, {r['source']}, "
            f"{local(r['check_in'])} – {local(r['check_out'])})"
            for r in stays_now[:3]
        )
        out.append(f"Reservations that may use {sid} now: {names}.")
    elif facts["calendar_feeds"] or facts["pms_integrations"]:
        out.append(f"No confirmed reservation is under way for {sid} right now.")
    for feed in facts["calendar_feeds"]:
        where = f" ({feed['unit']})" if feed["unit"] else ""
        if feed["error"]:
            good = feed["last_success_at"]
            since = feed["failing_since"] or feed["last_synced_at"]
            out.append(
                f"Calendar feed {feed['name']}{where} failed its last sync: {feed['error']} "
                f"It is failing since {local(since) if since else 'its first pull'}; "
                + (f"last synced {local(good)}." if good else "it never synced.")
            )
        elif feed["last_synced_at"]:
            out.append(
                f"Calendar feed {feed['name']}{where} synced at {local(feed['last_synced_at'])}."
            )
        else:
            out.append(f"Calendar feed {feed['name']}{where} has not synced yet.")
    for pms in facts["pms_integrations"]:
        vendor = dict(PmsIntegration.Vendor.choices).get(pms["vendor"], pms["vendor"])
        failed = pms["state"] in (PmsIntegration.State.ERROR, PmsIntegration.State.BACKING_OFF)
        text = (
            f"{vendor} sync failed: {pms['error']}"
            if failed and pms["error"]
            else f"{vendor} synced at {local(pms['last_synced_at'])}."
            + (f" {pms['error']}" if pms["error"] else "")  # a good pull's notes
            if pms["last_synced_at"]
            else f"{vendor} has not synced yet."
        )
        if pms["unmapped_listings"]:
            text += (
                f" {pms['unmapped_listings']} listings are not mapped to a unit (PMS sync page)."
            )
        out.append(text)
    return out
