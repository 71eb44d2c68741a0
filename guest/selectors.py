"""Reads for the guest pages. Nothing here returns owner or other-guest data."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from chargers.models import Charger, ChargingSession, Connector, MeterValue
from chargers.ocpp.energy import register_wh

from .models import GuestSession
from .prompts import DEAD_STATUSES, STARTABLE_STATUSES, StationFacts, is_out_of_order, suggestions


def charger_for_station_id(station_id: str) -> Charger | None:
    """Return the charger with exactly this Station ID (case-sensitive, as chargers are).

    A charger not assigned to a property is not an active charger for guests.
    """
    if not station_id:
        return None
    return (
        Charger.objects.select_related("property", "property__organization")
        .filter(station_id=station_id, property__isnull=False)
        .first()
    )


def connector_statuses(charger: Charger) -> list[tuple[int, str]]:
    return list(
        Connector.objects.filter(charger=charger)
        .order_by("connector_id")
        .values_list("connector_id", "status")
    )


def station_facts(
    charger: Charger, connectors: list[tuple[int, str]] | None = None
) -> StationFacts:
    if connectors is None:
        connectors = connector_statuses(charger)
    return StationFacts(
        ownership=charger.ownership,
        access_mode=charger.access_mode,
        license_valid_until=charger.license_valid_until,
        online=charger.is_online(),
        out_of_order=charger.out_of_order,
        connectors=tuple(connectors),
    )


def _guest_visible() -> Q:
    """Chargers a guest may be pointed at: network chargers open to the public or to guests."""
    return Q(
        property__isnull=False,
        ownership=Charger.Ownership.NETWORK,
        access_mode__in=[Charger.AccessMode.PUBLIC, Charger.AccessMode.GUEST],
    )


def station_id_suggestions(typed: str, *, limit: int = 3) -> list[str]:
    """Return public/guest Station IDs that differ from `typed` in case, spaces or one character.

    Private and privately owned chargers are never suggested. One edit keeps either the first
    or the second half of the ID intact, so two indexed prefix/suffix filters find every
    candidate without scanning the table.
    """
    compact = "".join(typed.split())
    if not compact or len(compact) > 49:
        return []
    half = max(len(compact) // 2, 1)
    near = Q(station_id__istartswith=compact[:half]) | Q(station_id__iendswith=compact[-half:])
    candidates = list(
        Charger.objects.filter(_guest_visible(), near).values_list("station_id", flat=True)[:200]
    )
    return suggestions(typed, candidates, limit=limit)


def alternatives(charger: Charger, *, limit: int = 5) -> list[dict]:
    """Return other guest-usable chargers at the same property with their live status."""
    if charger.property_id is None:
        return []  # a charger not yet placed at a property has no neighbours
    today = charger.license_today()  # the neighbours are at the same location
    others = list(
        Charger.objects.filter(
            _guest_visible(), property_id=charger.property_id, out_of_order=False
        )
        .filter(license_valid_until__gte=today)
        .exclude(pk=charger.pk)
        .prefetch_related("connectors")[:50]
    )
    rows = []
    for other in others:
        conns = [(c.connector_id, c.status) for c in other.connectors.all()]
        facts = station_facts(other, conns)
        free = [cid for cid, status in conns if cid > 0 and status in STARTABLE_STATUSES]
        if is_out_of_order(facts):
            label = "Out of order"
        elif free:
            label = "Available"
        else:
            label = "In use"
        rows.append(
            {
                "station_id": other.station_id,
                "name": other.name,
                "status": label,
                "free_ports": len(free),
            }
        )
    rows.sort(key=lambda r: (r["status"] != "Available", r["station_id"]))
    return rows[:limit]


def port_rows(connectors: list[tuple[int, str]], held: Collection[int] = ()) -> list[dict]:
    """Return the ports (connector 1..n) with what a guest can do with each. `held`: ports
    another guest is paying for (ports_held_for_guests): shown Reserved, not startable, so the
    page never offers a port its start would refuse."""
    return [
        {
            "id": cid,
            "status": "Reserved" if cid in held else status,
            "startable": status in STARTABLE_STATUSES and cid not in held,
            "dead": status in DEAD_STATUSES,
        }
        for cid, status in connectors
        if cid > 0
    ]


def guest_session_by_key(key: str) -> GuestSession | None:
    return (
        GuestSession.objects.select_related("charger", "charger__property", "charging_session")
        .filter(key=key)
        .first()
    )


def payment_timeout_s() -> float:
    """Seconds a guest has to finish paying before the port is freed and the intent canceled."""
    from django.conf import settings

    from backoffice.env import env_float

    return float(
        getattr(settings, "GUEST_PAYMENT_TIMEOUT_S", None)
        or env_float("GUEST_PAYMENT_TIMEOUT_S", 600.0)
    )


def ports_held_for_guests(charger_id: int) -> set[int]:
    """The ports of this charger another guest is paying for (until the payment times out) or
    whose paid start waits for the car."""
    paying_since = timezone.now() - timedelta(seconds=payment_timeout_s())
    return set(
        GuestSession.objects.filter(
            Q(state=GuestSession.State.STARTING)
            | Q(state=GuestSession.State.PENDING, created_at__gt=paying_since),
            charger_id=charger_id,
        ).values_list("connector_id", flat=True)
    )


def connector_busy_with_guest(charger_id: int, connector_id: int) -> bool:
    """True while another guest is paying for this port or their start waits for the car."""
    return connector_id in ports_held_for_guests(charger_id)


def running_kwh(session: ChargingSession) -> float:
    """Return the energy a running session has taken so far, from its last register reading."""
    sample = (
        MeterValue.objects.filter(
            session=session, measurand="Energy.Active.Import.Register", phase=""
        )
        .exclude(value=None)
        .order_by("-timestamp", "-id")
        .first()
    )
    if sample is None or sample.value is None or session.meter_start_wh is None:
        return 0.0
    wh = register_wh(sample.value, sample.unit)
    if wh is None:
        return 0.0
    return float(max(wh - session.meter_start_wh, Decimal(0)) / 1000)


def port_max_kw(charger: Charger) -> dict[int, str]:
    """The most each port can give, in kW, where the host entered its electrical data (Power ›
    Connectors: phases and maximum current, at the site's voltage); unknown ports are left out
    rather than guessed (issue 51 item 5)."""
    from power.models import ConnectorPower, SiteBudget

    if charger.property_id is None:
        return {}  # not placed at a property: no site voltage to read
    voltage = (
        SiteBudget.objects.filter(property_id=charger.property_id)
        .values_list("voltage", flat=True)
        .first()
        or 230
    )
    return {
        row.connector_id: f"{(row.max_a * row.phases * voltage / 1000).quantize(Decimal('0.1'))}"
        for row in ConnectorPower.objects.filter(charger=charger)
    }
