"""Reads for support: the charger and property behind a Station ID."""

from __future__ import annotations

from backoffice.models import Property
from chargers.models import Charger


def charger_context(station_id: str) -> tuple[Charger | None, Property | None]:
    """Return the charger with exactly this Station ID and its property, or (None, None)."""
    if not station_id:
        return None, None
    charger = Charger.objects.select_related("property").filter(station_id=station_id).first()
    if charger is None:
        return None, None
    return charger, charger.property


def public_property_name(station_id: str) -> str:
    """Return the property name a guest may see for this Station ID ('' when it must stay hidden).

    Privately owned chargers are not part of the network: their location is not revealed.
    """
    charger, prop = charger_context(station_id)
    if charger is None or prop is None or charger.ownership == Charger.Ownership.PRIVATE_OWNER:
        return ""
    return prop.name
