"""Where a charger stands: move it between properties and units (one service, always logged)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from backoffice.models import Property
from chargers.models import Charger
from stays.models import ChargerPlacement, Unit


@transaction.atomic
def charger_place(
    *, charger: Charger, property: Property | None, unit: Unit | None, by: Any = None
) -> Charger:
    """Put `charger` at `property` (and `unit` of it, or none: shared by the property) and log the move.

    A charger moves only within its organization; a unit must belong to the property.
    """
    charger = (
        Charger.objects.select_for_update(of=("self",))
        .select_related("property")
        .get(pk=charger.pk)
    )
    if property is None:
        raise ValidationError({"property": "Choose the property the charger stands at."})
    current = charger.property
    if current is not None and current.organization_id != property.organization_id:
        raise ValidationError(
            {"property": "A charger moves only between locations of its organization."}
        )
    if unit is not None and unit.property_id != property.pk:
        raise ValidationError({"unit": "This unit belongs to another property."})
    if charger.property_id == property.pk and charger.unit_id == (unit.pk if unit else None):
        return charger
    ChargerPlacement.objects.create(
        charger_id=charger.pk,
        station_id=charger.station_id,
        from_property_id=charger.property_id,
        from_unit_id=charger.unit_id,
        to_property=property,
        to_unit=unit,
        changed_by=by if getattr(by, "is_authenticated", False) else None,
    )
    charger.property, charger.unit = property, unit
    charger.save(update_fields=["property", "unit"])
    return charger
