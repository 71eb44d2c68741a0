"""Roaming reads: what a partner may see (public roaming locations and their rates) as OCPI facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from backoffice.models import Property
from billing.models import Rate
from billing.selectors import rate_for_charger
from chargers.models import Charger

from . import mapping, ocpi
from .models import EvseProfile, LocationProfile, Partner

_DEFAULT_SPEC = mapping.ConnectorSpec(
    standard=EvseProfile.Standard.TYPE2,
    format=EvseProfile.Format.SOCKET,
    power_type=EvseProfile.PowerType.AC_3_PHASE,
    max_voltage=230,
    max_amperage=32,
)


def published_chargers(organization_id: int) -> QuerySet[Charger]:
    """Return the operator's chargers partners see: public (roaming) at a location with OCPI data.

    Same rule as Charger.effective_roaming_enabled: access mode public, and the charger's
    roaming switch, or the property's when the charger follows it.
    """
    return (
        Charger.objects.select_related(
            "property", "property__ocpi_profile", "property__organization", "ocpi_profile"
        )
        .prefetch_related("connectors")
        .filter(
            property__organization_id=organization_id,
            access_mode=Charger.AccessMode.PUBLIC,
            property__ocpi_profile__isnull=False,
        )
        .filter(
            Q(roaming_enabled=True)
            | Q(roaming_enabled__isnull=True, property__roaming_enabled=True)
        )
        .order_by("property_id", "station_id")
    )


def charger_is_published(charger: Charger) -> bool:
    return charger.effective_roaming_enabled and hasattr(charger.property, "ocpi_profile")


def connector_spec(charger: Charger) -> mapping.ConnectorSpec:
    profile = getattr(charger, "ocpi_profile", None)
    if profile is None:
        return _DEFAULT_SPEC
    return mapping.ConnectorSpec(
        standard=profile.standard,
        format=profile.format,
        power_type=profile.power_type,
        max_voltage=profile.max_voltage,
        max_amperage=profile.max_amperage,
        max_electric_power=profile.max_electric_power,
    )


def evses_of(charger: Charger, *, now: datetime) -> list[mapping.EvseFacts]:
    """Return one EVSE per OCPP connector (connector 0, the whole charger, is not an EVSE)."""
    connectors = sorted(
        (c for c in charger.connectors.all() if c.connector_id >= 1), key=lambda c: c.connector_id
    )
    rate = rate_for_charger(charger, now)
    tariff_ids = (str(rate.pk),) if rate is not None else ()
    online = charger.is_online(now)
    spec = connector_spec(charger)
    moments = [m for m in (charger.created_at, charger.connected_at, charger.disconnected_at) if m]
    profile = getattr(charger, "ocpi_profile", None)
    if profile is not None:
        moments.append(profile.updated_at)
    facts = []
    # A charger that never reported its connectors still has at least one.
    for connector_id, status, updated in [
        (c.connector_id, c.status, c.updated_at) for c in connectors
    ] or [(1, "", charger.created_at)]:
        facts.append(
            mapping.EvseFacts(
                uid=ocpi.evse_uid(charger.station_id, connector_id),
                evse_id=ocpi.evse_id(
                    settings.OCPI_COUNTRY_CODE,
                    settings.OCPI_PARTY_ID,
                    charger.station_id,
                    connector_id,
                ),
                status=ocpi.evse_status(
                    status, charger_online=online, out_of_order=charger.out_of_order
                ),
                spec=spec,
                tariff_ids=tariff_ids,
                last_updated=max([updated, *moments]),
                physical_reference=charger.station_id if len(charger.station_id) <= 16 else "",
            )
        )
    return facts


def opening_hours_of(profile: LocationProfile) -> dict[str, Any]:
    """Return the location's OCPI Hours object (mod_locations "Hours")."""
    hours: dict[str, Any] = {"twentyfourseven": profile.open_24_7}
    if not profile.open_24_7:
        hours["regular_hours"] = list(profile.regular_hours or [])
    for name in ("exceptional_openings", "exceptional_closings"):
        periods = getattr(profile, name)
        if periods:
            hours[name] = list(periods)
    return hours


def _location_facts(
    prop: Property, chargers: list[Charger], *, now: datetime
) -> mapping.LocationFacts:
    profile = prop.ocpi_profile
    evses = tuple(evse for charger in chargers for evse in evses_of(charger, now=now))
    return mapping.LocationFacts(
        id=str(prop.pk),
        name=prop.name,
        address=prop.address or "#NA",
        city=profile.city,
        postal_code=profile.postal_code,
        country=profile.country,
        latitude=profile.latitude,
        longitude=profile.longitude,
        time_zone=prop.timezone,
        opening_times=opening_hours_of(profile),
        operator_name=profile.operator_name or prop.organization.name,
        evses=evses,
        last_updated=profile.updated_at,
    )


def property_of(charger: Charger) -> Property:
    prop = charger.property
    assert prop is not None  # published chargers stand at a property
    return prop


