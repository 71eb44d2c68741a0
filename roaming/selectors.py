"""Roaming reads: what a partner may see (public roaming locations and their rates) as OCPI facts,
written in the partner's version (roaming.versions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from authorization.models import MobilityServiceProvider
from backoffice.models import Property
from billing.models import Rate
from billing.selectors import rate_for_charger
from billing.services import guest_hold_amount
from billing.taxes import split_unit_price
from chargers.models import Charger

from . import location_data, mapping, ocpi, versions
from .models import (
    EvseProfile,
    LocationProfile,
    ParkingEvse,
    ParkingPlace,
    Partner,
    TerminalAssignment,
)


def our_party() -> mapping.Party:
    """Our CPO party, owner of every object we publish."""
    return mapping.Party(settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID)


@dataclass(frozen=True)
class OperatorFacts:
    """What every EVSE of one operator shares: the eMSPs whose contracts are accepted, and where
    a PTP's payment terminal takes cards (locations, and single EVSEs)."""

    accepted_service_providers: tuple[str, ...] = ()
    terminal_locations: frozenset[int] = field(default=frozenset())
    terminal_evses: frozenset[tuple[int, int]] = field(default=frozenset())

    def terminal_payable(self, charger: Charger, connector_id: int) -> bool:
        return (
            charger.property_id in self.terminal_locations
            or (charger.pk, connector_id) in self.terminal_evses
        )


def operator_facts(organization_id: int) -> OperatorFacts:
    """Return the operator's OperatorFacts (two queries)."""
    ptp_msps = Partner.objects.filter(role=Partner.Role.PTP).exclude(msp=None).values("msp_id")
    names = (
        MobilityServiceProvider.objects.filter(organization_id=organization_id, blocked=False)
        .exclude(pk__in=ptp_msps)
        .values_list("name", flat=True)
    )
    assignments = TerminalAssignment.objects.filter(
        terminal__organization_id=organization_id,
        terminal__partner__state=Partner.State.CONNECTED,
    ).values_list("property_id", "charger_id", "connector_id")
    locations: set[int] = set()
    evses: set[tuple[int, int]] = set()
    for property_id, charger_id, connector_id in assignments:
        if charger_id is None:
            locations.add(property_id)
        elif connector_id is not None:
            evses.add((charger_id, connector_id))
    return OperatorFacts(
        accepted_service_providers=tuple(sorted({n for n in names if n})),
        terminal_locations=frozenset(locations),
        terminal_evses=frozenset(evses),
    )


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
        .prefetch_related("connectors", "parking_links")
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


# -- AFIR: what national access points are given (roaming.access_points) ---------------------------

# AFIR's "publicly accessible": any driver can charge and pay on the spot (a guest by QR code),
# whether or not roaming is on.
AFIR_ACCESS_MODES = (Charger.AccessMode.PUBLIC, Charger.AccessMode.GUEST)


def afir_chargers(organization_id: int) -> QuerySet[Charger]:
    """Return the operator's publicly accessible chargers at a location with OCPI data, before
    the hold-back (afir_holdback)."""
    return (
        Charger.objects.select_related(
            "property", "property__ocpi_profile", "property__organization", "ocpi_profile"
        )
        .prefetch_related("connectors", "parking_links")
        .filter(
            property__organization_id=organization_id,
            access_mode__in=AFIR_ACCESS_MODES,
            property__ocpi_profile__isnull=False,
        )
        .order_by("property_id", "station_id")
    )


def afir_holdback(prop: Property, chargers: list[Charger], *, now: datetime) -> list[str]:
    """Return what the location lacks for the access points, in words (empty: complete)."""
    profile = getattr(prop, "ocpi_profile", None)
    if profile is None:
        return ["its roaming data (address, coordinates, opening hours)"]
    return location_data.afir_missing(
        has_opening_times=profile.open_24_7 or bool(profile.regular_hours),
        has_energy_mix=profile.energy_mix is not None,
        chargers_without_connector_data=[
            c.station_id for c in chargers if getattr(c, "ocpi_profile", None) is None
        ],
        chargers_without_price=[c.station_id for c in chargers if rate_for_charger(c, now) is None],
    )


@dataclass(frozen=True)
class AfirStatus:
    """A location as national access points see it, for the host's page."""

    feeds: tuple[str, ...]  # countries of the operator's feeds that are on
    public_chargers: tuple[str, ...]  # its publicly accessible chargers (station ids)
    missing: tuple[str, ...]  # what holds it back, in words (empty: delivered)


def afir_status(prop: Property, *, now: datetime) -> AfirStatus:
    from .models import AccessPointFeed

    feeds = AccessPointFeed.objects.filter(
        organization_id=prop.organization_id, enabled=True
    ).values_list("country", flat=True)
    chargers = list(
        Charger.objects.select_related("ocpi_profile").filter(
            property=prop, access_mode__in=AFIR_ACCESS_MODES
        )
    )
    missing = afir_holdback(prop, chargers, now=now) if chargers else []
    return AfirStatus(
        feeds=tuple(sorted(feeds)),
        public_chargers=tuple(sorted(c.station_id for c in chargers)),
        missing=tuple(missing),
    )


def chargers_for(
    partner: Partner, *, now: datetime, property_id: int | None = None
) -> list[Charger]:
    """Return the chargers a partner is given: roaming partners the published ones; a national
    access point the publicly accessible ones at locations not held back."""
    if partner.role != Partner.Role.NAP:
        published = published_chargers(partner.organization_id)
        if property_id is not None:
            published = published.filter(property_id=property_id)
        return list(published)
    found = afir_chargers(partner.organization_id)
    if property_id is not None:
        found = found.filter(property_id=property_id)
    by_property: dict[int, list[Charger]] = {}
    for charger in found:
        by_property.setdefault(int(charger.property_id or 0), []).append(charger)
    return [
        charger
        for chargers in by_property.values()
        if not afir_holdback(property_of(chargers[0]), chargers, now=now)
        for charger in chargers
    ]


def charger_visible_to(partner: Partner, charger: Charger, *, now: datetime) -> bool:
    if partner.role != Partner.Role.NAP:
        return charger_is_published(charger)
    if charger.access_mode not in AFIR_ACCESS_MODES or not charger.property_id:
        return False
    return any(
        c.pk == charger.pk for c in chargers_for(partner, now=now, property_id=charger.property_id)
    )


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


def _parking_links(charger: Charger) -> tuple[mapping.EvseParkingFacts, ...]:
    links: list[ParkingEvse] = sorted(charger.parking_links.all(), key=lambda link: link.parking_id)
    return tuple(
        mapping.EvseParkingFacts(parking_id=str(link.parking_id), evse_position=link.evse_position)
        for link in links
    )


def evses_of(
    charger: Charger, *, now: datetime, operator: OperatorFacts | None = None
) -> list[mapping.EvseFacts]:
    """Return one EVSE per OCPP connector (connector 0, the whole charger, is not an EVSE)."""
    operator = operator or OperatorFacts()
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
    restrictions = tuple(profile.parking_restrictions or []) if profile is not None else ()
    parking = _parking_links(charger)
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
                parking_restrictions=restrictions,
                parking=parking,
                accepted_service_providers=operator.accepted_service_providers,
                terminal_payable=operator.terminal_payable(charger, connector_id),
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


def parking_facts(place: ParkingPlace) -> mapping.ParkingFacts:
    return mapping.ParkingFacts(
        id=str(place.pk),
        vehicle_types=tuple(place.vehicle_types or []),
        restricted_to_type=place.restricted_to_type,
        reservation_required=place.reservation_required,
        physical_reference=place.physical_reference,
        max_vehicle_weight=place.max_vehicle_weight,
        max_vehicle_height=place.max_vehicle_height,
        max_vehicle_length=place.max_vehicle_length,
        max_vehicle_width=place.max_vehicle_width,
        parking_space_length=place.parking_space_length,
        parking_space_width=place.parking_space_width,
        dangerous_goods_allowed=place.dangerous_goods_allowed,
        direction=place.direction,
        drive_through=place.drive_through,
        time_limit=place.time_limit,
        roofed=place.roofed,
        lighting=place.lighting,
        refrigeration_outlet=place.refrigeration_outlet,
        standards=tuple(place.standards or []),
    )


def _location_facts(
    prop: Property, chargers: list[Charger], *, now: datetime, operator: OperatorFacts
) -> mapping.LocationFacts:
    profile = prop.ocpi_profile
    evses = tuple(
        evse for charger in chargers for evse in evses_of(charger, now=now, operator=operator)
    )
    places = list(ParkingPlace.objects.filter(property=prop).order_by("pk"))
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
        last_updated=max([profile.updated_at, *(place.updated_at for place in places)]),
        help_phone=profile.help_phone,
        parking=tuple(parking_facts(place) for place in places),
        energy_mix=profile.energy_mix,
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