def in_window(last_updated: str, page: ocpi.Page) -> bool:
    moment = ocpi.parse_datetime(last_updated)
    if page.date_from is not None and moment < page.date_from:
        return False
    return not (page.date_to is not None and moment >= page.date_to)


def locations_all(organization_id: int, *, now: datetime) -> list[dict]:
    """Return the operator's published locations as OCPI objects, oldest location first."""
    by_property: dict[int, list[Charger]] = {}
    for charger in published_chargers(organization_id):
        by_property.setdefault(int(charger.property_id or 0), []).append(charger)
    return [
        mapping.location_object(
            _location_facts(property_of(chargers[0]), chargers, now=now),
            country_code=settings.OCPI_COUNTRY_CODE,
            party_id=settings.OCPI_PARTY_ID,
        )
        for _, chargers in sorted(by_property.items())
    ]


def locations_page(partner: Partner, page: ocpi.Page, *, now: datetime) -> tuple[int, list[dict]]:
    """Return (total matching, this page) of the partner's view of our locations."""
    matching = [
        loc
        for loc in locations_all(partner.organization_id, now=now)
        if in_window(loc["last_updated"], page)
    ]
    return len(matching), matching[page.offset : page.offset + page.limit]


def location_get(partner: Partner, location_id: str, *, now: datetime) -> dict | None:
    if not location_id.isdigit():
        return None
    chargers = [
        c for c in published_chargers(partner.organization_id).filter(property_id=int(location_id))
    ]
    if not chargers:
        return None
    return mapping.location_object(
        _location_facts(property_of(chargers[0]), chargers, now=now),
        country_code=settings.OCPI_COUNTRY_CODE,
        party_id=settings.OCPI_PARTY_ID,
    )


def charger_for_evse(
    organization_id: int, location_id: str, evse_uid: str
) -> tuple[Charger, int] | None:
    """Return (published charger, connector id) of one of our EVSE uids at `location_id`, or None."""
    parts = ocpi.split_evse_uid(evse_uid)
    if parts is None or not location_id.isdigit():
        return None
    charger = (
        published_chargers(organization_id)
        .filter(property_id=int(location_id), station_id=parts[0])
        .first()
    )
    return (charger, parts[1]) if charger is not None else None


def evse_facts(charger: Charger, connector_id: int, *, now: datetime) -> mapping.EvseFacts | None:
    uid = ocpi.evse_uid(charger.station_id, connector_id)
    return next((evse for evse in evses_of(charger, now=now) if evse.uid == uid), None)


# -- tariffs ----------------------------------------------------------------------------------------


def rate_facts(rate: Rate) -> mapping.RateFacts:
    return mapping.RateFacts(
        id=str(rate.pk),
        currency=rate.property.currency,
        connection_fee=rate.connection_fee,
        energy_price_per_kwh=rate.energy_price_per_kwh,
        time_price_per_hour=rate.time_price_per_hour,
        idle_fee_per_minute=rate.idle_fee_per_minute,
        idle_grace_minutes=rate.idle_grace_minutes,
        idle_fee_cap=rate.idle_fee_cap,
        tax_percent=rate.tax_percent,
        valid_from=rate.valid_from,
        valid_until=rate.valid_until,
        last_updated=rate.updated_at,
    )


def tariffs_page(partner: Partner, page: ocpi.Page, *, now: datetime) -> tuple[int, list[dict]]:
    """Return (total, page) of the rates of published chargers that are in force now or later."""
    published = published_chargers(partner.organization_id)
    property_ids = set(published.values_list("property_id", flat=True))
    charger_ids = set(published.values_list("pk", flat=True))
    rates = (
        Rate.objects.select_related("property")
        .filter(property_id__in=property_ids)
        .filter(Q(charger__isnull=True) | Q(charger_id__in=charger_ids))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    )
    if page.date_from is not None:
        rates = rates.filter(updated_at__gte=page.date_from)
    if page.date_to is not None:
        rates = rates.filter(updated_at__lt=page.date_to)
    rates = rates.order_by("created_at", "pk")
    total = rates.count()
    data = [
        mapping.tariff_object(
            rate_facts(rate),
            country_code=settings.OCPI_COUNTRY_CODE,
            party_id=settings.OCPI_PARTY_ID,
        )
        for rate in rates[page.offset : page.offset + page.limit]
    ]
    return total, data


def partner_counts(partner: Partner) -> dict[str, int]:
    """Return the partner page's counts: tokens, sessions, CDRs, pushes waiting."""
    from chargers.models import ChargingSession

    from .models import Cdr, Delivery, PushedToken

    sessions = ChargingSession.objects.filter(token__ocpi__partner=partner)
    if partner.msp_id:
        sessions = ChargingSession.objects.filter(
            Q(token__ocpi__partner=partner) | Q(token__msp_id=partner.msp_id)
        )
    return {
        "tokens": PushedToken.objects.filter(partner=partner).count(),
        "sessions": sessions.distinct().count(),
        "cdrs": Cdr.objects.filter(partner=partner).count(),
        "waiting": Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).count(),
    }