def locations_all(
    organization_id: int, *, now: datetime, version: str, partner: Partner | None = None
) -> list[dict]:
    """Return the operator's published locations (those `partner` is given) as OCPI objects of
    `version`, oldest location first."""
    by_property: dict[int, list[Charger]] = {}
    chargers_seen = (
        chargers_for(partner, now=now)
        if partner is not None
        else list(published_chargers(organization_id))
    )
    for charger in chargers_seen:
        by_property.setdefault(int(charger.property_id or 0), []).append(charger)
    operator = operator_facts(organization_id)
    location = versions.of(version).location
    nap = partner is not None and partner.role == Partner.Role.NAP
    return [
        _for_partner(
            location(
                _location_facts(property_of(chargers[0]), chargers, now=now, operator=operator),
                party=our_party(),
            ),
            nap=nap,
        )
        for _, chargers in sorted(by_property.items())
    ]


def _for_partner(location: dict[str, Any], *, nap: bool) -> dict[str, Any]:
    return mapping.afir_location(location) if nap else location


def locations_page(
    partner: Partner, page: ocpi.Page, *, now: datetime, version: str
) -> tuple[int, list[dict]]:
    """Return (total matching, this page) of the partner's view of our locations."""
    matching = [
        loc
        for loc in locations_all(partner.organization_id, now=now, version=version, partner=partner)
        if in_window(loc["last_updated"], page)
    ]
    return len(matching), matching[page.offset : page.offset + page.limit]


def location_get(partner: Partner, location_id: str, *, now: datetime, version: str) -> dict | None:
    """Return one published location of the partner's operator in `version`, or None."""
    if not location_id.isdigit():
        return None
    chargers = chargers_for(partner, now=now, property_id=int(location_id))
    if not chargers:
        return None
    location = versions.of(version).location(
        _location_facts(
            property_of(chargers[0]),
            chargers,
            now=now,
            operator=operator_facts(partner.organization_id),
        ),
        party=our_party(),
    )
    return _for_partner(location, nap=partner.role == Partner.Role.NAP)


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


def tariff_prices(rate: Rate) -> mapping.TariffPrices:
    """Return the rate's prices as its location states them, each with its part excluding tax.

    The one place a location's tax mode enters the tariffs of both OCPI versions: where the
    prices include tax, each unit price is split by billing.taxes (the stated price kept, the
    part excluding tax rounded half-up once to 4 decimals); where tax is added on top, the
    stated price is the price excluding tax. v221 sends the excl. prices with `vat`, v230 the
    stated ones with `tax_included`."""
    if not rate.prices_include_tax:
        return mapping.TariffPrices.tax_on_top(
            tax_percent=rate.tax_percent,
            connection_fee=rate.connection_fee,
            energy_per_kwh=rate.energy_price_per_kwh,
            time_per_hour=rate.time_price_per_hour,
            idle_per_minute=rate.idle_fee_per_minute,
            idle_fee_cap=rate.idle_fee_cap,
        )

    def stated(price: Decimal) -> mapping.StatedPrice:
        parts = split_unit_price(price, rate.tax_percent, included=True)
        return mapping.StatedPrice(excl_tax=parts.net, stated=parts.gross)

    return mapping.TariffPrices(
        tax_included=True,
        tax_percent=rate.tax_percent,
        connection_fee=stated(rate.connection_fee),
        energy_per_kwh=stated(rate.energy_price_per_kwh),
        time_per_hour=stated(rate.time_price_per_hour),
        idle_per_minute=stated(rate.idle_fee_per_minute),
        idle_fee_cap=stated(rate.idle_fee_cap) if rate.idle_fee_cap is not None else None,
    )


def rate_facts(rate: Rate) -> mapping.RateFacts:
    return mapping.RateFacts(
        id=str(rate.pk),
        currency=rate.property.currency,
        prices=tariff_prices(rate),
        idle_grace_minutes=rate.idle_grace_minutes,
        valid_from=rate.valid_from,
        valid_until=rate.valid_until,
        last_updated=rate.updated_at,
        # What a guest's card is held for at this rate (billing.holds): the same ceiling is
        # what a payment terminal should pre-authorize.
        preauthorize_amount=guest_hold_amount(rate),
    )


def _rates_for(partner: Partner, *, now: datetime) -> Any:
    """The rates of the chargers `partner` is given that are in force now or later."""
    chargers = chargers_for(partner, now=now)
    property_ids = {c.property_id for c in chargers}
    charger_ids = {c.pk for c in chargers}
    return (
        Rate.objects.select_related("property")
        .filter(property_id__in=property_ids)
        .filter(Q(charger__isnull=True) | Q(charger_id__in=charger_ids))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    )


def tariff_for(partner: Partner, rate: Rate, *, version: str) -> dict[str, Any]:
    """Return the rate as a Tariff of `version` for `partner`. For a national access point it
    is the ad hoc price (the price a guest pays on the spot): type AD_HOC_PAYMENT
    (mod_tariffs "TariffType")."""
    data = versions.of(version).tariff(rate_facts(rate), party=our_party())
    if partner.role == Partner.Role.NAP:
        data = {**data, "type": "AD_HOC_PAYMENT"}
    return data


def tariffs_all(partner: Partner, *, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Return (rate id, Tariff in the partner's version) of every rate the partner is given."""
    rates = _rates_for(partner, now=now).order_by("created_at", "pk")
    return [(str(rate.pk), tariff_for(partner, rate, version=partner.version)) for rate in rates]


def tariffs_page(
    partner: Partner, page: ocpi.Page, *, now: datetime, version: str
) -> tuple[int, list[dict]]:
    """Return (total, page) of the rates of published chargers that are in force now or later."""
    rates = _rates_for(partner, now=now)
    if page.date_from is not None:
        rates = rates.filter(updated_at__gte=page.date_from)
    if page.date_to is not None:
        rates = rates.filter(updated_at__lt=page.date_to)
    rates = rates.order_by("created_at", "pk")
    total = rates.count()
    data = [
        tariff_for(partner, rate, version=version)
        for rate in rates[page.offset : page.offset + page.limit]
    ]
    return total, data


def partner_counts(partner: Partner) -> dict[str, int]:
    """Return the partner page's counts: tokens, sessions, CDRs, pushes waiting; for a partner
    with a CPO role (we are its eMSP) also its locations, our cards' sessions there, its CDRs
    and the disputes among them."""
    from chargers.models import ChargingSession

    from .models import Cdr, Delivery, PushedToken

    sessions = ChargingSession.objects.filter(token__ocpi__partner=partner)
    if partner.msp_id:
        sessions = ChargingSession.objects.filter(
            Q(token__ocpi__partner=partner) | Q(token__msp_id=partner.msp_id)
        )
    counts = {
        "tokens": PushedToken.objects.filter(partner=partner).count(),
        "sessions": sessions.distinct().count(),
        "cdrs": Cdr.objects.filter(partner=partner).count(),
        "waiting": Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).count(),
    }
    if partner.is_cpo:
        # Our eMSP role: its network, our cards' sessions there and its CDRs (disputes apart).
        from .models import PartnerCdr, PartnerLocation, PartnerSession

        counts |= {
            "their_locations": PartnerLocation.objects.filter(partner=partner).count(),
            "our_sessions_there": PartnerSession.objects.filter(partner=partner).count(),
            "their_cdrs": PartnerCdr.objects.filter(partner=partner).count(),
            "disputes": PartnerCdr.objects.filter(
                partner=partner, status=PartnerCdr.Status.DISPUTE
            ).count(),
        }
    return counts


def newer_version(partner: Partner) -> str | None:
    """Return a newer OCPI version than the partner's that both sides speak (as it offered
    them when last asked), or None."""
    if partner.state != Partner.State.CONNECTED:
        return None
    newest = ocpi.highest_common(list(partner.versions_offered or []))
    current = partner.version or ocpi.V221
    return newest if newest and ocpi.is_newer(newest, current) else None


def live_refusals(partner: Partner) -> list[MobilityServiceProvider]:
    """The mobility providers asked live through `partner` (its own provider, or the parties a
    hub routes) whose last live check of a card it refused our credentials for, newest first:
    what the partner page says failed, when, and what to do (authorization keeps `live_error`
    until the provider's next answer about a card)."""
    through = Q(ocpi_partner=partner, via_hub=False) | Q(hub_route__partner=partner, via_hub=True)
    refused = MobilityServiceProvider.objects.filter(through).exclude(live_error="")
    return list(refused.filter(live_error_at__isnull=False).order_by("-live_error_at", "pk"))
